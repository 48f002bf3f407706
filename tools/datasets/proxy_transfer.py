"""Tiny Pascal VOC and ADE20K look-alikes for the proxy run of Tables 8 and 9
(``scripts/classification/tables/make_proxy_transfer_data.py``).

Digits of scikit-learn (real 8x8 handwriting, upscaled) pasted on a noisy canvas:

* :func:`make_voc`: ``OUT/VOC2007/{JPEGImages,Annotations,ImageSets/Main}`` with ``trainval``
  and ``test`` splits, one VOC XML per image, digit ``d`` labelled with the ``d``-th VOC class
  name (what GluonCV's ``VOCDetection(root=OUT, splits=[(2007, 'trainval')])`` reads);
* :func:`make_ade`: ``OUT/ADEChallengeData2016/{images,annotations}/{training,validation}``
  with a PNG mask per JPEG: 1 for the background, 2 + d on the pixels of digit ``d`` (what
  ``ADE20KSegmentation(root=OUT)`` reads; 0, "other", is ignored by its metric).
"""
import os

import numpy as np
from PIL import Image

from gluon_tricks.detection import VOC_CLASSES

__all__ = ['make_voc', 'make_ade']


def _digits():
    """scikit-learn's 8x8 digits scaled to [0, 1] and their classes."""
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images.astype(np.float32) / 16.0, d.target.astype(int)


def _scene(rng, images, targets, size, max_objects=2):
    """A ``size`` x ``size`` RGB canvas with 1..max_objects digits; their boxes and mask."""
    canvas = rng.uniform(0, 60, (size, size, 3)).astype(np.float32)
    mask = np.ones((size, size), np.uint8)  # 1 = background
    boxes = []
    for _ in range(rng.randint(1, max_objects + 1)):
        k = rng.randint(len(images))
        side = rng.randint(size // 3, size // 2 + 1)
        x0, y0 = rng.randint(0, size - side + 1), rng.randint(0, size - side + 1)
        digit = np.asarray(Image.fromarray((images[k] * 255).astype(np.uint8)).resize(
            (side, side), Image.BILINEAR), np.float32) / 255.0
        color = rng.uniform(150, 255, 3)
        region = canvas[y0:y0 + side, x0:x0 + side]
        canvas[y0:y0 + side, x0:x0 + side] = region * (1 - digit[..., None]) + \
            color * digit[..., None]
        mask[y0:y0 + side, x0:x0 + side][digit > 0.3] = 2 + targets[k]
        ys, xs = np.nonzero(digit > 0.3)
        if len(xs):
            boxes.append((x0 + xs.min(), y0 + ys.min(), x0 + xs.max(), y0 + ys.max(),
                          int(targets[k])))
    return np.clip(canvas, 0, 255).astype(np.uint8), mask, boxes


def _voc_xml(name, size, boxes):
    objs = ''.join(
        '<object><name>%s</name><pose>Unspecified</pose><truncated>0</truncated>'
        '<difficult>0</difficult><bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax>'
        '<ymax>%d</ymax></bndbox></object>' % (VOC_CLASSES[c], x0 + 1, y0 + 1, x1 + 1, y1 + 1)
        for x0, y0, x1, y1, c in boxes)
    return ('<annotation><folder>VOC2007</folder><filename>%s.jpg</filename><size><width>%d'
            '</width><height>%d</height><depth>3</depth></size><segmented>0</segmented>%s'
            '</annotation>\n' % (name, size, size, objs))


def make_voc(out, train, test, size=96, seed=0):
    """Write ``OUT/VOC2007`` (``trainval``: ``train`` images, ``test``: ``test``); returns
    its path."""
    images, targets = _digits()
    rng = np.random.RandomState(seed)
    base = os.path.join(out, 'VOC2007')
    for sub in ('JPEGImages', 'Annotations', os.path.join('ImageSets', 'Main')):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    for split, count, offset in (('trainval', train, 0), ('test', test, 100000)):
        ids = []
        for i in range(count):
            name = '%06d' % (offset + i)
            img, _, boxes = _scene(rng, images, targets, size)
            Image.fromarray(img).save(os.path.join(base, 'JPEGImages', name + '.jpg'), quality=95)
            with open(os.path.join(base, 'Annotations', name + '.xml'), 'w') as f:
                f.write(_voc_xml(name, size, boxes))
            ids.append(name)
        with open(os.path.join(base, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    return base


def make_ade(out, train, test, size=96, seed=1):
    """Write ``OUT/ADEChallengeData2016`` (``training``: ``train`` images, ``validation``:
    ``test``); returns its path."""
    images, targets = _digits()
    rng = np.random.RandomState(seed)
    base = os.path.join(out, 'ADEChallengeData2016')
    for split, count, prefix in (('training', train, 'ADE_train'),
                                 ('validation', test, 'ADE_val')):
        idir = os.path.join(base, 'images', split)
        adir = os.path.join(base, 'annotations', split)
        os.makedirs(idir, exist_ok=True)
        os.makedirs(adir, exist_ok=True)
        for i in range(count):
            name = '%s_%08d' % (prefix, i + 1)
            img, mask, _ = _scene(rng, images, targets, size)
            Image.fromarray(img).save(os.path.join(idir, name + '.jpg'), quality=95)
            Image.fromarray(mask).save(os.path.join(adir, name + '.png'))
    return base
