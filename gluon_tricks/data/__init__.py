"""Data pipeline of the paper (He et al., 2018, section 2.1).

Sources, all yielding ``(data, label)`` batches (float32 NCHW normalized, float32 (N,)) with
``len()``, ``num_samples``, ``num_classes`` and per-epoch seeding (:mod:`.base`):

* :class:`RecordLoader`: RecordIO through ``mx.io.ImageRecordIter`` (fast, GluonCV's ImageNet
  path);
* :class:`FolderLoader`: class folders through ``ImageFolderDataset`` and Gluon transforms;
* :class:`SyntheticLoader`: random data for benchmarks.

:func:`add_data_args` adds the flags, :func:`build_loaders` builds the loaders from them,
:mod:`.im2rec` packs folders into RecordIO, :func:`make_digits_dataset` writes the demo data.
"""
from .augment import (AugmentConfig, add_data_args, config_from_args, record_iter_kwargs,
                      train_transform, val_transform, default_rec_paths, ColorJitter,
                      RandomFlip, PCALighting, IMAGENET_MEAN, IMAGENET_STD)
from .base import (EpochLoader, derive_seed, LabelError, CorruptRecordError, CorruptImageError,
                   EmptyDatasetError)
from .im2rec import (list_class_folder, list_flat_folder, read_label_file, write_lst, read_lst,
                     write_class_names, read_class_names, pack_records, pack_class_folder,
                     PackResult, IMAGE_EXTENSIONS, CLASSES_FILE)
from .recordio import (RecordLoader, RecordInfo, record_info, verify_record_file, VerifyReport,
                       rebuild_index, scan_record_labels, part_sizes, check_labels,
                       find_input_sized_records, is_verified, write_verified_stamp)
from .folder import FolderLoader, ShardBatchSampler, open_image_folder
from .synthetic import (SyntheticLoader, IMAGENET_TRAIN_SAMPLES, IMAGENET_VAL_SAMPLES,
                        IMAGENET_CLASSES)
from .build import build_loaders
from .digits import make_digits_dataset, DigitsInfo

__all__ = [
    'AugmentConfig', 'add_data_args', 'config_from_args', 'record_iter_kwargs',
    'train_transform', 'val_transform', 'default_rec_paths', 'ColorJitter', 'RandomFlip',
    'PCALighting', 'IMAGENET_MEAN', 'IMAGENET_STD',
    'EpochLoader', 'derive_seed', 'LabelError', 'CorruptRecordError', 'CorruptImageError',
    'EmptyDatasetError',
    'list_class_folder', 'list_flat_folder', 'read_label_file', 'write_lst', 'read_lst',
    'write_class_names', 'read_class_names', 'pack_records', 'pack_class_folder',
    'PackResult', 'IMAGE_EXTENSIONS', 'CLASSES_FILE',
    'RecordLoader', 'RecordInfo', 'record_info', 'verify_record_file', 'VerifyReport',
    'rebuild_index', 'scan_record_labels', 'part_sizes', 'check_labels',
    'find_input_sized_records', 'is_verified', 'write_verified_stamp',
    'FolderLoader', 'ShardBatchSampler', 'open_image_folder',
    'SyntheticLoader', 'IMAGENET_TRAIN_SAMPLES', 'IMAGENET_VAL_SAMPLES', 'IMAGENET_CLASSES',
    'build_loaders', 'make_digits_dataset', 'DigitsInfo',
]
