"""Class-folder data (no RecordIO needed): ``ImageFolderDataset`` + Gluon ``DataLoader``.

The transforms implement the same pipeline as the RecordIO path (section 2.1), see
:func:`gluon_tricks.data.train_transform`. Sharding and seeds:

* training: every epoch draws one permutation of the whole data set from ``(seed, epoch)``,
  the same on every worker; part ``i`` takes positions ``i, i + P, i + 2P, ...`` of it, cut
  to ``floor(n / P)`` samples, so the parts are disjoint, equally long, and change every epoch;
* validation: part ``i`` takes samples ``i, i + P, ...`` in file order; the parts cover the data
  set exactly once;
* augmentation: each sample of each epoch gets its own seed, derived from
  ``(seed, epoch, sample index)``, with which Python's ``random`` is seeded right before its
  transform (every random draw of :func:`~gluon_tricks.data.train_transform` comes from
  ``random``; the caller's ``random`` state is restored afterwards, MXNet's generator is not
  touched). The augmented image of a sample in an epoch is thus the same whatever the number
  of worker processes or parts.
"""
import os
import random

import numpy as np

from .augment import AugmentConfig, train_transform, val_transform
from .base import (CorruptImageError, EmptyDatasetError, EpochLoader, LabelError,
                   batches_per_epoch, derive_seed)
from .im2rec import IMAGE_EXTENSIONS

__all__ = ['FolderLoader', 'ShardBatchSampler', 'SeededTransformDataset', 'open_image_folder']


def open_image_folder(root, classes=None):
    """``ImageFolderDataset`` of ``root/<class>/<image>`` with checked, consistent labels.

    Parameters
    ----------
    root : str
    classes : list of str, optional
        Label order to use (the training classes for a validation folder, which may miss
        some). Default: sorted folder names, as ``ImageFolderDataset`` does.

    Returns
    -------
    mxnet.gluon.data.vision.ImageFolderDataset
        With ``items`` relabeled to ``classes`` and ``synsets = classes``.

    Raises
    ------
    FileNotFoundError, EmptyDatasetError, LabelError
        Missing folder; no class folder or no image; a folder not among ``classes``.
    """
    from mxnet.gluon.data.vision import ImageFolderDataset
    if not os.path.isdir(root):
        raise FileNotFoundError('image folder %r does not exist; expected root/<class>/<image> '
                                '(set --data-dir, or use --use-rec for RecordIO)' % root)
    if not any(os.path.isdir(os.path.join(root, d)) for d in os.listdir(root)):
        raise EmptyDatasetError('no class sub-directories in %r: expected root/<class>/<image>'
                                % root)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Ignoring <file> of type ..." for non-images
        ds = ImageFolderDataset(root, flag=1)
    if not ds.items:
        raise EmptyDatasetError('no images with extensions %s in the class folders of %r'
                                % (list(IMAGE_EXTENSIONS), root))
    if classes is not None:
        classes = list(classes)
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(ds.synsets) - set(index))
        if unknown:
            raise LabelError('class folder(s) %s in %r are not among the %d training classes'
                             % (unknown[:5], root, len(classes)))
        ds.items = [(path, index[ds.synsets[label]]) for path, label in ds.items]
        ds.synsets = classes
    return ds


class SeededTransformDataset(object):
    """Decode + transform samples of an ``ImageFolderDataset``, seeding per sample.

    ``dataset[i]`` gives the transformed sample ``i``; ``dataset[(i, s)]`` runs the transform
    with Python's ``random`` seeded by ``s`` (see the module notes). Decoding errors
    name the file. Returns ``(image NDArray (3, S, S) float32, label numpy.float32)``.

    Parameters
    ----------
    folder : ImageFolderDataset
    transform : callable
        Gluon transform of an HWC uint8 image.
    """

    def __init__(self, folder, transform):
        self._folder = folder
        self._transform = transform

    def __len__(self):
        return len(self._folder.items)

    def __getitem__(self, key):
        import mxnet as mx
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, label = self._folder.items[index]
        try:
            img = mx.image.imread(path, flag=1)
        except mx.base.MXNetError as e:
            raise CorruptImageError('cannot decode image %r (sample %d): %s'
                                    % (path, index, str(e).strip().splitlines()[-1]))
        if seed is None:
            out = self._transform(img)
        else:
            state = random.getstate()
            random.seed(seed)
            try:
                out = self._transform(img)
            finally:
                random.setstate(state)
        return out, np.float32(label)


class ShardBatchSampler(object):
    """Batches of sample indices for one part of the data, one epoch at a time.

    Parameters
    ----------
    num_samples : int
        Size of the whole data set.
    batch_size : int
    train : bool
        Shuffle per epoch and attach per-sample augmentation seeds (see the module notes).
    num_parts, part_index : int
    seed : int
    last_batch : {'discard', 'keep'}

    Notes
    -----
    Set :attr:`epoch` before iterating. Training yields lists of ``(index, sample seed)``
    tuples, validation lists of indices (both understood by :class:`SeededTransformDataset`).
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
        self.epoch = 0
        if self.train:
            self.part_size = self.num_samples // self.num_parts
        else:
            self.part_size = len(range(self.part_index, self.num_samples, self.num_parts))

    def indices(self, epoch):
        """Sample indices of this part in epoch ``epoch`` (numpy array)."""
        if not self.train:
            return np.arange(self.part_index, self.num_samples, self.num_parts)
        order = np.random.RandomState(derive_seed(self.seed, epoch, 0)).permutation(
            self.num_samples)
        return order[self.part_index::self.num_parts][:self.part_size]

    def __len__(self):
        return batches_per_epoch(self.part_size, self.batch_size, self.last_batch)

    def batches(self, epoch):
        """The list of batches (lists of keys) of epoch ``epoch``."""
        idx = self.indices(epoch)
        if self.train:
            seeds = np.random.RandomState(derive_seed(self.seed, epoch, 1)).randint(
                0, 2 ** 31 - 1, size=self.num_samples)
            keys = [(int(i), int(seeds[i])) for i in idx]
        else:
            keys = [int(i) for i in idx]
        return [keys[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]

    def __iter__(self):
        return iter(self.batches(self.epoch))


class FolderLoader(EpochLoader):
    """Batches of a class-folder tree through Gluon transforms (section 2.1).

    Iterating yields ``(data, label)``: ``data`` float32 NDArray (N, 3, S, S) normalized,
    ``label`` float32 NDArray (N,). See :mod:`gluon_tricks.data.base` for the epoch and
    last-batch conventions.

    Parameters
    ----------
    root : str
        ``root/<class>/<image>``.
    batch_size : int
        Per-part batch size.
    train : bool
    aug : AugmentConfig, optional
        Default: the paper's.
    num_parts, part_index : int
        Sharding (see the module notes).
    seed : int
    num_workers : int
        Worker processes of the ``DataLoader`` (0: decode in the main process).
    classes : list of str, optional
        Label order (pass the training loader's ``classes`` to a validation loader).
    num_classes : int, optional
        Default: ``len(classes)``. Labels must be below it.
    last_batch : {'discard', 'keep'}, optional
        Default ``'discard'`` for training, ``'keep'`` for validation.

    Raises
    ------
    FileNotFoundError, EmptyDatasetError, LabelError
        At construction, for a missing or empty folder or mismatched classes.
    CorruptImageError
        While iterating, for an image that does not decode (the message names the file).
    """

    def __init__(self, root, batch_size=256, train=True, aug=None, num_parts=1, part_index=0,
                 seed=0, num_workers=4, classes=None, num_classes=None, last_batch=None):
        from mxnet import gluon
        self.aug = aug or AugmentConfig()
        self.root = root
        self.folder = open_image_folder(root, classes)
        self.classes = list(self.folder.synsets)
        if num_classes is None:
            num_classes = len(self.classes)
        if len(self.classes) > num_classes:
            raise LabelError('%r has %d classes, more than num_classes=%d; set --num-classes '
                             'correctly' % (root, len(self.classes), num_classes))
        transform = train_transform(self.aug) if train else val_transform(self.aug)
        self.dataset = SeededTransformDataset(self.folder, transform)
        self.sampler = ShardBatchSampler(len(self.dataset), batch_size, train, num_parts,
                                         part_index, seed, last_batch or
                                         ('discard' if train else 'keep'))
        super(FolderLoader, self).__init__(batch_size, train, self.sampler.part_size,
                                           num_classes, self.sampler.last_batch)
        if len(self) == 0:
            raise EmptyDatasetError('%s: part %d has %d samples, fewer than one batch of %d'
                                    % (root, part_index, self.sampler.part_size, batch_size))
        self._loader = gluon.data.DataLoader(self.dataset, batch_sampler=self.sampler,
                                             num_workers=int(num_workers))

    def iter_epoch(self, epoch):
        """Iterate over epoch ``epoch`` (does not change :attr:`epoch`)."""
        self.sampler.epoch = int(epoch)
        for data, label in self._loader:
            yield data, label.astype('float32', copy=False)
