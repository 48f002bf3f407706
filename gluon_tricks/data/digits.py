"""The project's embedded demo data: scikit-learn's handwritten digits as image folders.

``sklearn.datasets.load_digits()`` ships 1,797 real 8 x 8 grayscale digits in 10 classes inside
the scikit-learn wheel, so the demo and the tests need no download.
"""
import collections
import os
import shutil

import numpy as np

__all__ = ['make_digits_dataset', 'DigitsInfo']

DigitsInfo = collections.namedtuple(
    'DigitsInfo', ['root', 'train_dir', 'val_dir', 'num_train', 'num_val', 'classes',
                   'test_dir', 'num_test'], defaults=(None, 0))
DigitsInfo.__doc__ = 'Paths and counts of the data written by :func:`make_digits_dataset`.'


def make_digits_dataset(out_dir, image_size=32, val_fraction=0.2, seed=0, overwrite=False,
                        test_fraction=0.0):
    """Write scikit-learn's digits as a class-folder data set.

    Creates ``out_dir/train/<digit>/<index>.png`` and ``out_dir/val/<digit>/<index>.png``:
    3-channel (gray replicated) PNGs, upscaled from 8 x 8 to ``image_size`` with bicubic
    interpolation, intensities 0-16 mapped to 0-255. The split is stratified by class and
    deterministic for a given ``seed``; ``<index>`` is the sample's index in ``load_digits()``.

    Parameters
    ----------
    out_dir : str
    image_size : int
        Side of the written images (>= 8).
    val_fraction : float
        Fraction of each class put into ``val`` (0.2 -> 1,437 train / 360 val images).
    seed : int
        Seed of the split.
    overwrite : bool
        If ``out_dir/train``, ``val`` or ``test`` already holds files: False raises, True
        deletes those folders first.
    test_fraction : float
        Fraction of each class held out first into ``out_dir/test`` (0: none), a test split
        that neither training nor the choice of the best checkpoint ever sees; ``val_fraction``
        then applies to the rest. With 0 the train/val split is that of older versions.

    Returns
    -------
    DigitsInfo
        ``root``, ``train_dir``, ``val_dir``, ``num_train``, ``num_val``, ``classes``
        (``['0', ..., '9']``, whose sorted order is the label order), ``test_dir`` (None
        without a test split) and ``num_test``.
    """
    import cv2
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    if image_size < 8:
        raise ValueError('image_size must be >= 8, got %r' % image_size)
    if not 0 < val_fraction < 1:
        raise ValueError('val_fraction must be in (0, 1), got %r' % val_fraction)
    if not 0 <= test_fraction < 1:
        raise ValueError('test_fraction must be in [0, 1), got %r' % test_fraction)
    digits = load_digits()
    images, targets = digits.images, digits.target
    index = np.arange(len(targets))
    test_idx = index[:0]
    if test_fraction:
        index, test_idx = train_test_split(index, test_size=test_fraction, stratify=targets,
                                           random_state=seed + 1)
    train_idx, val_idx = train_test_split(index, test_size=val_fraction,
                                          stratify=targets[index], random_state=seed)
    train_dir, val_dir = os.path.join(out_dir, 'train'), os.path.join(out_dir, 'val')
    test_dir = os.path.join(out_dir, 'test')
    for d in (train_dir, val_dir, test_dir):
        if os.path.isdir(d) and os.listdir(d):
            if not overwrite:
                raise FileExistsError('%r is not empty; pass overwrite=True to replace it' % d)
            shutil.rmtree(d)
    classes = [str(c) for c in sorted(set(targets.tolist()))]
    splits = [(train_dir, train_idx), (val_dir, val_idx)] + \
        ([(test_dir, test_idx)] if test_fraction else [])
    for split_dir, split_idx in splits:
        for c in classes:
            os.makedirs(os.path.join(split_dir, c), exist_ok=True)
        for i in sorted(split_idx.tolist()):
            gray = (images[i] * (255.0 / 16.0)).astype(np.float32)
            big = cv2.resize(gray, (image_size, image_size), interpolation=cv2.INTER_CUBIC)
            big = np.clip(np.round(big), 0, 255).astype(np.uint8)
            path = os.path.join(split_dir, str(targets[i]), '%04d.png' % i)
            if not cv2.imwrite(path, cv2.merge([big, big, big])):
                raise IOError('cannot write %r' % path)
    return DigitsInfo(out_dir, train_dir, val_dir, len(train_idx), len(val_idx), classes,
                      test_dir if test_fraction else None, len(test_idx))
