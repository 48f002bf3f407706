"""The random streams of a run cannot collide: every (stream, position) in use has its own
seed, whatever the lengths of the tuples."""
import itertools

import pytest

from gluon_tricks.streams import STREAMS, derive_seed, stream_seed


def test_trailing_zeros_do_not_vanish():
    """numpy's SeedSequence pads with zeros: without the length word these were equal."""
    for s in (0, 1, 12345):
        seeds = {derive_seed(s), derive_seed(s, 0), derive_seed(s, 0, 0), derive_seed(s, 1),
                 derive_seed(s, 1, 0), derive_seed(s, 1, 0, 0)}
        assert len(seeds) == 6


def test_no_two_streams_or_positions_share_a_seed():
    """Every stream at every position a run of 3 seeds, 8 epochs, 4 ranks and 40 batches uses:
    all seeds distinct (the old derivation gave the init stream the epoch-0 shuffle's seed and
    the batch-0 step of rank 0 the per-sample seeds of its epoch)."""
    ranges = {'epoch': range(8), 'rank': range(4), 'batch': range(40)}
    seen = {}
    for seed in range(3):
        for name, (_, names) in STREAMS.items():
            for position in itertools.product(*(ranges[n] for n in names)):
                value = stream_seed(seed, name, *position)
                key = (seed, name) + position
                assert value not in seen, '%s and %s share seed %d' % (seen.get(value), key,
                                                                       value)
                seen[value] = key
    assert len(seen) == 3 * (1 + 8 + 8 + 3 * 8 * 4 * 40)


def test_stream_numbers_are_distinct_and_positions_checked():
    numbers = [n for n, _ in STREAMS.values()]
    assert len(set(numbers)) == len(numbers)
    with pytest.raises(TypeError, match='step_mxnet'):
        stream_seed(0, 'step_mxnet', 1)
    assert 0 <= stream_seed(7, 'init') < 2 ** 31 - 1
