"""The data of the paper (He et al., 2018, section 2.1), split by role.

* options: :class:`DataConfig`, every data flag; :func:`build_loaders` makes the loaders.
* sources, each an :class:`EpochLoader` of ``(data, label)`` batches (:mod:`.base`):
  :class:`RecordLoader` (:mod:`.recordio`, on the file reader of :mod:`.recfile`),
  :class:`FolderLoader` (:mod:`.folder`), :class:`SyntheticLoader`; :mod:`.digits` writes
  the demo data. The image sources share :mod:`.pipeline` (sharding, per-sample seeds,
  worker processes).
* transforms (:mod:`.transforms`): :class:`TrainTransform` and the one :class:`ValTransform`
  of training, export, predict and evaluate; decoding (:mod:`.decode`).
* lists (:mod:`.lists`): ``.lst`` files, label files, class names; packing into RecordIO
  (:mod:`.pack`); verification of record files (:mod:`.verify`).
"""
from .base import (EpochLoader, derive_seed, LabelError, CorruptRecordError, CorruptImageError,
                   EmptyDatasetError)
from .options import DataConfig, DEFAULT_DATA_DIR
from .decode import decode_image, image_problem
from .transforms import (AugmentConfig, AugParams, TrainTransform, ValTransform, load_image,
                         IMAGENET_MEAN, IMAGENET_STD, PARAM_FIELDS)
from .lists import (list_class_folder, list_flat_folder, read_label_file, write_lst, read_lst,
                    write_class_names, read_class_names, check_labels, IMAGE_EXTENSIONS,
                    CLASSES_FILE)
from .recfile import RecordFile, read_index, rebuild_index
from .verify import verify_record_file, VerifyReport, is_verified, write_verified_stamp
from .pack import pack_records, pack_class_folder, PackResult
from .pipeline import ShardBatchSampler, AugmentedDataset, ImageLoader
from .recordio import RecordLoader, RecordInfo, record_info, scan_record_labels
from .folder import FolderLoader, FolderSource
from .synthetic import (SyntheticLoader, IMAGENET_TRAIN_SAMPLES, IMAGENET_VAL_SAMPLES,
                        IMAGENET_CLASSES)
from .build import build_loaders
from .digits import make_digits_dataset, DigitsInfo

__all__ = [
    'EpochLoader', 'derive_seed', 'LabelError', 'CorruptRecordError', 'CorruptImageError',
    'EmptyDatasetError',
    'DataConfig', 'DEFAULT_DATA_DIR',
    'AugmentConfig', 'AugParams', 'TrainTransform', 'ValTransform', 'decode_image',
    'image_problem', 'load_image', 'IMAGENET_MEAN', 'IMAGENET_STD', 'PARAM_FIELDS',
    'list_class_folder', 'list_flat_folder', 'read_label_file', 'write_lst', 'read_lst',
    'write_class_names', 'read_class_names', 'check_labels', 'IMAGE_EXTENSIONS', 'CLASSES_FILE',
    'RecordFile', 'read_index', 'rebuild_index',
    'verify_record_file', 'VerifyReport', 'is_verified', 'write_verified_stamp',
    'pack_records', 'pack_class_folder', 'PackResult',
    'ShardBatchSampler', 'AugmentedDataset', 'ImageLoader',
    'RecordLoader', 'RecordInfo', 'record_info', 'scan_record_labels',
    'FolderLoader', 'FolderSource',
    'SyntheticLoader', 'IMAGENET_TRAIN_SAMPLES', 'IMAGENET_VAL_SAMPLES', 'IMAGENET_CLASSES',
    'build_loaders', 'make_digits_dataset', 'DigitsInfo',
]
