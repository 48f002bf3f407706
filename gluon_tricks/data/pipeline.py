"""From a source of encoded images to batches: sharding, per-sample seeds, workers.

Both image sources (RecordIO files and class folders) run through the same three pieces:

* :class:`ShardBatchSampler` chooses the samples of each batch of a part (a Horovod rank):
  for training, every epoch draws one permutation of the whole data set from
  ``(seed, epoch)``, the same on every rank; part ``i`` takes positions ``i, i + P, ...`` of
  it, cut to ``floor(n / P)`` samples, so the parts are disjoint, equally long and change
  every epoch. For validation, part ``i`` takes samples ``i, i + P, ...`` in file order; the
  parts cover the data set exactly once. Each training key carries a seed of its own, drawn
  for every sample of the data set from ``(seed, epoch)``.
* :class:`AugmentedDataset` decodes a sample and, for training, augments it with a
  ``numpy.random.Generator`` seeded by ``(sample seed, sample index)``: every draw of every
  sample is independent of its position in the batch, of the batch, of the epoch and of the
  rank, and depends on nothing else, so epoch ``e`` is reproduced exactly by a resumed run,
  whatever the number of worker processes.
* :class:`ImageLoader` runs them in worker processes (:class:`~.workers.WorkerLoader`).

Datasets of other libraries (GluonCV's VOC and ADE20K, for detection and segmentation) use
the same sampler: :class:`SeededDataset` runs their augmentation under each key's seed and
:class:`SamplerLoader` gives their worker loader the training loop's loader interface.
"""
import os
import random

import numpy as np

from .decode import decode_image, image_problem
from .transforms import PARAM_FIELDS, TrainTransform, ValTransform
from ..streams import stream_seed
from .base import EmptyDatasetError, EpochLoader, batches_per_epoch
from .workers import WorkerLoader, check_shared_memory

__all__ = ['ShardBatchSampler', 'AugmentedDataset', 'ImageLoader', 'SeededDataset', 'SamplerLoader']


class ShardBatchSampler(object):
    """Batches of sample indices for one part of the data, one epoch at a time.

    Parameters
    ----------
    num_samples : int
        Size of the whole data set.
    batch_size : int
    train : bool
        Shuffle per epoch and attach per-sample seeds (see the module notes).
    num_parts, part_index : int
    seed : int
    last_batch : {'discard', 'keep'}

    Notes
    -----
    Set :attr:`epoch` (and :attr:`start_batch`) before iterating. Training yields lists of
    ``(index, sample seed)`` tuples, validation lists of indices.
    """

    def __init__(self, num_samples, batch_size, train, num_parts=1, part_index=0, seed=0,
                 last_batch='discard'):
        if not 0 <= part_index < num_parts:
            raise ValueError('part_index must be in [0, num_parts), got %d of %d'
                             % (part_index, num_parts))
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.train = bool(train)
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        self.seed = int(seed)
        self.last_batch = last_batch
        # the position iteration starts at: epoch, and the batches of it already done (resume)
        self.epoch, self.start_batch = 0, 0
        if self.train:
            self.part_size = self.num_samples // self.num_parts
        else:
            self.part_size = len(range(self.part_index, self.num_samples, self.num_parts))

    def indices(self, epoch):
        """Sample indices of this part in epoch ``epoch`` (numpy array)."""
        if not self.train:
            return np.arange(self.part_index, self.num_samples, self.num_parts)
        order = np.random.RandomState(stream_seed(self.seed, 'data_order', epoch)).permutation(
            self.num_samples)
        return order[self.part_index::self.num_parts][:self.part_size]

    def __len__(self):
        return batches_per_epoch(self.part_size, self.batch_size, self.last_batch)

    def batches(self, epoch):
        """The list of batches (lists of keys) of epoch ``epoch``."""
        idx = self.indices(epoch)
        if self.train:
            seeds = np.random.RandomState(stream_seed(self.seed, 'sample_seeds', epoch)).randint(
                0, 2 ** 31 - 1, size=self.num_samples)
            keys = [(int(i), int(seeds[i])) for i in idx]
        else:
            keys = [int(i) for i in idx]
        return [keys[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]

    def __iter__(self):
        return iter(self.batches(self.epoch)[self.start_batch:])


class AugmentedDataset(object):
    """Decoded and transformed samples of a source, seeded per sample.

    ``dataset[i]`` gives validation sample ``i``; ``dataset[(i, s)]`` training sample ``i``
    with the generator ``numpy.random.default_rng([s, i])``. Returns ``(float32 (3, S, S),
    float32 label)``, plus the float32 draws in :data:`~gluon_tricks.data.transforms.PARAM_FIELDS`
    order when ``with_params`` (training only; for the statistical tests of the pipeline).

    Parameters
    ----------
    source : object
        ``len(source)``, ``source.read(i) -> (label, encoded image bytes)`` and
        ``source.corrupt(i, reason) -> Exception`` (an error naming the file and sample).
    transform : TrainTransform or ValTransform
    with_params : bool
    uint8 : bool
        Training batches of uint8 images before lighting and normalisation, plus each
        sample's lighting offset (:meth:`TrainTransform.apply` with ``raw``), to be
        normalized on the device: a quarter of the bytes through shared memory and to a GPU.
    """

    def __init__(self, source, transform, with_params=False, uint8=False):
        self._source = source
        self._transform = transform
        self._train = isinstance(transform, TrainTransform)
        self._with_params = bool(with_params and self._train)
        self.uint8 = bool(uint8 and self._train)
        self._pid = None

    def __len__(self):
        return len(self._source)

    def __getitem__(self, key):
        return self._sample(key)

    def _sample(self, key, out=None):
        """``(image, label[, draws])`` of one key, the image written into ``out`` if given."""
        if self._pid != os.getpid():       # a worker process: one OpenCV thread each
            from . import workers
            if not workers.IN_WORKER:       # ours run OpenCV sequentially already
                import cv2
                cv2.setNumThreads(1)
            self._pid = os.getpid()
        index, seed = key if isinstance(key, tuple) else (key, None)
        label, buf = self._source.read(index)
        if self._train:
            done = self._transform.from_bytes(buf, np.random.default_rng([seed, index]), out,
                                              self.uint8)
        else:
            img = decode_image(buf)
            done = None if img is None else self._transform(img, out)
        if done is None:
            raise self._source.corrupt(index, image_problem(buf) or
                                       'the image does not decode (%d bytes)' % len(buf))
        if not self._train:
            return done, np.float32(label)
        image, params, shape = done
        if self._with_params:
            return image, np.float32(label), np.asarray(params.vector(*shape), np.float32)
        return image, np.float32(label)

    def batch(self, keys, shared=False):
        """The samples of ``keys`` as a batch ``[data, label(, draws)(, offsets)]`` of NDArrays
        (float32 (N, 3, S, S), or uint8 with :attr:`uint8`; (N,); (N, len(PARAM_FIELDS));
        the (N, 3) lighting offsets with :attr:`uint8`), each image written straight into its
        place in the batch; in shared memory (``cpu_shared``) for a worker's batch."""
        import mxnet as mx
        ctx = mx.Context('cpu_shared', 0) if shared else mx.cpu()
        side = self._transform.cfg.input_size
        data = mx.nd.empty((len(keys), 3, side, side), ctx=ctx,
                           dtype='uint8' if self.uint8 else 'float32')
        images = numpy_view(data)
        labels, draws = np.empty(len(keys), np.float32), []
        offsets = np.empty((len(keys), 3), np.float32)
        for i, key in enumerate(keys):
            sample = self._sample(key, images[i])
            if self.uint8:
                offsets[i] = sample[0][1]
            labels[i] = sample[1]
            draws.extend(sample[2:])
        out = [data, mx.nd.array(labels, ctx=ctx, dtype='float32')]
        if draws:
            out.append(mx.nd.array(np.stack(draws), ctx=ctx, dtype='float32'))
        if self.uint8:
            out.append(mx.nd.array(offsets, ctx=ctx, dtype='float32'))
        return out

    def describe(self, keys):
        """The files (class folders) or record numbers of a batch, for error messages."""
        index = [k[0] if isinstance(k, tuple) else k for k in keys]
        items = getattr(self._source, 'items', None)
        names = [items[i][0] for i in index] if items is not None else \
            ['record %d' % i for i in index]
        return ', '.join(names[:6]) + (' ... (%d samples)' % len(names) if len(names) > 6 else '')


def numpy_view(array):
    """A writable numpy array over the memory of a CPU NDArray that no operation is pending
    on (a new ``mx.nd.empty``): what is written to it is the NDArray's content."""
    import ctypes
    from mxnet.base import _LIB, check_call
    pointer = ctypes.c_void_p()
    check_call(_LIB.MXNDArrayGetData(array.handle, ctypes.byref(pointer)))
    dtype = np.dtype(array.dtype)
    memory = (ctypes.c_char * (array.size * dtype.itemsize)).from_address(pointer.value)
    return np.frombuffer(memory, dtype).reshape(array.shape)


class ImageLoader(EpochLoader):
    """Batches of an image source through the paper's transforms (section 2.1).

    Iterating yields ``(data, label)``: float32 NDArrays (N, 3, S, S) normalized and (N,);
    with ``with_params``, training batches also carry the (N, len(PARAM_FIELDS)) draws.
    See :mod:`gluon_tricks.data.base` for the epoch and last-batch conventions.

    Parameters
    ----------
    source : object
        See :class:`AugmentedDataset`.
    batch_size : int
        Per-part batch size.
    train : bool
    aug : AugmentConfig
    num_parts, part_index : int
        Sharding (see the module notes).
    seed : int
    num_workers : int
        Worker processes of Gluon's ``DataLoader`` (0: decode in the calling process).
    num_classes : int
    last_batch : {'discard', 'keep'}, optional
    with_params : bool
    name : str
        Names the data in error messages (file or folder).
    uint8 : bool
        Training batches ``(uint8 data, label(, draws), lighting offsets)`` for normalisation
        on the device (:class:`AugmentedDataset`; :func:`gluon_tricks.engine.device_normalize`).
    """

    def __init__(self, source, batch_size, train, aug, num_parts, part_index, seed,
                 num_workers, num_classes, last_batch=None, with_params=False, name='',
                 uint8=False):
        self.aug = aug
        transform = TrainTransform(aug) if train else ValTransform(aug)
        self.dataset = AugmentedDataset(source, transform, with_params, uint8)
        self.uint8 = self.dataset.uint8
        self.sampler = ShardBatchSampler(len(source), batch_size, train, num_parts, part_index,
                                         seed, last_batch or ('discard' if train else 'keep'))
        super(ImageLoader, self).__init__(batch_size, train, self.sampler.part_size,
                                          num_classes, self.sampler.last_batch)
        if len(self) == 0:
            raise EmptyDatasetError('%s: part %d of %d has %d samples, fewer than one batch of '
                                    '%d' % (name, part_index, num_parts, self.sampler.part_size,
                                            batch_size))
        self.num_workers = max(0, int(num_workers))
        if self.num_workers:
            import cv2  # noqa: F401 - loaded once here, not in every worker of every epoch
            check_shared_memory(batch_size * 3 * aug.input_size ** 2 * (1 if self.uint8 else 4),
                                min(self.num_workers, len(self)), name)
        self._loader = WorkerLoader(self.dataset, self.sampler, num_workers=self.num_workers,
                                    name=name, describe=self.dataset.describe)

    #: Columns of the draws yielded with ``with_params``.
    param_fields = PARAM_FIELDS

    #: Hand each batch on in page-locked memory (``cpu_pinned``), from which CUDA copies to
    #: a GPU asynchronously and faster (Gluon's ``DataLoader(pin_memory=True)``); set for GPU
    #: training by :func:`~gluon_tricks.data.build_loaders`.
    pin_memory = False

    def iter_epoch(self, epoch, start_batch=0):
        """Iterate over epoch ``epoch`` from batch ``start_batch`` (does not change
        :attr:`epoch`). The epoch's worker processes end with the iteration."""
        self.sampler.epoch, self.sampler.start_batch = int(epoch), int(start_batch)
        for b, batch in enumerate(self._loader, int(start_batch)):
            batch = list(batch)
            batch[1] = batch[1].astype('float32', copy=False)
            if self.pin_memory:
                import mxnet as mx
                batch = [x.as_in_context(mx.cpu_pinned(0)) for x in batch]
            self.check_batch(batch[1], epoch, b)
            yield tuple(batch)

    def check_batch(self, label, epoch, batch):
        """Hook for per-batch label checks (RecordIO labels are only known when read)."""

    def close(self):
        """End the worker processes (a later iteration starts new ones)."""
        self._loader.close()


class SeededDataset(object):
    """Run a dataset's random augmentation under a per-sample seed.

    ``dataset[(i, s)]`` seeds Python's ``random`` and NumPy's global generator with ``s``,
    returns ``base[i]`` and restores both generators; ``dataset[i]`` is ``base[i]``. Used with
    :class:`gluon_tricks.data.ShardBatchSampler`, whose training batches carry a seed per
    sample derived from ``(seed, epoch, index)``: the augmentation of a sample in an epoch
    does not depend on worker processes, ranks or a resume. (GluonCV's segmentation crops draw
    from ``random``, its detection flips from ``numpy.random``.)

    Parameters
    ----------
    base : indexable
        E.g. a GluonCV ``VOCDetection`` or ``ADE20KSegmentation`` (with its transform).
    """

    def __init__(self, base):
        self._base = base

    def __len__(self):
        return len(self._base)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        if seed is None:
            return self._base[int(index)]
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed % (2 ** 32))
        try:
            return self._base[int(index)]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


class SamplerLoader(object):
    """A :class:`~gluon_tricks.data.workers.WorkerLoader` (or any iterable of batches) driven
    by a :class:`~gluon_tricks.data.ShardBatchSampler`, with the loop's loader interface:
    ``len()`` and ``set_epoch(epoch, start_batch)``; ``close()`` ends its worker processes."""

    def __init__(self, loader, sampler):
        self.loader, self.sampler = loader, sampler

    def __len__(self):
        return len(self.sampler)

    def set_epoch(self, epoch, start_batch=0):
        self.sampler.epoch, self.sampler.start_batch = epoch, start_batch

    def __iter__(self):
        return iter(self.loader)

    def close(self):
        """End the worker processes of the loader (a later epoch starts new ones)."""
        close = getattr(self.loader, 'close', None)
        if close is not None:
            close()
