"""Small image data for the tests of ``gluon_tricks.data`` (tests/test_data_*.py): class folders
of constant-color images whose color identifies each image, and the loader settings and
batch readers those tests share. The fixtures built on them are in tests/conftest.py."""
import os

import cv2
import numpy as np

from gluon_tricks import data as gd

MEAN = np.array(gd.IMAGENET_MEAN, np.float32)
STD = np.array(gd.IMAGENET_STD, np.float32)
INPUT = 32           # training input size of these tests
DIGITS_SIZE = 40     # the demo's stored size for a 32 px input


def color_of(k):
    """A distinct RGB color per image index (the R value identifies the image)."""
    return (10 + 15 * k, 200 - 10 * k, (37 * k) % 256)


def image_indices(batch):
    """Recover the image index from normalized constant-color images (via the R channel)."""
    r = batch.asnumpy()[:, 0].mean(axis=(1, 2)) * STD[0] + MEAN[0]
    return np.round((r - 10) / 15).astype(int).tolist()


def write_color_tree(root, classes=('cat', 'ant', 'bee'), per_class=5, size=(40, 48)):
    """Constant-color PNGs in class folders; returns {relative path: (index, rgb)}."""
    out, k = {}, 0
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for j in range(per_class):
            rgb = color_of(k)
            img = np.empty(size + (3,), np.uint8)
            img[...] = rgb[::-1]                                   # OpenCV writes BGR
            rel = '%s/img%02d.png' % (c, j)
            assert cv2.imwrite(os.path.join(root, rel), img)
            out[rel] = (k, rgb)
            k += 1
    return out


def no_augment():
    """Every random augmentation off: the crop is the largest centered square, resized."""
    return gd.AugmentConfig(input_size=INPUT, random_area=(1.0, 1.0), aspect_ratio=(1.0, 1.0),
                            mirror=False, brightness=0.0, contrast=0.0, saturation=0.0,
                            hue=0.0, pca_noise=0.0)


def collect(loader, epoch=None):
    """Every batch of one epoch of ``loader`` (the next one, or ``epoch``), as numpy arrays:
    ``(datas, labels)``."""
    it = loader.iter_epoch(epoch) if epoch is not None else iter(loader)
    datas, labels = [], []
    for d, l in it:
        datas.append(d.asnumpy().copy())
        labels.append(l.asnumpy().copy())
    return datas, labels
