"""The pieces that let other libraries' datasets (GluonCV's VOC, ADE20K) use our sampler
(gluon_tricks.data.pipeline): per-sample seeded augmentation and the loop's loader interface."""
import numpy as np

from gluon_tricks.data import ShardBatchSampler
from gluon_tricks.data.pipeline import SamplerLoader, SeededDataset


def test_seeded_dataset_repeats_random_draws():
    import random

    class Draw(object):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return i, random.random(), np.random.rand()

    data = SeededDataset(Draw())
    state = random.getstate()
    assert data[(1, 42)] == data[(1, 42)]
    assert data[(1, 42)] != data[(1, 43)]
    assert random.getstate() == state          # the caller's generator is untouched
    assert data[2][0] == 2


def test_sampler_loader_positions_its_sampler_and_closes_its_loader():
    class Loader(object):
        closed = False

        def __init__(self, sampler):
            self.sampler = sampler

        def __iter__(self):
            return iter(list(self.sampler))

        def close(self):
            self.closed = True

    sampler = ShardBatchSampler(20, 4, True, seed=1)
    inner = Loader(sampler)
    loader = SamplerLoader(inner, sampler)
    assert len(loader) == 5
    loader.set_epoch(3, start_batch=2)
    rest = list(loader)
    loader.set_epoch(3)
    whole = list(loader)
    assert len(whole) == 5 and rest == whole[2:]            # the epoch's batches from batch 2
    loader.set_epoch(4)
    assert list(loader) != whole                            # another epoch, another order
    loader.close()
    assert inner.closed
