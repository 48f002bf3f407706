"""Data pipeline of the paper (He et al., 2018, section 2.1).

Sources, all yielding ``(data, label)`` batches (float32 NCHW normalized, float32 (N,)) with
``len()``, ``num_samples``, ``num_classes`` and per-epoch seeding (:mod:`.base`):

* :class:`RecordLoader`: RecordIO files (GluonCV's ImageNet format), read in Python;
* :class:`FolderLoader`: class folders;
* :class:`SyntheticLoader`: random data for benchmarks.

The first two share one pipeline (:mod:`.pipeline`: sharding, per-sample seeded augmentation,
worker processes) and one implementation of section 2.1 (:mod:`.augment`).
:func:`add_data_args` adds the flags, :func:`build_loaders` builds the loaders from them,
:mod:`.im2rec` packs folders into RecordIO, :func:`make_digits_dataset` writes the demo data.
"""
from .transforms import (AugmentConfig, AugParams, TrainTransform, ValTransform, decode_image,
                         image_problem, IMAGENET_MEAN, IMAGENET_STD, PARAM_FIELDS)
from .options import DataConfig, DEFAULT_DATA_DIR, add_data_args, config_from_args
from .base import (EpochLoader, derive_seed, LabelError, CorruptRecordError, CorruptImageError,
                   EmptyDatasetError)
from .im2rec import (list_class_folder, list_flat_folder, read_label_file, write_lst, read_lst,
                     write_class_names, read_class_names, pack_records, pack_class_folder,
                     PackResult, IMAGE_EXTENSIONS, CLASSES_FILE)
from .pipeline import ShardBatchSampler, AugmentedDataset, ImageLoader
from .recordio import (RecordLoader, RecordFile, RecordInfo, record_info, read_index,
                       verify_record_file, VerifyReport, rebuild_index, scan_record_labels,
                       check_labels, is_verified, write_verified_stamp)
from .folder import FolderLoader, FolderSource, open_image_folder
from .synthetic import (SyntheticLoader, IMAGENET_TRAIN_SAMPLES, IMAGENET_VAL_SAMPLES,
                        IMAGENET_CLASSES)
from .build import build_loaders
from .digits import make_digits_dataset, DigitsInfo

__all__ = [
    'AugmentConfig', 'AugParams', 'TrainTransform', 'ValTransform', 'decode_image',
    'image_problem', 'DataConfig', 'DEFAULT_DATA_DIR', 'add_data_args', 'config_from_args',
    'IMAGENET_MEAN', 'IMAGENET_STD', 'PARAM_FIELDS',
    'EpochLoader', 'derive_seed', 'LabelError', 'CorruptRecordError', 'CorruptImageError',
    'EmptyDatasetError',
    'list_class_folder', 'list_flat_folder', 'read_label_file', 'write_lst', 'read_lst',
    'write_class_names', 'read_class_names', 'pack_records', 'pack_class_folder',
    'PackResult', 'IMAGE_EXTENSIONS', 'CLASSES_FILE',
    'ShardBatchSampler', 'AugmentedDataset', 'ImageLoader',
    'RecordLoader', 'RecordFile', 'RecordInfo', 'record_info', 'read_index',
    'verify_record_file', 'VerifyReport', 'rebuild_index', 'scan_record_labels',
    'check_labels', 'is_verified', 'write_verified_stamp',
    'FolderLoader', 'FolderSource', 'open_image_folder',
    'SyntheticLoader', 'IMAGENET_TRAIN_SAMPLES', 'IMAGENET_VAL_SAMPLES', 'IMAGENET_CLASSES',
    'build_loaders', 'make_digits_dataset', 'DigitsInfo',
]
