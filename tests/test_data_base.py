"""The epoch loaders (gluon_tricks.data.base): a resume from the middle of an epoch yields
exactly the rest of that epoch, for every source."""
import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import INPUT, collect


@pytest.mark.parametrize('kind', ['rec', 'folder', 'synthetic'])
def test_resume_from_the_middle_of_an_epoch(kind, digits, digits_rec):
    """set_epoch(e, start_batch=k) yields exactly the batches k, k+1, ... of epoch e."""
    cfg = gd.AugmentConfig(input_size=INPUT)
    make = {'rec': lambda: gd.RecordLoader(digits_rec[0].rec_path, batch_size=64, aug=cfg,
                                           seed=3, num_workers=1, progress=False),
            'folder': lambda: gd.FolderLoader(digits.train_dir, batch_size=64, aug=cfg, seed=3,
                                              num_workers=0),
            'synthetic': lambda: gd.SyntheticLoader(64, 300, INPUT, 10)}[kind]
    a, b = make(), make()
    a.set_epoch(2)
    full_d, full_l = collect(a)
    assert a.epoch == 3
    b.set_epoch(2, start_batch=3)
    part_d, part_l = collect(b)
    assert len(part_d) == len(full_d) - 3 and b.epoch == 3
    assert all(np.array_equal(x, y) for x, y in zip(part_d, full_d[3:]))
    assert all(np.array_equal(x, y) for x, y in zip(part_l, full_l[3:]))
    next_d, _ = collect(b)                                     # then epoch 3 from its start
    assert len(next_d) == len(full_d)
