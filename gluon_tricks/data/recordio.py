"""The RecordIO source: :class:`RecordLoader` over a ``.rec``/``.idx`` pair.

Records are read in Python (:class:`~gluon_tricks.data.RecordFile`), decoded with OpenCV and
augmented by the pipeline every image source shares (:mod:`.pipeline`); the parts are strided
slices of a per-epoch permutation of the whole file, so a ``.rec`` need not be shuffled when
packed. ``mx.io.ImageRecordIter`` is not used: with ``seed_aug`` sample ``j`` of every batch
gets the same draws, without it an epoch cannot be reproduced, and a bad record kills the
process (MXNet 1.9.1; details in docs/design.md).
"""
import os

import numpy as np

from .base import EmptyDatasetError, LabelError
from .lists import CLASSES_FILE, check_labels, read_class_names, read_lst
from .pipeline import ImageLoader
from .recfile import RecordFile, read_index, record_paths
from .transforms import AugmentConfig
from .verify import is_verified, verify_record_file

__all__ = ['RecordLoader', 'RecordInfo', 'record_info', 'scan_record_labels']


def scan_record_labels(rec_path, idx_path=None, progress=True):
    """Read the label of every record (headers of the whole file, with a progress bar).

    Parameters
    ----------
    rec_path : str
    idx_path : str, optional
        Default: next to the .rec.
    progress : bool

    Returns
    -------
    numpy.ndarray of float32
        Labels in key order.
    """
    from tqdm import tqdm
    rec_path, idx_path = record_paths(rec_path, idx_path)
    records = RecordFile(rec_path, idx_path)
    labels = [records.read(i)[0] for i in tqdm(
        range(len(records)), disable=not progress,
        desc='scan labels of %s (--num-classes or a .lst skips this)'
        % os.path.basename(rec_path))]
    return np.asarray(labels, dtype=np.float32)


class RecordInfo(object):
    """What the data says about a RecordIO file (see :func:`record_info`).

    Attributes
    ----------
    rec_path, idx_path : str
    num_samples : int
        Records in the file (from the ``.idx``).
    num_classes : int
        From the argument, else ``max(label) + 1``.
    labels : numpy.ndarray or None
        Labels when read from the ``.lst`` or a scan.
    label_source : str
        ``'lst'``, ``'scan'`` or ``'argument'``.
    classes : list of str or None
        Class names from ``classes.txt`` next to the .rec, if present.
    """

    def __init__(self, rec_path, idx_path, num_samples, num_classes, labels, label_source,
                 classes):
        self.rec_path = rec_path
        self.idx_path = idx_path
        self.num_samples = num_samples
        self.num_classes = num_classes
        self.labels = labels
        self.label_source = label_source
        self.classes = classes

    def __repr__(self):
        return 'RecordInfo(%r, num_samples=%d, num_classes=%s, labels from %s)' % (
            self.rec_path, self.num_samples, self.num_classes, self.label_source)


def record_info(rec_path, idx_path=None, num_classes=None, lst_path=None, scan=True,
                progress=True):
    """Number of samples and classes of a RecordIO file, from the data.

    The sample count comes from the ``.idx``. Labels come from the ``.lst`` next to the
    ``.rec`` (same name, ``.lst``) if present; otherwise, when ``num_classes`` is not given,
    from a scan of all record headers. The labels read are checked (integers >= 0, below
    ``num_classes`` when given).

    Parameters
    ----------
    rec_path : str
    idx_path : str, optional
        Default: the .rec path with ``.idx``.
    num_classes : int, optional
        The ``--num-classes`` flag; None derives it as ``max(label) + 1``.
    lst_path : str, optional
        Default: the .rec path with ``.lst`` (used only if it exists).
    scan : bool
        Allow the header scan when there is neither ``.lst`` nor ``num_classes`` (it reads the
        whole file). If False, that case is an error.
    progress : bool

    Returns
    -------
    RecordInfo

    Raises
    ------
    FileNotFoundError
        Missing ``.rec`` or ``.idx`` (the message says how to create them).
    LabelError
        Bad labels, or a ``.lst`` whose line count differs from the ``.idx``.
    """
    stem = os.path.splitext(rec_path)[0]
    rec_path, idx_path = record_paths(rec_path, idx_path)
    n = len(read_index(idx_path)[0])
    if n == 0:
        raise EmptyDatasetError('%s lists no records' % idx_path)
    lst_path = lst_path or stem + '.lst'
    labels, source = None, 'argument'
    if os.path.isfile(lst_path):
        labels = np.asarray([r[1] for r in read_lst(lst_path)], dtype=np.float32)
        source = 'lst'
        if labels.size != n:
            raise LabelError('%s lists %d images but %s has %d records: the list does not '
                             'belong to this RecordIO file (remove or regenerate it)'
                             % (lst_path, labels.size, idx_path, n))
        check_labels(labels, num_classes, lst_path)
    elif num_classes is None:
        if not scan:
            raise ValueError('no %s next to %s: give --num-classes or allow a label scan'
                             % (lst_path, rec_path))
        labels = scan_record_labels(rec_path, idx_path, progress)
        source = 'scan'
        check_labels(labels, None, rec_path)
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    classes_path = os.path.join(os.path.dirname(os.path.abspath(rec_path)), CLASSES_FILE)
    classes = read_class_names(classes_path) if os.path.isfile(classes_path) else None
    if classes is not None and len(classes) < num_classes:
        if labels is not None and labels.max() >= len(classes):
            where = int(np.argmax(labels >= len(classes)))
            raise LabelError(
                '%s: record %d has label %d, but %s lists %d classes (labels 0-%d): the '
                'labels and the class list disagree. Re-pack the data with '
                'scripts/classification/prepare_imagenet.py, or fix %s'
                % (lst_path if source == 'lst' else rec_path, where, int(labels[where]),
                   classes_path, len(classes), len(classes) - 1, classes_path))
        raise LabelError('--num-classes %d, but %s lists %d classes: give --num-classes %d, '
                         'or remove %s if it belongs to another data set'
                         % (num_classes, classes_path, len(classes), len(classes),
                            classes_path))
    return RecordInfo(rec_path, idx_path, n, int(num_classes), labels, source, classes)



class RecordLoader(ImageLoader):
    """Batches of a RecordIO file (section 2.1); see :class:`.ImageLoader`.

    Parameters
    ----------
    rec_path : str
    idx_path : str, optional
        Default: next to the .rec (required to exist).
    batch_size : int
        Per-part batch size.
    train : bool
        Training pipeline (random-resized crop, flip, jitter, PCA noise, shuffled) or
        validation pipeline (resize, center crop, file order).
    aug : AugmentConfig, optional
        Default: the paper's.
    num_parts, part_index : int
        Sharding for distributed training (Horovod size and rank; see :mod:`.pipeline`).
    seed : int
        Base seed of the order and of every sample's augmentation.
    num_workers : int
        Worker processes (0: decode in the calling process).
    num_classes : int, optional
        Default: from the data (:func:`record_info`).
    last_batch : {'discard', 'keep'}, optional
        Default ``'discard'`` for training and ``'keep'`` for validation.
    info : RecordInfo, optional
        Reuse a :func:`record_info` result.
    check_label_range : bool
        Check each batch's labels against ``num_classes`` (catches a wrong ``--num-classes``
        that no ``.lst`` could, e.g. without a ``.lst``).
    progress : bool
        Progress bar of a label scan or verification, if one is needed.
    verify : {'auto', True, False}
        Decode every record once before use (:func:`verify_record_file`, cached in a
        ``<rec>.verified`` stamp; files written by :func:`pack_records` come stamped).
        ``'auto'``: for validation only, so that a bad record is found before training
        rather than at the end of the first epoch.
    with_params : bool
        Training batches also carry every sample's random draws (tests of the pipeline).

    Raises
    ------
    CorruptRecordError
        A record that cannot be read or decoded, naming the file and the record.
    """

    def __init__(self, rec_path, idx_path=None, batch_size=256, train=True, aug=None,
                 num_parts=1, part_index=0, seed=0, num_workers=4, num_classes=None,
                 last_batch=None, info=None, check_label_range=True, progress=True,
                 verify='auto', with_params=False, uint8=False):
        self.info = info or record_info(rec_path, idx_path, num_classes, progress=progress)
        self.rec_path, self.idx_path = self.info.rec_path, self.info.idx_path
        self.classes = self.info.classes
        self.check_label_range = check_label_range
        if verify is True or (verify == 'auto' and not train):
            # validation: only the records this part evaluates (each rank decodes its own)
            parts = (1, 0) if train else (num_parts, part_index)
            if not is_verified(self.rec_path, self.idx_path, *parts):
                # labels are checked separately (LabelError), keep the stamp label-agnostic
                verify_record_file(self.rec_path, self.idx_path, None, progress=progress,
                                   raise_on_error=True, num_workers=max(1, num_workers),
                                   num_parts=parts[0], part_index=parts[1])
        records = RecordFile(self.rec_path, self.idx_path)
        records.check()
        super(RecordLoader, self).__init__(
            records, batch_size, train,
            aug or AugmentConfig(), num_parts, part_index, seed, num_workers,
            num_classes if num_classes is not None else self.info.num_classes, last_batch,
            with_params, name=self.rec_path, uint8=uint8)

    def check_batch(self, label, epoch, batch):
        if self.check_label_range:
            check_labels(label.asnumpy(), self.num_classes,
                         '%s (epoch %d, batch %d)' % (self.rec_path, epoch, batch))
