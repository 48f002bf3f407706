"""The interface shared by every data source of the package, and per-epoch seeds.

A loader is an iterable over one epoch of ``(data, label)`` pairs:

* ``data``: float32 NDArray (N, 3, input_size, input_size), normalized (section 2.1);
* ``label``: float32 NDArray (N,) of class indices.

It has ``len(loader)`` (batches per epoch), ``num_samples`` (samples of this part per epoch),
``num_classes``, ``batch_size`` and ``train``. ``N`` is ``batch_size`` except for the last
batch of an epoch when ``last_batch='keep'`` (the default for validation): that batch holds
only the remaining real samples, so that a metric summed over the epoch counts every sample
of the part exactly once (no padding is ever yielded).

The yielded arrays may live in shared memory that the data workers reuse: use them before
asking for many more batches, or ``.copy()`` what you keep.

Epochs: ``loader.set_epoch(e)`` selects the epoch the next ``iter(loader)`` produces; each
``iter(loader)`` then advances to the next epoch by itself. The order and the augmentation of
epoch ``e`` depend only on ``(seed, e)`` (and the part), so a resumed run calls
``set_epoch(start_epoch)`` (``set_epoch(e, start_batch=k)`` for a checkpoint taken after ``k``
batches of epoch ``e``) and sees exactly the batches the uninterrupted run would have.
"""

from ..errors import UserError

from ..streams import derive_seed  # noqa: F401  (the package's name for it)

__all__ = ['EpochLoader', 'derive_seed', 'batches_per_epoch', 'LAST_BATCH_MODES', 'LabelError',
           'CorruptRecordError', 'CorruptImageError', 'EmptyDatasetError']

LAST_BATCH_MODES = ('discard', 'keep')


def batches_per_epoch(num_samples, batch_size, last_batch):
    """Number of batches of one epoch.

    Parameters
    ----------
    num_samples : int
        Samples of the part.
    batch_size : int
    last_batch : {'discard', 'keep'}
        ``'discard'`` drops the last incomplete batch, ``'keep'`` yields it smaller.

    Returns
    -------
    int
    """
    if last_batch not in LAST_BATCH_MODES:
        raise ValueError('last_batch must be one of %s, got %r' % (LAST_BATCH_MODES, last_batch))
    if last_batch == 'discard':
        return num_samples // batch_size
    return -(-num_samples // batch_size)


class EpochLoader(object):
    """Base class: epoch bookkeeping and the common attributes.

    Parameters
    ----------
    batch_size : int
    train : bool
    num_samples : int
        Samples per epoch of this part.
    num_classes : int
    last_batch : {'discard', 'keep'} or None
        None: ``'discard'`` for training (constant batch size, as GluonCV's training loader),
        ``'keep'`` for validation (every sample exactly once).
    """

    def __init__(self, batch_size, train, num_samples, num_classes, last_batch=None):
        if int(batch_size) <= 0:
            raise ValueError('batch_size must be positive, got %r' % (batch_size,))
        self.batch_size = int(batch_size)
        self.train = bool(train)
        self.num_samples = int(num_samples)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.last_batch = last_batch or ('discard' if train else 'keep')
        self._num_batches = batches_per_epoch(self.num_samples, self.batch_size, self.last_batch)
        self._epoch = 0

    def __len__(self):
        return self._num_batches

    @property
    def epoch(self):
        """The epoch the next ``iter(loader)`` produces."""
        return self._epoch

    def set_epoch(self, epoch, start_batch=0):
        """Make the next ``iter(loader)`` produce epoch ``epoch`` from batch ``start_batch``
        (exact resume, also from a checkpoint taken in the middle of an epoch).

        Parameters
        ----------
        epoch : int
        start_batch : int
            Batches of the epoch to leave out (they were trained before the checkpoint). The
            remaining batches are exactly those an uninterrupted run yields.
        """
        self._epoch = int(epoch)
        self._start_batch = int(start_batch)

    def __iter__(self):
        epoch, start = self._epoch, getattr(self, '_start_batch', 0)
        self._epoch, self._start_batch = epoch + 1, 0
        return self.iter_epoch(epoch, start)

    def iter_epoch(self, epoch, start_batch=0):  # pragma: no cover - abstract
        """Iterate over epoch ``epoch`` from batch ``start_batch``, without touching the epoch
        counter."""
        raise NotImplementedError

    def __repr__(self):
        return '%s(train=%s, num_samples=%d, num_classes=%s, batch_size=%d, batches=%d)' % (
            type(self).__name__, self.train, self.num_samples, self.num_classes,
            self.batch_size, len(self))


class LabelError(UserError, ValueError):
    """A label is not a class index: negative, not an integer, or >= ``num_classes``."""


class CorruptRecordError(UserError, IOError):
    """A RecordIO file holds a record that cannot be unpacked or decoded."""


class CorruptImageError(UserError, IOError):
    """An image file cannot be decoded."""


class EmptyDatasetError(UserError, ValueError):
    """A data source has no samples (empty folder, empty list, empty part)."""
