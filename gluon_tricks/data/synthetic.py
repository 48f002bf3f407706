"""Synthetic data for benchmarks: the loader interface without any decoding cost."""
from .base import EpochLoader

__all__ = ['SyntheticLoader', 'IMAGENET_TRAIN_SAMPLES', 'IMAGENET_VAL_SAMPLES',
           'IMAGENET_CLASSES']

#: Images of the ILSVRC2012 training set (section 2.2: "1.3 million images").
IMAGENET_TRAIN_SAMPLES = 1281167
#: Images of the ILSVRC2012 validation set.
IMAGENET_VAL_SAMPLES = 50000
#: Classes of ILSVRC2012.
IMAGENET_CLASSES = 1000


class SyntheticLoader(EpochLoader):
    """Random batches of the right shape (``--synthetic-data``).

    One batch of standard-normal "normalized images" and uniform labels is drawn once (seeded)
    and yielded for every step, so that a benchmark measures the network and not the data.
    Yields ``(data, label)`` like the real loaders: float32 (N, 3, S, S) and float32 (N,).

    Parameters
    ----------
    batch_size : int
    num_samples : int
        Samples per epoch of this part (default: ImageNet's training set size).
    input_size : int
    num_classes : int
    train : bool
        Only selects the default ``last_batch``.
    seed : int
    dtype : str
        Data type of ``data`` (e.g. ``'float16'`` for an FP16 benchmark).
    last_batch : {'discard', 'keep'}, optional
    """

    def __init__(self, batch_size=256, num_samples=IMAGENET_TRAIN_SAMPLES, input_size=224,
                 num_classes=IMAGENET_CLASSES, train=True, seed=0, dtype='float32',
                 last_batch=None):
        super(SyntheticLoader, self).__init__(batch_size, train, num_samples, num_classes,
                                              last_batch)
        self.input_size = int(input_size)
        self.seed = int(seed)
        self.dtype = dtype
        self._batch = None
        self.classes = None

    def _make_batch(self):
        import numpy as np
        import mxnet as mx
        rng = np.random.RandomState(self.seed)
        shape = (self.batch_size, 3, self.input_size, self.input_size)
        data = mx.nd.array(rng.standard_normal(shape), dtype=self.dtype)
        label = mx.nd.array(rng.randint(0, self.num_classes, size=self.batch_size),
                            dtype='float32')
        return data, label

    def iter_epoch(self, epoch, start_batch=0):
        """Iterate over one epoch from batch ``start_batch`` (all epochs are the same)."""
        if self._batch is None:
            self._batch = self._make_batch()
        data, label = self._batch
        for b in range(int(start_batch), len(self)):
            valid = min(self.batch_size, self.num_samples - b * self.batch_size)
            if valid < self.batch_size:
                yield data[:valid], label[:valid]
            else:
                yield data, label
