"""Backbone loading for transfer learning (gluon_tricks.transfer), on a tiny backbone that our
own train_imagenet.py wrote, and on GluonCV's .params files.

This module also holds the helpers shared with tests/test_detection.py and
tests/test_segmentation.py: the tiny backbone checkpoint (made once per test session) and the
generators of tiny VOC and ADE20K data in their real layouts.
"""
import glob
import importlib.util
import os
import shutil

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluon_tricks import transfer
from gluon_tricks.model_zoo import get_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKBONE = 'resnet18_v1d'   # deep stem + avg-pool shortcut: the paper's D tweaks, small


# --------------------------------------------------------------------------- shared helpers
def load_script(*parts):
    """Import a script of the repository as a module (``load_script('detection',
    'train_faster_rcnn')``)."""
    path = os.path.join(REPO, 'scripts', *parts) + '.py'
    spec = importlib.util.spec_from_file_location(parts[-1], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_backbone(tmp_path_factory):
    """Train ``resnet18_v1d`` for one epoch on 40 real digits with our own pipeline
    (make_digits_dataset -> prepare_imagenet.py -> train_imagenet.py), once per session.

    Returns
    -------
    str
        The ``--save-dir`` of the run (``checkpoint-best/net.params`` inside).
    """
    root = tmp_path_factory.getbasetemp() / 'tiny-backbone'
    run = root / 'run'
    if (run / 'checkpoint-best' / 'net.params').exists():
        return str(run)
    shutil.rmtree(str(root), ignore_errors=True)
    from gluon_tricks.data import make_digits_dataset
    info = make_digits_dataset(str(root / 'full'), image_size=40)
    for split, keep in (('train', 4), ('val', 2)):
        for cls in info.classes:
            os.makedirs(str(root / 'small' / split / cls))
            for f in sorted(glob.glob(str(root / 'full' / split / cls / '*.png')))[:keep]:
                shutil.copy(f, str(root / 'small' / split / cls))
    load_script('classification', 'prepare_imagenet').main(
        ['--data-dir', str(root / 'small'), '--out-dir', str(root / 'rec'), '--resize', '0',
         '--encoding', '.png', '--quality', '3', '-j', '1'])
    load_script('classification', 'train_imagenet').main(
        ['--model', BACKBONE, '--use-rec', '--data-dir', str(root / 'rec'), '--input-size',
         '32', '--crop-ratio', '1', '--batch-size', '8', '--num-epochs', '1', '-j', '1',
         '--log-interval', '5', '--progress', 'log', '--save-dir', str(run)])
    assert (run / 'checkpoint-best' / 'net.params').exists()
    return str(run)


def write_voc(root, seed=0, size=(160, 120)):
    """Tiny Pascal VOC in GluonCV's layout: VOC2007 trainval (2) + test (3), VOC2012 trainval
    (2) JPEGs with XML annotations, each image a 'dog' and a 'person' box; the 'person' of the
    first image of every split is marked difficult.

    Returns
    -------
    dict
        ``{image id: [(class, xmin, ymin, xmax, ymax, difficult), ...]}`` (VOC pixel
        coordinates, 1-based).
    """
    import cv2
    layout = {2007: {'trainval': ['000005', '000007'], 'test': ['000001', '000002', '000003']},
              2012: {'trainval': ['2008_000001', '2008_000002']}}
    objects = {}
    for year, splits in layout.items():
        rng = np.random.RandomState(seed + year)
        base = os.path.join(str(root), 'VOC%d' % year)
        for sub in ('Annotations', 'JPEGImages', os.path.join('ImageSets', 'Main')):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        for split, ids in splits.items():
            with open(os.path.join(base, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
                f.write(''.join(i + '\n' for i in ids))
            for k, img_id in enumerate(ids):
                w, h = size
                img = (rng.rand(h, w, 3) * 60).astype(np.uint8)
                objs = []
                for j, (cls, color) in enumerate((('dog', (0, 0, 255)),
                                                  ('person', (0, 255, 0)))):
                    x1, y1 = int(rng.randint(1, w // 2)), int(rng.randint(1, h // 2))
                    x2 = min(w, x1 + int(rng.randint(30, w // 2)))
                    y2 = min(h, y1 + int(rng.randint(30, h // 2)))
                    cv2.rectangle(img, (x1 - 1, y1 - 1), (x2 - 1, y2 - 1), color, -1)
                    objs.append((cls, x1, y1, x2, y2, int(k == 0 and j == 1)))
                assert cv2.imwrite(os.path.join(base, 'JPEGImages', img_id + '.jpg'), img)
                xml = ['<annotation><folder>VOC%d</folder><filename>%s.jpg</filename>'
                       % (year, img_id),
                       '<size><width>%d</width><height>%d</height><depth>3</depth></size>'
                       % (w, h)]
                for cls, x1, y1, x2, y2, diff in objs:
                    xml.append('<object><name>%s</name><pose>Unspecified</pose>'
                               '<truncated>0</truncated><difficult>%d</difficult><bndbox>'
                               '<xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax>'
                               '</bndbox></object>' % (cls, diff, x1, y1, x2, y2))
                xml.append('</annotation>')
                with open(os.path.join(base, 'Annotations', img_id + '.xml'), 'w') as f:
                    f.write('\n'.join(xml))
                objects[img_id] = objs
    return objects


def write_ade20k(root, n_train=4, n_val=3, size=(80, 60), seed=0):
    """Tiny ADE20K in GluonCV's layout: ``ADEChallengeData2016/images/{training,validation}``
    JPEGs with uint8 PNG masks (0 = unlabeled, 1 wall, 3 sky, 5 tree)."""
    from PIL import Image
    rng = np.random.RandomState(seed)
    base = os.path.join(str(root), 'ADEChallengeData2016')
    palette = {0: (0, 0, 0), 1: (120, 120, 120), 3: (80, 160, 250), 5: (20, 160, 20)}
    for split, n, tag in (('training', n_train, 'train'), ('validation', n_val, 'val')):
        for sub in ('images', 'annotations'):
            os.makedirs(os.path.join(base, sub, split), exist_ok=True)
        for k in range(n):
            w, h = size
            mask = np.ones((h, w), np.uint8)
            mask[:h // 3] = 3
            x = rng.randint(0, w // 2)
            mask[h // 2:, x:x + w // 3] = 5
            mask[-4:, :6] = 0
            img = np.zeros((h, w, 3), np.uint8)
            for c, col in palette.items():
                img[mask == c] = col
            img = np.clip(img + rng.randint(0, 30, img.shape), 0, 255).astype(np.uint8)
            name = 'ADE_%s_%08d' % (tag, k + 1)
            Image.fromarray(img).save(os.path.join(base, 'images', split, name + '.jpg'))
            Image.fromarray(mask).save(os.path.join(base, 'annotations', split, name + '.png'))
    return base


# --------------------------------------------------------------------------- tests
@pytest.fixture(scope='module')
def backbone_run(tmp_path_factory):
    return tiny_backbone(tmp_path_factory)


def _file_arrays(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def _stem_and_stages(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    c3 = net.layer3(net.layer2(net.layer1(x)))
    return c3, net.layer4(c3)


def test_checkpoint_of_train_imagenet_arrives_in_every_task(backbone_run):
    ckpt = os.path.join(backbone_run, 'checkpoint-best', 'net.params')
    saved = _file_arrays(ckpt)
    # the save dir, the checkpoint dir and the file all mean the same file
    for given in (backbone_run, os.path.dirname(ckpt), ckpt):
        assert os.path.realpath(transfer.resolve_params_file(given)) == os.path.realpath(ckpt)
    for task in transfer.TASKS:
        net = transfer.load_backbone(BACKBONE, backbone_run, task=task)
        loaded = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
        assert sorted(loaded) == sorted(saved)
        for key, value in saved.items():
            np.testing.assert_array_equal(loaded[key], value, err_msg='%s (%s)' % (key, task))
    # the weights are the trained ones, not a fresh initialization
    fresh = get_model(BACKBONE, classes=10)
    fresh.initialize(mx.init.Xavier())
    fresh(mx.nd.zeros((1, 3, 32, 32)))
    assert not np.allclose(fresh.layer4[1].conv2.weight.data().asnumpy(),
                           saved['layer4.1.conv2.weight'])


def test_detection_backbone_keeps_bn_statistics_frozen(backbone_run):
    det = transfer.load_backbone(BACKBONE, backbone_run, task='detection')
    cls = transfer.load_backbone(BACKBONE, backbone_run, task='classification')
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 64, 64))
    mean_before = det.layer2[0].bn1.running_mean.data().asnumpy().copy()
    with autograd.predict_mode():
        ref = _stem_and_stages(det, x)[1].asnumpy()
    with autograd.record(train_mode=True):
        train_out = _stem_and_stages(det, x)[1]
        cls_out = _stem_and_stages(cls, x)[1]
    np.testing.assert_allclose(train_out.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(det.layer2[0].bn1.running_mean.data().asnumpy(), mean_before)
    # without frozen statistics training mode normalizes with the batch: a different output
    assert not np.allclose(cls_out.asnumpy(), ref, rtol=1e-3, atol=1e-3)


def test_segmentation_backbone_is_dilated_in_stages_3_and_4(backbone_run):
    seg = transfer.load_backbone(BACKBONE, backbone_run, task='segmentation')
    cls = transfer.load_backbone(BACKBONE, backbone_run, task='classification')
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 64, 64))
    c3, c4 = _stem_and_stages(seg, x)
    assert c3.shape == (1, 256, 8, 8) and c4.shape == (1, 512, 8, 8)      # output stride 8
    assert _stem_and_stages(cls, x)[1].shape == (1, 512, 2, 2)               # stride 32
    assert transfer.stage_channels(seg) == (256, 512)
    assert seg.layer4[0].conv1._kwargs['dilate'] == (2, 2)
    assert seg.layer4[1].conv1._kwargs['dilate'] == (4, 4)
    assert seg.layer3[1].conv2._kwargs['dilate'] == (2, 2)
    np.testing.assert_array_equal(seg.layer4[1].conv2.weight.data().asnumpy(),
                                  cls.layer4[1].conv2.weight.data().asnumpy())


@pytest.mark.parametrize('gluoncv_name', ['resnet18_v1b', 'resnet18_v1'])
def test_gluoncv_params_of_the_same_name_load(tmp_path, gluoncv_name):
    import gluoncv
    ref = gluoncv.model_zoo.get_model(gluoncv_name, pretrained=False)
    ref.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 32, 32))
    expected = ref(x).asnumpy()
    path = str(tmp_path / (gluoncv_name + '.params'))
    ref.save_parameters(path)
    assert transfer.describe_params(path)['name'] == gluoncv_name
    net = transfer.load_backbone(gluoncv_name, path, task='detection')
    first = 'features.0.weight' if gluoncv_name == 'resnet18_v1' else 'conv1.weight'
    np.testing.assert_array_equal(net.conv1.weight.data().asnumpy(),
                                  mx.nd.load(path)[first].asnumpy())
    # the whole network computes what GluonCV's computes (running statistics: frozen BN)
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', ['resnet50_v1d', 'resnet50_v1s', 'resnet34_v1c'])
def test_describe_params_recognises_the_variant(tmp_path, name):
    net = get_model(name, classes=7)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / 'x.params')
    net.save_parameters(path)
    info = transfer.describe_params(path)
    assert (info['name'], info['classes']) == (name, 7)


def test_a_checkpoint_that_does_not_fit_names_both(backbone_run, tmp_path):
    ckpt = transfer.resolve_params_file(backbone_run)
    for wrong in ('resnet18_v1b', 'resnet34_v1d', 'resnet50_v1d'):
        with pytest.raises(transfer.BackboneMismatchError) as err:
            transfer.load_backbone(wrong, backbone_run, task='detection')
        msg = str(err.value)
        assert wrong in msg and ckpt in msg and 'looks like %s' % BACKBONE in msg, msg
    with pytest.raises(ValueError) as err:
        transfer.load_backbone('resnet19_v1d', backbone_run)
    assert 'resnet19_v1d' in str(err.value) and backbone_run in str(err.value)
    with pytest.raises(ValueError) as err:
        transfer.load_backbone('mobilenet1.0', backbone_run)
    assert 'not a ResNet' in str(err.value)
    with pytest.raises(FileNotFoundError):
        transfer.load_backbone(BACKBONE, str(tmp_path / 'nothing.params'))
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'not an ndarray file' * 10)
    with pytest.raises(transfer.BackboneMismatchError) as err:
        transfer.load_backbone(BACKBONE, str(junk))
    assert 'junk.params' in str(err.value) and BACKBONE in str(err.value)
    with pytest.raises(ValueError):
        transfer.load_backbone(BACKBONE, backbone_run, task='pose')


def test_seeded_dataset_repeats_random_draws():
    import random

    class Draw(object):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return i, random.random(), np.random.rand()

    data = transfer.SeededDataset(Draw())
    state = random.getstate()
    assert data[(1, 42)] == data[(1, 42)]
    assert data[(1, 42)] != data[(1, 43)]
    assert random.getstate() == state          # the caller's generator is untouched
    assert data[2][0] == 2
