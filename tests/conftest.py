"""Shared fixtures: small real data made by the tests themselves (nothing is downloaded)."""
import glob
import os
import shutil

import pytest

from gluon_tricks.data import make_digits_dataset, pack_class_folder

PER_CLASS_TRAIN, PER_CLASS_VAL = 16, 5


@pytest.fixture(scope='session')
def rec_dir(tmp_path_factory):
    """A 10-class RecordIO set of real digits: 160 training and 50 validation images."""
    root = tmp_path_factory.mktemp('digits')
    info = make_digits_dataset(str(root / 'full'), image_size=40)
    small = root / 'small'
    for split, keep in (('train', PER_CLASS_TRAIN), ('val', PER_CLASS_VAL)):
        for cls in info.classes:
            files = sorted(glob.glob(os.path.join(str(root / 'full'), split, cls, '*.png')))
            os.makedirs(str(small / split / cls))
            for f in files[:keep]:
                shutil.copy(f, str(small / split / cls))
    out = root / 'rec'
    out.mkdir()
    for split in ('train', 'val'):
        pack_class_folder(str(small / split), str(out / split), shuffle=split == 'train',
                          resize=0, encoding='.png', quality=3, progress=False)
    return str(out)
