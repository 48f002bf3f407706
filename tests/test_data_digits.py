"""The demo data (gluon_tricks.data.digits): deterministic, stratified digits images."""
import os

import cv2
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import DIGITS_SIZE


def test_digits_dataset_is_deterministic_and_stratified(digits, tmp_path):
    assert (digits.num_train, digits.num_val) == (1437, 360)
    assert digits.classes == [str(i) for i in range(10)]
    counts = [len(os.listdir(os.path.join(digits.val_dir, c))) for c in digits.classes]
    assert sum(counts) == 360 and max(counts) - min(counts) <= 2    # stratified
    some = os.path.join(digits.train_dir, '3', sorted(os.listdir(
        os.path.join(digits.train_dir, '3')))[0])
    img = cv2.imread(some, cv2.IMREAD_UNCHANGED)
    assert img.shape == (DIGITS_SIZE, DIGITS_SIZE, 3) and img.max() > 200
    again = gd.make_digits_dataset(str(tmp_path), image_size=DIGITS_SIZE)
    for split in ('train', 'val'):
        for c in digits.classes:
            assert sorted(os.listdir(os.path.join(digits.root, split, c))) == \
                sorted(os.listdir(os.path.join(again.root, split, c)))
    with open(some, 'rb') as f1, open(some.replace(digits.root, again.root), 'rb') as f2:
        assert f1.read() == f2.read()
    with pytest.raises(FileExistsError):
        gd.make_digits_dataset(str(tmp_path))
    other = gd.make_digits_dataset(str(tmp_path), image_size=DIGITS_SIZE, seed=1, overwrite=True)
    assert sorted(os.listdir(os.path.join(other.val_dir, '3'))) != \
        sorted(os.listdir(os.path.join(digits.val_dir, '3')))
