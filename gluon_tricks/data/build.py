"""The training and validation loaders a :class:`DataConfig` selects."""
from .folder import FolderLoader
from .recordio import RecordLoader
from .synthetic import (SyntheticLoader, IMAGENET_CLASSES, IMAGENET_TRAIN_SAMPLES,
                        IMAGENET_VAL_SAMPLES)

__all__ = ['build_loaders']


def build_loaders(cfg, batch_size, num_parts=1, part_index=0, seed=0, val_batch_size=None,
                  shard_val=True, with_val=True, progress=True, pin_memory=False, uint8=False):
    """``(train_loader, val_loader)`` of ``cfg``; both yield ``(data, label)`` (:mod:`.base`).

    ``--synthetic-data``: :class:`SyntheticLoader`; ``--use-rec``: :class:`RecordLoader` on
    ``cfg.rec_paths('train'/'val')``; otherwise :class:`FolderLoader` on ``DATA_DIR/train``
    and ``DATA_DIR/val``. The class count is ``--num-classes`` or the training data's; the
    validation data is checked against it (folders: labeled with the training classes).

    Parameters
    ----------
    cfg : DataConfig
    batch_size : int
        Per-part (per-worker) training batch size.
    num_parts, part_index : int
        Sharding for distributed training (e.g. Horovod ``size()`` and ``rank()``).
    seed : int
        Base seed of shuffling and augmentation.
    val_batch_size : int, optional
        Default: ``batch_size``.
    shard_val : bool
        Shard the validation data too (each worker evaluates its part once; sum the metric
        counts over workers). False: every worker gets the whole validation set.
    with_val : bool
        False returns ``(train_loader, None)``.
    progress : bool
        Progress bar for a label scan of a RecordIO file without ``.lst``.
    pin_memory : bool
        Image batches in page-locked memory (``ImageLoader.pin_memory``), for GPU devices.
    uint8 : bool
        Training batches as uint8 images plus lighting offsets, normalized on the device
        (``ImageLoader`` ``uint8``), for GPU devices; synthetic data stays float32.
    """
    aug = cfg.augment()
    val_batch_size = val_batch_size or batch_size
    vparts, vindex = (num_parts, part_index) if shard_val else (1, 0)
    workers, num_classes = cfg.num_workers, cfg.num_classes
    if workers is None:
        from ..threads import data_workers
        workers = data_workers()[0]
    if cfg.synthetic_data:
        nc = num_classes or IMAGENET_CLASSES
        train = SyntheticLoader(batch_size, IMAGENET_TRAIN_SAMPLES // num_parts, aug.input_size,
                                nc, train=True, seed=seed)
        val = SyntheticLoader(val_batch_size, IMAGENET_VAL_SAMPLES // vparts, aug.input_size, nc,
                              train=False, seed=seed + 1) if with_val else None
        return train, val
    if cfg.use_rec:
        rec, idx = cfg.rec_paths('train')
        train = RecordLoader(rec, idx, batch_size, True, aug, num_parts, part_index, seed,
                             workers, num_classes, progress=progress, uint8=uint8)
        val = None
        if with_val:
            rec, idx = cfg.rec_paths('val')
            val = RecordLoader(rec, idx, val_batch_size, False, aug, vparts, vindex, seed,
                               workers, train.num_classes, progress=progress)
    else:
        train = FolderLoader(cfg.folder('train'), batch_size, True, aug, num_parts, part_index,
                             seed, workers, num_classes=num_classes, uint8=uint8)
        val = None
        if with_val:
            val = FolderLoader(cfg.folder('val'), val_batch_size, False, aug, vparts, vindex,
                               seed, workers, classes=train.classes,
                               num_classes=train.num_classes)
    for loader in (train, val):
        if loader is not None:
            loader.pin_memory = bool(pin_memory)
    return train, val
