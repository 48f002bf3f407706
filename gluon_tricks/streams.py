"""Every random stream of a run, by name, and the one derivation of their seeds.

A stream's seed is a function of ``--seed``, the stream's number in :data:`STREAMS` and its
position (epoch, rank, batch ...), so a run resumed anywhere repeats exactly what the
uninterrupted run drew. The derivation hashes ``(length, seed, stream, *position)`` with
numpy's ``SeedSequence``: the length word makes it collision-free by construction
(``SeedSequence`` pads its input with zeros, so without it ``(s, 0)``, ``(s, 0, 0)`` and
``(s,)`` would give one seed), and distinct streams differ in their second word.
"""
import numpy as np

__all__ = ['STREAMS', 'derive_seed', 'stream_seed']

#: name -> (number, names of its position values). Never renumber: the numbers are part of
#: every recorded trace.
STREAMS = {
    'init': (0, ()),                                  # the initial weights (every rank alike)
    'data_order': (1, ('epoch',)),                    # the shuffle of an epoch
    'sample_seeds': (2, ('epoch',)),                  # one augmentation seed per sample
    'step_mxnet': (3, ('epoch', 'rank', 'batch')),    # MXNet's generator before a step
    'step_numpy': (4, ('epoch', 'rank', 'batch')),    # numpy's and the step's (mixup lambdas)
    'step_python': (5, ('epoch', 'rank', 'batch')),   # Python's random
}


def derive_seed(*values):
    """A 31-bit seed from non-negative integers; distinct tuples (of any lengths) give
    distinct, statistically independent seeds. In ``[0, 2**31 - 1)``: valid for MXNet."""
    words = [len(values)] + [int(v) for v in values]
    state = np.random.SeedSequence(words).generate_state(1)[0]
    return int(state) % (2 ** 31 - 1)


def stream_seed(seed, name, *position):
    """The seed of stream ``name`` of :data:`STREAMS` at ``position`` (its values, in the
    order the table names them)."""
    number, names = STREAMS[name]
    if len(position) != len(names):
        raise TypeError('stream %r takes the position %s, got %r' % (name, names, position))
    return derive_seed(seed, number, *position)
