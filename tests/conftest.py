"""Shared fixtures: small real data made by the tests themselves (nothing is downloaded)."""
import glob
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools.*

from gluon_tricks.data import make_digits_dataset, pack_class_folder
from gluon_tricks.precision import bfloat16_cpu_support
from helpers.data_trees import DIGITS_SIZE, write_color_tree

PER_CLASS_TRAIN, PER_CLASS_VAL = 16, 5


def bfloat16_skip_reason():
    """``None`` where the CPU has native bfloat16 (``avx512_bf16`` or ``amx_bf16`` among
    :func:`gluon_tricks.cpu.cpu_flags`: ``/proc/cpuinfo``, or ``GLUON_TRICKS_CPU_FLAGS`` when
    set), else a skip reason that names the missing CPU flag
    (:func:`gluon_tricks.precision.bfloat16_cpu_support`)."""
    ok, reason = bfloat16_cpu_support()
    return None if ok else 'bfloat16 training needs a native bfloat16 CPU: ' + reason


#: ``@requires_bfloat16``: skip a test on CPUs without avx512_bf16 / amx_bf16 (decided when
#: the test module is imported, so under the masked CI run as well). Mark such tests (or
#: their module) ``cpu_dependent`` too: see pytest.ini.
requires_bfloat16 = pytest.mark.skipif(bfloat16_skip_reason() is not None,
                                       reason=bfloat16_skip_reason() or 'bfloat16 available')


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


# ------------------------------------------------------- the data of tests/test_data_*.py
# Built once per session; the tests only read them (a test that changes files copies them).

@pytest.fixture(scope='session')
def color_tree(tmp_path_factory):
    """Three class folders (cat, ant, bee) of 5 constant-color 40x48 PNGs each:
    ``(root, {relative path: (index, rgb)})`` (:func:`helpers.data_trees.write_color_tree`)."""
    root = str(tmp_path_factory.mktemp('color_tree'))
    files = write_color_tree(root)
    return root, files


@pytest.fixture(scope='session')
def color_rec(color_tree, tmp_path_factory):
    """:func:`color_tree` packed, shuffled, into ``train.rec``: ``(PackResult, classes)``."""
    root, files = color_tree
    out = str(tmp_path_factory.mktemp('color_rec'))
    res, classes = pack_class_folder(root, os.path.join(out, 'train'), shuffle=True, seed=3,
                                     encoding='.png', quality=3, progress=False)
    return res, classes


@pytest.fixture(scope='session')
def digits(tmp_path_factory):
    """The demo's digits data at 40 px: 1,437 training and 360 validation images."""
    out = str(tmp_path_factory.mktemp('digits'))
    return make_digits_dataset(out, image_size=DIGITS_SIZE)


@pytest.fixture(scope='session')
def digits_rec(digits, tmp_path_factory):
    """:func:`digits` packed into ``train.rec`` and ``val.rec``: ``(train, val)`` PackResults."""
    out = str(tmp_path_factory.mktemp('digits_rec'))
    train, classes = pack_class_folder(digits.train_dir, os.path.join(out, 'train'),
                                       encoding='.png', quality=3, num_workers=2,
                                       progress=False)
    val, _ = pack_class_folder(digits.val_dir, os.path.join(out, 'val'), classes=classes,
                               shuffle=False, encoding='.png', quality=3, progress=False)
    return train, val
