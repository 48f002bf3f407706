"""RecordIO data: ``mx.io.ImageRecordIter`` with the paper's augmentation (section 2.1).

Facts about ``mx.io.ImageRecordIter`` (MXNet 1.9.1) this module is built on, each checked by
``tests/test_data.py``:

* With an ``.idx`` file it reads records through dmlc's indexed splitter: ``num_parts`` /
  ``part_index`` give contiguous blocks of ``ceil(n / num_parts)`` records (the last part
  smaller), and ``shuffle=True`` permutes the records of the part with a generator seeded by
  ``seed`` once at construction. The augmentation generators are seeded by ``seed_aug``
  (without it every iterator starts from the same fixed seeds). This module therefore builds a
  new iterator for every epoch, with both seeds derived from ``(seed, epoch, part)``: any epoch
  can be reproduced exactly, independently of what came before.
* The last incomplete batch: with ``round_batch=True`` (default) it is filled with samples from
  the start of the data and ``batch.pad`` tells how many; with ``round_batch=False`` the filler
  is stale memory and ``batch.pad`` wrongly reports 0. So ``round_batch=True`` is used and the
  loader cuts the padded samples off (validation) or stops before that batch (training,
  ``last_batch='discard'``).
* Its random-resized crop resizes the crop into the buffer of the decoded image
  (``cv::resize(res(roi), res, ...)``). When the stored image is exactly
  ``input_size x input_size`` the buffer is reused while being read, and the augmented image
  comes out corrupted (silently). :class:`RecordLoader` therefore refuses training data whose
  sampled records have exactly the input size (:func:`find_input_sized_records`); store such
  data at another size (e.g. the digits demo at 40 px for a 32 px input) or use class folders.
* A record whose image cannot be decoded: the training pipeline raises ``MXNetError`` (an
  OpenCV assertion) when its batch is fetched, which the loader re-raises as
  :class:`~gluon_tricks.data.CorruptRecordError` naming the file; the validation pipeline
  (``resize``) divides by the zero width of the empty image and kills the process with
  SIGFPE. Neither can skip the record. Validation files are therefore decoded once before
  use (:func:`verify_record_file`, cached in a ``<rec>.verified`` stamp that
  :func:`~gluon_tricks.data.pack_records` also writes), and bad records are reported by key
  so that the file can be repacked.
"""
import os

import numpy as np

from .augment import AugmentConfig, record_iter_kwargs
from .base import (CorruptRecordError, EmptyDatasetError, EpochLoader, LabelError,
                   derive_seed)
from .im2rec import CLASSES_FILE, read_class_names, read_lst

__all__ = ['RecordInfo', 'record_info', 'count_index', 'scan_record_labels', 'check_labels',
           'verify_record_file', 'VerifyReport', 'rebuild_index', 'part_sizes', 'RecordLoader',
           'find_input_sized_records', 'is_verified',
           'write_verified_stamp']

_HOW_TO_CREATE = ('create it with scripts/classification/prepare_imagenet.py (or '
                  'gluon_tricks.data.pack_class_folder, or MXNet\'s tools/im2rec.py, which '
                  'writes the .idx with the .rec)')


def _require_rec(rec_path):
    if not os.path.isfile(rec_path):
        raise FileNotFoundError('RecordIO file %r not found: pass --rec-train/--rec-val (or '
                                '--data-dir holding train.rec and val.rec), or %s'
                                % (rec_path, _HOW_TO_CREATE))


def _require_idx(rec_path, idx_path):
    if not os.path.isfile(idx_path):
        raise FileNotFoundError(
            'index file %r of %r not found: the loader needs it for record-level shuffling and '
            'sharding. %s; or rebuild just the index from the .rec with '
            'gluon_tricks.data.rebuild_index(%r, %r)' % (idx_path, rec_path, _HOW_TO_CREATE,
                                                         rec_path, idx_path))


def count_index(idx_path):
    """Number of records listed in an ``.idx`` file (one ``key<TAB>offset`` per line).

    Parameters
    ----------
    idx_path : str

    Returns
    -------
    int
    """
    n = 0
    with open(idx_path, 'rb') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise CorruptRecordError('%s line %d is not "key<TAB>offset": %r'
                                         % (idx_path, lineno, line[:80]))
            n += 1
    return n


def check_labels(labels, num_classes, source):
    """Check that labels are class indices: integers in ``[0, num_classes)``.

    Parameters
    ----------
    labels : array-like of float
    num_classes : int or None
        None checks only integrality and sign.
    source : str
        Named in the error message (file, and where in it).

    Raises
    ------
    LabelError
    """
    labels = np.asarray(labels, dtype=np.float64).ravel()
    if labels.size == 0:
        return
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 0) | ~np.isfinite(labels))
    if bad.size:
        raise LabelError('%s: label %r at position %d is not a class index (integer >= 0)'
                         % (source, labels[bad[0]], bad[0]))
    if num_classes is not None:
        bad = np.flatnonzero(labels >= num_classes)
        if bad.size:
            raise LabelError('%s: label %d at position %d is out of range for num_classes=%d '
                             '(labels must be in [0, %d)); set --num-classes to the real number '
                             'of classes or fix the labels' % (source, int(labels[bad[0]]),
                                                               bad[0], num_classes, num_classes))


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
    import mxnet as mx
    from tqdm import tqdm
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
    reader = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'r')
    labels = []
    try:
        for key in tqdm(reader.keys, disable=not progress,
                        desc='scan labels of %s (--num-classes or a .lst skips this)'
                        % os.path.basename(rec_path)):
            try:
                header, _ = mx.recordio.unpack(reader.read_idx(key))
            except Exception as e:  # noqa: BLE001
                raise CorruptRecordError('%s: record %r cannot be read (%s); run '
                                         'verify_record_file to list bad records'
                                         % (rec_path, key, e))
            label = np.asarray(header.label, dtype=np.float32).ravel()
            if label.size != 1:
                raise LabelError('%s: record %r has %d labels; single-label classification '
                                 'needs one' % (rec_path, key, label.size))
            labels.append(label[0])
    finally:
        reader.close()
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
    idx_path = idx_path or stem + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
    n = count_index(idx_path)
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
        classes = None  # a classes.txt of another data set
    return RecordInfo(rec_path, idx_path, n, int(num_classes), labels, source, classes)


class VerifyReport(object):
    """Result of :func:`verify_record_file`.

    Attributes
    ----------
    num_records : int
    bad : list of (key, str)
        Record key (the list index) and the reason, for every bad record.
    label_counts : dict
        ``{label: count}`` over the good records.
    """

    def __init__(self, num_records, bad, label_counts):
        self.num_records = num_records
        self.bad = bad
        self.label_counts = label_counts

    @property
    def ok(self):
        """True when every record decodes and has a valid label."""
        return not self.bad

    def __repr__(self):
        return 'VerifyReport(num_records=%d, bad=%d%s)' % (
            self.num_records, len(self.bad), ', first: %r' % (self.bad[0],) if self.bad else '')


def _check_record(item):
    """Decode one raw record: returns (key, label or None, reason or None)."""
    import cv2
    import mxnet as mx
    key, raw, num_classes = item
    try:
        header, payload = mx.recordio.unpack(raw)
        label = np.asarray(header.label, dtype=np.float64).ravel()
    except Exception as e:  # noqa: BLE001
        return key, None, 'cannot unpack record: %s' % e
    img = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR) \
        if payload else None
    if img is None or img.size == 0:
        return key, None, 'image does not decode (%d bytes)' % len(payload)
    if label.size != 1 or label[0] != round(label[0]) or label[0] < 0 or (
            num_classes is not None and label[0] >= num_classes):
        return key, None, 'bad label %s' % label.tolist()
    return key, int(label[0]), None


def _stamp_path(rec_path):
    return rec_path + '.verified'


def _file_signature(rec_path, idx_path):
    st_rec, st_idx = os.stat(rec_path), os.stat(idx_path)
    return {'rec_size': st_rec.st_size, 'rec_mtime_ns': st_rec.st_mtime_ns,
            'idx_size': st_idx.st_size, 'idx_mtime_ns': st_idx.st_mtime_ns}


def write_verified_stamp(rec_path, idx_path, num_records):
    """Record that every image of the file decodes (``<rec>.verified``, JSON).

    Written by :func:`verify_record_file` on success and by
    :func:`~gluon_tricks.data.pack_records` (which only packs images OpenCV decoded); the
    stamp holds the sizes and modification times of the .rec and .idx, so any later change
    invalidates it. Unwritable locations are silently skipped.
    """
    import json
    sig = dict(_file_signature(rec_path, idx_path), num_records=int(num_records))
    try:
        with open(_stamp_path(rec_path), 'w') as f:
            json.dump(sig, f)
    except OSError:
        pass


def is_verified(rec_path, idx_path):
    """True when a valid ``<rec>.verified`` stamp matches the current files."""
    import json
    try:
        with open(_stamp_path(rec_path)) as f:
            stamp = json.load(f)
        sig = _file_signature(rec_path, idx_path)
    except (OSError, ValueError):
        return False
    return all(stamp.get(k) == v for k, v in sig.items())


def verify_record_file(rec_path, idx_path=None, num_classes=None, progress=True,
                       raise_on_error=False, num_workers=4):
    """Decode every image of a RecordIO file and report the bad records by key.

    Parameters
    ----------
    rec_path : str
    idx_path : str, optional
        Default: next to the .rec.
    num_classes : int, optional
        Also report labels ``>= num_classes``.
    progress : bool
    raise_on_error : bool
        Raise :class:`CorruptRecordError` listing the bad records instead of returning.
    num_workers : int
        Decoding threads.

    Returns
    -------
    VerifyReport

    Notes
    -----
    A record is bad when it cannot be read or unpacked, its image does not decode with OpenCV
    (what ``ImageRecordIter`` fails on), or its label is not a valid class index. Truncated
    JPEGs that OpenCV still decodes (with a warning) are not reported, as they do not stop
    training. A clean file gets a ``<rec>.verified`` stamp (:func:`write_verified_stamp`).
    """
    import mxnet as mx
    from tqdm import tqdm
    from .im2rec import _bounded_map
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
    reader = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'r')
    bad, counts = [], {}
    try:
        keys = list(reader.keys)

        def raw_records():
            for key in keys:
                try:
                    yield key, reader.read_idx(key), num_classes
                except Exception:  # noqa: BLE001 - reported as a bad record
                    yield key, b'', num_classes  # unpack fails -> reported

        for key, label, reason in tqdm(_bounded_map(_check_record, raw_records(),
                                                    max(1, int(num_workers))),
                                       total=len(keys), disable=not progress,
                                       desc='verify %s' % os.path.basename(rec_path)):
            if reason is not None:
                bad.append((key, reason))
            else:
                counts[label] = counts.get(label, 0) + 1
    finally:
        reader.close()
    report = VerifyReport(len(keys), bad, counts)
    if not bad:
        write_verified_stamp(rec_path, idx_path, len(keys))
    elif raise_on_error:
        raise CorruptRecordError(
            '%s: %d of %d records are bad (key: reason): %s. Repack the data from the '
            'original images (scripts/classification/prepare_imagenet.py)'
            % (rec_path, len(bad), len(keys), '; '.join('%s: %s' % b for b in bad[:10])))
    return report


def rebuild_index(rec_path, idx_path=None, progress=True):
    """Write an ``.idx`` for a ``.rec`` that has none (keys 0, 1, ... in file order).

    Walks the RecordIO framing (``uint32 magic 0xced7230a``, ``uint32`` length with the
    continuation flag in the top 3 bits, data padded to 4 bytes) without decoding images.

    Parameters
    ----------
    rec_path : str
    idx_path : str, optional
        Default: next to the .rec.
    progress : bool

    Returns
    -------
    int
        Number of records indexed.

    Raises
    ------
    CorruptRecordError
        The framing is broken (the offset is named).
    """
    import struct
    from tqdm import tqdm
    _require_rec(rec_path)
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    magic = 0xced7230a
    size = os.path.getsize(rec_path)
    n, pos = 0, 0
    with open(rec_path, 'rb') as f, open(idx_path + '.tmp', 'w') as out, \
            tqdm(total=size, unit='B', unit_scale=True, disable=not progress,
                 desc='index %s' % os.path.basename(rec_path)) as bar:
        while pos < size:
            head = f.read(8)
            if len(head) < 8:
                raise CorruptRecordError('%s: truncated record header at byte %d'
                                         % (rec_path, pos))
            m, lrec = struct.unpack('<II', head)
            if m != magic:
                raise CorruptRecordError('%s: no RecordIO magic at byte %d' % (rec_path, pos))
            cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            if cflag in (0, 1):                   # a whole record or the first of its parts
                out.write('%d\t%d\n' % (n, pos))
                n += 1
            step = 8 + ((length + 3) // 4) * 4
            f.seek(step - 8, 1)
            pos += step
            bar.update(step)
    os.replace(idx_path + '.tmp', idx_path)
    return n


def find_input_sized_records(rec_path, idx_path, input_size, num_checked=16):
    """Keys of sampled records whose image is exactly ``input_size x input_size``.

    Such records are corrupted by ``ImageRecordIter``'s random-resized crop (see the module
    notes). ``num_checked`` records spread evenly over the file are decoded.

    Parameters
    ----------
    rec_path, idx_path : str
    input_size : int
    num_checked : int

    Returns
    -------
    list
        Keys of the offending records among those checked.
    """
    import cv2
    import mxnet as mx
    reader = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'r')
    found = []
    try:
        keys = list(reader.keys)
        picks = sorted(set(np.linspace(0, len(keys) - 1, min(num_checked, len(keys)))
                           .round().astype(int).tolist()))
        for p in picks:
            try:
                _, payload = mx.recordio.unpack(reader.read_idx(keys[p]))
                img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
            except Exception:  # noqa: BLE001 - bad records are reported elsewhere
                continue
            if img is not None and img.shape[0] == img.shape[1] == input_size:
                found.append(keys[p])
    finally:
        reader.close()
    return found


def part_sizes(num_samples, num_parts):
    """Records in each part as ``ImageRecordIter`` splits an indexed file.

    dmlc's indexed splitter gives part ``i`` the records
    ``[i * step, min((i + 1) * step, n))`` with ``step = ceil(n / num_parts)``.

    Parameters
    ----------
    num_samples : int
    num_parts : int

    Returns
    -------
    list of int
    """
    step = -(-num_samples // num_parts)
    return [max(0, min(num_samples, (i + 1) * step) - min(num_samples, i * step))
            for i in range(num_parts)]


class RecordLoader(EpochLoader):
    """Batches of a RecordIO file through ``mx.io.ImageRecordIter`` (section 2.1).

    Iterating yields ``(data, label)``: ``data`` float32 NDArray (N, 3, S, S) normalized,
    ``label`` float32 NDArray (N,). See :mod:`gluon_tricks.data.base` for the epoch and
    last-batch conventions.

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
        Sharding for distributed training (e.g. Horovod size and rank). The parts are
        contiguous blocks of the file (see :func:`part_sizes`); each part is shuffled within
        itself every epoch. The training loader of every part yields
        ``floor(min(part_sizes) / batch_size)`` batches, so that all workers take the same
        number of steps.
    seed : int
        Base seed; epoch ``e`` uses seeds derived from ``(seed, e, part_index)``.
    num_workers : int
        Decoding threads of the iterator (``preprocess_threads``).
    num_classes : int, optional
        Default: from the data (:func:`record_info`).
    last_batch : {'discard', 'keep'}, optional
        Default ``'discard'`` for training and ``'keep'`` for validation (every sample of the
        part exactly once; the last batch is smaller, padding is cut off).
    info : RecordInfo, optional
        Reuse a :func:`record_info` result.
    check_label_range : bool
        Check each batch's labels against ``num_classes`` (cheap; catches a wrong
        ``--num-classes`` that the ``.lst`` could not, e.g. without a ``.lst``).
    prefetch_buffer : int
        Batches the iterator decodes ahead.
    progress : bool
        Progress bar of a label scan, if one is needed.
    check_image_size : bool
        For training, refuse data whose images have exactly the input size, which
        ``ImageRecordIter`` corrupts (see the module notes; a sample of records is checked).
    verify : {'auto', True, False}
        Decode every record once before use (:func:`verify_record_file`, cached in a
        ``<rec>.verified`` stamp; files written by :func:`pack_records` come stamped).
        ``'auto'``: for validation only. This matters for validation: on an undecodable record
        ``ImageRecordIter``'s resize divides by the zero image width and the process dies
        with SIGFPE instead of raising; the training pipeline raises an exception instead.

    Notes
    -----
    The yielded arrays live in the iterator's buffers, which it reuses ``prefetch_buffer``
    batches later: consume them (or ``.copy()``) before then.

    Corrupt records are errors, never skipped (``ImageRecordIter`` cannot skip them): the
    training loader raises :class:`CorruptRecordError` when the batch holding one is reached,
    the validation loader when it is built (``verify``); :func:`verify_record_file` lists
    them by key, to repack the data.
    """

    def __init__(self, rec_path, idx_path=None, batch_size=256, train=True, aug=None,
                 num_parts=1, part_index=0, seed=0, num_workers=4, num_classes=None,
                 last_batch=None, info=None, check_label_range=True, prefetch_buffer=4,
                 progress=True, check_image_size=True, verify='auto'):
        if not 0 <= part_index < num_parts:
            raise ValueError('part_index must be in [0, num_parts), got %d of %d'
                             % (part_index, num_parts))
        self.aug = aug or AugmentConfig()
        self.info = info or record_info(rec_path, idx_path, num_classes, progress=progress)
        self.rec_path, self.idx_path = self.info.rec_path, self.info.idx_path
        self.classes = self.info.classes
        num_classes = num_classes if num_classes is not None else self.info.num_classes
        sizes = part_sizes(self.info.num_samples, num_parts)
        if min(sizes) == 0:
            raise EmptyDatasetError('%s has %d records, too few for %d parts'
                                    % (self.rec_path, self.info.num_samples, num_parts))
        self.part_sizes = sizes
        self.num_parts, self.part_index = int(num_parts), int(part_index)
        self.seed = int(seed)
        self.num_workers = max(1, int(num_workers))
        self.check_label_range = check_label_range
        self.prefetch_buffer = int(prefetch_buffer)
        self._iter_kwargs = record_iter_kwargs(self.aug, train)   # fail early (e.g. hue)
        super(RecordLoader, self).__init__(batch_size, train, sizes[part_index], num_classes,
                                           last_batch)
        if train and self.last_batch == 'discard':
            # the same number of steps on every part (distributed training must not diverge)
            self._num_batches = min(sizes) // self.batch_size
        if len(self) == 0:
            raise EmptyDatasetError('%s: part %d has %d samples, fewer than one batch of %d'
                                    % (self.rec_path, part_index, sizes[part_index],
                                       self.batch_size))
        if verify is True or (verify == 'auto' and not train):
            if not is_verified(self.rec_path, self.idx_path):
                # labels are checked separately (LabelError), keep the stamp label-agnostic
                verify_record_file(self.rec_path, self.idx_path, None, progress=progress,
                                   raise_on_error=True, num_workers=self.num_workers)
        if train and check_image_size:
            same = find_input_sized_records(self.rec_path, self.idx_path, self.aug.input_size)
            if same:
                raise ValueError(
                    '%s: records %s hold images of exactly %dx%d, the input size. '
                    'mx.io.ImageRecordIter (MXNet 1.9) resizes the random crop into the '
                    'buffer it reads from when the image already has the output size, and '
                    'returns corrupted images. Repack the data at another size (e.g. '
                    'make_digits_dataset(image_size=40) for --input-size 32), use class '
                    'folders, or pass check_image_size=False if you know better'
                    % (self.rec_path, same[:5], self.aug.input_size, self.aug.input_size))

    def make_iter(self, epoch):
        """The ``mx.io.ImageRecordIter`` of epoch ``epoch`` (a fresh one, seeded for it)."""
        import mxnet as mx
        kwargs = dict(self._iter_kwargs)
        if self.train:
            kwargs.update(shuffle=True,
                          seed=derive_seed(self.seed, epoch, self.part_index, 0),
                          seed_aug=derive_seed(self.seed, epoch, self.part_index, 1))
        else:
            kwargs.update(shuffle=False)
        try:
            return mx.io.ImageRecordIter(
                path_imgrec=self.rec_path, path_imgidx=self.idx_path,
                data_shape=(3, self.aug.input_size, self.aug.input_size),
                batch_size=self.batch_size, label_width=1,
                num_parts=self.num_parts, part_index=self.part_index,
                preprocess_threads=self.num_workers, prefetch_buffer=self.prefetch_buffer,
                round_batch=True, verbose=False, **kwargs)
        except mx.base.MXNetError as e:  # it decodes the first batch when built
            raise self._decode_error(e, epoch, 0)

    def _decode_error(self, err, epoch, batch):
        return CorruptRecordError(
            '%s: a record of batch %d (epoch %d, part %d) cannot be decoded (%s). Find the '
            'bad records with gluon_tricks.data.verify_record_file(%r, %r) and repack the data'
            % (self.rec_path, batch, epoch, self.part_index, _first_line(err), self.rec_path,
               self.idx_path))

    def iter_epoch(self, epoch):
        """Iterate over epoch ``epoch`` (does not change :attr:`epoch`)."""
        import mxnet as mx
        it = self.make_iter(epoch)
        n = self.num_samples
        for b in range(len(self)):
            try:
                batch = it.next()
            except StopIteration:
                raise CorruptRecordError('%s ended after %d of %d batches: the .rec and %s '
                                         'disagree' % (self.rec_path, b, len(self),
                                                       self.idx_path))
            except mx.base.MXNetError as e:
                raise self._decode_error(e, epoch, b)
            data, label = batch.data[0], batch.label[0]
            expected_pad = max(0, (b + 1) * self.batch_size - n)
            if batch.pad != expected_pad:
                raise RuntimeError('%s: batch %d has pad %d, expected %d; the record count of %s '
                                   'is wrong' % (self.rec_path, b, batch.pad, expected_pad,
                                                 self.idx_path))
            if batch.pad:
                valid = self.batch_size - batch.pad
                data, label = data[:valid], label[:valid]
            if self.check_label_range:
                check_labels(label.asnumpy(), self.num_classes,
                             '%s (epoch %d, batch %d)' % (self.rec_path, epoch, b))
            yield data, label


def _first_line(err):
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    msg = [ln for ln in lines if 'Error' in ln or 'error' in ln]
    return (msg[-1] if msg else lines[-1] if lines else repr(err)).strip()
