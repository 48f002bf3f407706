"""The validation transform is GluonCV's, pixel for pixel.

GluonCV validates with ``mxnet.gluon.data.vision.transforms.Resize(resize, keep_ratio=True)``
then ``CenterCrop(input_size)`` (its ``train_imagenet.py`` and
``gluoncv.data.transforms.presets.imagenet.transform_eval``). That Resize floors the long
side, ``int(long * resize / short)`` (451x300 -> 384x256), and resizes bilinearly
(OpenCV ``INTER_LINEAR``); the crop starts at ``int((side - crop) / 2)``. Our
:class:`gluon_tricks.data.ValTransform` must give the same pixels: with mean 0 and std 1 its
float32 output is the cropped uint8 image itself, so the comparison is exact (tolerance 0).
Sizes are (height, width): odd, portrait, landscape, square, one pixel from square, and
smaller than the crop.
"""
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.data.vision import transforms as T

import gluon_tricks.data as gd

#: (height, width) of the test images
SIZES = [(300, 451), (451, 300), (256, 257), (257, 256), (333, 500), (500, 333),
         (256, 256), (301, 301), (100, 80), (80, 100), (37, 53)]
RAW = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))     # output = the cropped pixels


def _image(h, w, seed):
    rng = np.random.RandomState(seed)
    noise = rng.randint(0, 256, (h, w, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (5, 5), 0)        # smooth, so bilinear weights all matter


def _mxnet_reference(img, resize, crop):
    """GluonCV's validation pixels: gluon Resize(keep_ratio=True) + CenterCrop, uint8 HWC."""
    x = mx.nd.array(img, dtype='uint8')
    x = T.CenterCrop(crop)(T.Resize(resize, keep_ratio=True)(x))
    return x.asnumpy()


@pytest.mark.parametrize('input_size', [224, 299])
@pytest.mark.parametrize('hw', SIZES, ids=['%dx%d' % s for s in SIZES])
def test_val_transform_equals_gluon_resize_and_center_crop(hw, input_size):
    cfg = gd.AugmentConfig(input_size=input_size, **RAW)
    img = _image(*hw, seed=hw[0] * 1000 + hw[1])
    ours = gd.ValTransform(cfg)(img)
    ref = _mxnet_reference(img, cfg.val_resize, input_size)
    assert ours.shape == (3, input_size, input_size) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, ref.transpose(2, 0, 1).astype(np.float32))


@pytest.mark.parametrize('hw', [(300, 451), (451, 300), (333, 500), (80, 100)])
def test_val_transform_equals_gluoncv_transform_eval(hw):
    """gluoncv's own preset (ToTensor divides by 255: compared after the same division)."""
    from gluoncv.data.transforms.presets.imagenet import transform_eval
    cfg = gd.AugmentConfig(**RAW)
    img = _image(*hw, seed=7)
    ref = transform_eval(mx.nd.array(img, dtype='uint8'), resize_short=cfg.val_resize,
                         crop_size=cfg.input_size, mean=(0, 0, 0), std=(1, 1, 1))
    ours = gd.ValTransform(cfg)(img) / np.float32(255)
    np.testing.assert_array_equal(ours, ref.asnumpy()[0])


def test_long_side_is_floored_as_gluoncv():
    """The resized shape itself (before the crop): 451x300 -> 384x256, not 385x256."""
    cfg = gd.AugmentConfig(input_size=256, crop_ratio=1.0, **RAW)   # crop = the short side
    for (h, w), long_side in (((300, 451), 384), ((451, 300), 384), ((333, 500), 384),
                              ((255, 256), 257)):
        ref = T.Resize(256, keep_ratio=True)(mx.nd.array(_image(h, w, 0), dtype='uint8'))
        assert max(ref.shape[:2]) == long_side
        assert gd.ValTransform(cfg).resized_shape(h, w) == ref.shape[:2]


def test_loaders_and_load_image_use_this_transform(tmp_path):
    """The folder and RecordIO validation loaders (training, evaluate.py, calibration) and
    load_image (predict.py) give GluonCV's pixels on odd-sized lossless images."""
    root = tmp_path / 'val'
    cfg = gd.AugmentConfig(input_size=32, crop_ratio=0.875, **RAW)   # shorter side 37
    expected = []
    for k, (h, w) in enumerate([(45, 68), (68, 45), (38, 37), (21, 31)]):
        os.makedirs(str(root / ('c%d' % k)))
        img = _image(h, w, seed=k)
        path = str(root / ('c%d' % k) / 'a.png')
        assert cv2.imwrite(path, img[:, :, ::-1])                     # RGB -> BGR file
        ref = _mxnet_reference(img, cfg.val_resize, cfg.input_size).transpose(2, 0, 1)
        expected.append(ref.astype(np.float32))
        np.testing.assert_array_equal(gd.load_image(path, cfg), expected[-1])
    folder = gd.FolderLoader(str(root), batch_size=4, train=False, aug=cfg, num_workers=0)
    got = next(iter(folder))[0].asnumpy()
    np.testing.assert_array_equal(got, np.stack(expected))
    rec = str(tmp_path / 'val')
    gd.pack_class_folder(str(root), rec, shuffle=False, resize=0, encoding='.png',
                         quality=3, progress=False)
    loader = gd.RecordLoader(rec + '.rec', batch_size=4, train=False, aug=cfg, num_workers=0,
                             progress=False)
    np.testing.assert_array_equal(next(iter(loader))[0].asnumpy(), np.stack(expected))


@pytest.mark.parametrize('quality', [75, 95])
def test_jpeg_file_from_decode_to_crop_equals_gluoncv(tmp_path, quality):
    """A JPEG file end to end: our decode (OpenCV) and transform against GluonCV's
    ``mx.image.imread`` (MXNet's own decoder) + Resize + CenterCrop, exactly."""
    path = str(tmp_path / 'a.jpg')
    assert cv2.imwrite(path, _image(301, 451, seed=quality), [cv2.IMWRITE_JPEG_QUALITY, quality])
    cfg = gd.AugmentConfig(**RAW)
    ref = _mxnet_reference(mx.image.imread(path).asnumpy(), cfg.val_resize, cfg.input_size)
    np.testing.assert_array_equal(gd.load_image(path, cfg),
                                  ref.transpose(2, 0, 1).astype(np.float32))
