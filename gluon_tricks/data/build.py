"""One entry point for the training script: the loaders selected by the data flags."""
import os

from .augment import config_from_args, default_rec_paths, DEFAULT_DATA_DIR
from .folder import FolderLoader
from .recordio import RecordLoader
from .synthetic import (SyntheticLoader, IMAGENET_CLASSES, IMAGENET_TRAIN_SAMPLES,
                        IMAGENET_VAL_SAMPLES)

__all__ = ['build_loaders']


def build_loaders(args, batch_size, val_batch_size=None, num_parts=1, part_index=0, seed=0,
                  shard_val=True, with_val=True, progress=True):
    """Training and validation loaders from the flags of :func:`add_data_args`.

    ``--synthetic-data`` gives :class:`SyntheticLoader`; ``--use-rec`` gives
    :class:`RecordLoader` on ``--rec-train``/``--rec-val`` (default ``DATA_DIR/train.rec``,
    ``DATA_DIR/val.rec``); otherwise :class:`FolderLoader` on ``DATA_DIR/train`` and
    ``DATA_DIR/val``. The number of classes is ``--num-classes`` or comes from the training
    data, and the validation data is checked against it (and, for folders, labeled with the
    training classes).

    Parameters
    ----------
    args : argparse.Namespace
    batch_size : int
        Per-part (per-worker) training batch size.
    val_batch_size : int, optional
        Default: ``batch_size``.
    num_parts, part_index : int
        Sharding for distributed training (e.g. Horovod ``size()`` and ``rank()``).
    seed : int
        Base seed of shuffling and augmentation.
    shard_val : bool
        Shard the validation data too (each worker evaluates its part exactly once; sum the
        metric counts over workers). False: every worker gets the whole validation set.
    with_val : bool
        False returns ``(train_loader, None)``.
    progress : bool
        Progress bar for a label scan of a RecordIO file without ``.lst``.

    Returns
    -------
    tuple
        ``(train_loader, val_loader)``; both yield ``(data, label)`` (see
        :mod:`gluon_tricks.data.base`).
    """
    aug = config_from_args(args)
    val_batch_size = val_batch_size or batch_size
    vparts, vindex = (num_parts, part_index) if shard_val else (1, 0)
    workers = getattr(args, 'num_workers', 4)
    num_classes = getattr(args, 'num_classes', None)
    if getattr(args, 'synthetic_data', False):
        nc = num_classes or IMAGENET_CLASSES
        train = SyntheticLoader(batch_size, IMAGENET_TRAIN_SAMPLES // num_parts, aug.input_size,
                                nc, train=True, seed=seed)
        val = SyntheticLoader(val_batch_size, IMAGENET_VAL_SAMPLES // vparts, aug.input_size, nc,
                              train=False, seed=seed + 1) if with_val else None
        return train, val
    if getattr(args, 'use_rec', False):
        rec, idx = default_rec_paths(args, 'train')
        train = RecordLoader(rec, idx, batch_size, True, aug, num_parts, part_index, seed,
                             workers, num_classes, progress=progress)
        val = None
        if with_val:
            rec, idx = default_rec_paths(args, 'val')
            val = RecordLoader(rec, idx, val_batch_size, False, aug, vparts, vindex, seed,
                               workers, train.num_classes, progress=progress)
        return train, val
    data_dir = os.path.expanduser(getattr(args, 'data_dir', DEFAULT_DATA_DIR))
    train = FolderLoader(os.path.join(data_dir, 'train'), batch_size, True, aug, num_parts,
                         part_index, seed, workers, num_classes=num_classes)
    val = None
    if with_val:
        val = FolderLoader(os.path.join(data_dir, 'val'), val_batch_size, False, aug, vparts,
                           vindex, seed, workers, classes=train.classes,
                           num_classes=train.num_classes)
    return train, val
