"""RecordIO data: the ``.rec``/``.idx`` files of MXNet's im2rec, read in Python.

The records are read with plain file reads (:class:`RecordFile`: the RecordIO framing and the
image-record header, checked record by record), decoded with OpenCV and augmented by the
pipeline every source shares (:mod:`.pipeline`, :mod:`.augment`). ``mx.io.ImageRecordIter`` is
not used, for three reasons found in MXNet 1.9.1 (``src/io/iter_image_recordio_2.cc``):

* with ``seed_aug`` it re-seeds its augmenter for every record from the record's position
  within the batch (``prnd->seed(idx + seed_aug + 111)``), so sample ``j`` of every batch of
  an epoch gets the same crop, flip, colour and lighting draws; without ``seed_aug`` the
  generators are seeded with fixed constants per decoding thread, and which thread takes which
  record is decided by a race, so an epoch cannot be reproduced. Independent draws and exact
  resume cannot both be had from it;
* its random-resized crop resizes into the buffer it reads from when the stored image has
  exactly the input size, returning corrupted images;
* a record that does not decode kills the process (SIGFPE in the validation resize) and a
  damaged file can crash its C++ reader, with no file named.

Sharding, shuffling and the last batch follow :class:`.ShardBatchSampler` (the parts are
strided slices of a per-epoch permutation of the whole file, so the ``.rec`` does not need to
be shuffled when packed).
"""
import os
import struct

import numpy as np

from .transforms import AugmentConfig, decode_image, image_problem
from .base import CorruptRecordError, EmptyDatasetError, LabelError
from .im2rec import CLASSES_FILE, bounded_map, read_class_names, read_lst
from .pipeline import ImageLoader

__all__ = ['RecordFile', 'RecordInfo', 'record_info', 'read_index', 'scan_record_labels',
           'check_labels', 'verify_record_file', 'VerifyReport', 'rebuild_index',
           'RecordLoader', 'is_verified', 'write_verified_stamp', 'RECORD_MAGIC']

#: First word of every RecordIO record (dmlc ``RecordIOWriter::kMagic``).
RECORD_MAGIC = 0xced7230a
_FRAME = struct.Struct('<II')          # magic, (continuation flag << 29) | length
_IR_HEADER = struct.Struct('<IfQQ')    # MXNet image record: flag, label, id, id2

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


def read_index(idx_path):
    """Keys and byte offsets of an ``.idx`` file (one ``key<TAB>offset`` per line), in order.

    Returns
    -------
    (list of int, numpy.ndarray of int64)
    """
    keys, offsets = [], []
    with open(idx_path, 'rb') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[0].lstrip(b'-').isdigit() or \
                    not parts[1].isdigit():
                raise CorruptRecordError('%s line %d is not "key<TAB>offset": %r; rebuild the '
                                         'index with gluon_tricks.data.rebuild_index'
                                         % (idx_path, lineno, line[:80]))
            keys.append(int(parts[0]))
            offsets.append(int(parts[1]))
    return keys, np.asarray(offsets, np.int64)


class RecordFile(object):
    """Random access to the image records of a ``.rec`` through its ``.idx``.

    Plain ``os.pread`` on a descriptor opened per process (safe in forked data workers); the
    framing is checked on every read (magic word, lengths inside the file, continuation
    parts re-joined with the magic word between them, as dmlc's reader does), so a damaged
    file gives a :class:`CorruptRecordError` naming it and the record, never a crash.

    Parameters
    ----------
    rec_path, idx_path : str
    """

    def __init__(self, rec_path, idx_path):
        self.rec_path, self.idx_path = rec_path, idx_path
        self.keys, self.offsets = read_index(idx_path)
        self.size = os.path.getsize(rec_path)
        self._fd, self._pid = None, None

    def __len__(self):
        return len(self.keys)

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_fd'], state['_pid'] = None, None
        return state

    def _descriptor(self):
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.rec_path, os.O_RDONLY), os.getpid()
        return self._fd

    def corrupt(self, index, reason):
        """The error for a bad record ``index`` (names the files and the way out)."""
        err = CorruptRecordError(
            '%s: record %d (key %s, byte %d): %s. Re-pack the data from the original images '
            '(scripts/classification/prepare_imagenet.py); if only the index is wrong, '
            'rebuild it with gluon_tricks.data.rebuild_index(%r, %r)'
            % (self.rec_path, index, self.keys[index], self.offsets[index], reason,
               self.rec_path, self.idx_path))
        err.reason = reason
        return err

    def raw(self, index):
        """The bytes of record ``index`` (what ``MXRecordIO.read`` returns)."""
        fd, pos, parts = self._descriptor(), int(self.offsets[index]), []
        while True:
            head = os.pread(fd, 8, pos)
            if len(head) < 8:
                raise self.corrupt(index, 'the file ends inside a record header at byte %d '
                                          '(truncated .rec, or an .idx of another file)' % pos)
            magic, lrec = _FRAME.unpack(head)
            cflag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            if magic != RECORD_MAGIC or (not parts and cflag not in (0, 1)):
                raise self.corrupt(index, 'no record starts at byte %d (the .idx does not '
                                          'match the .rec)' % pos)
            if pos + 8 + length > self.size:
                raise self.corrupt(index, 'the record needs %d bytes from byte %d but the file '
                                          'has %d (truncated .rec)' % (length, pos + 8,
                                                                       self.size))
            parts.append(os.pread(fd, length, pos + 8))
            pos += 8 + ((length + 3) // 4) * 4
            if cflag in (0, 3):
                return _FRAME.pack(RECORD_MAGIC, 0)[:4].join(parts)
            # cflag 1 or 2: more parts follow; the writer dropped a magic word between them

    def check(self, samples=16):
        """Check the file against its index before use: every offset inside the file, and the
        framing of the first, the last and ``samples`` records spread over the file.

        Raises
        ------
        CorruptRecordError
            Naming the file, the record and the fix (re-pack, or rebuild the index).
        """
        if not len(self):
            return
        order = np.argsort(self.offsets, kind='stable')
        last = int(order[-1])
        if self.offsets[last] >= self.size:
            raise self.corrupt(last, 'the .idx points past the end of the %d-byte file '
                                     '(truncated .rec, or an .idx of another file)' % self.size)
        picks = set(np.linspace(0, len(self) - 1, min(samples, len(self))).round().astype(int))
        for i in sorted(picks | {int(order[0]), last}):
            self.raw(i)

    def read(self, index):
        """``(label, encoded image bytes)`` of record ``index``."""
        data = self.raw(index)
        if len(data) < _IR_HEADER.size:
            raise self.corrupt(index, 'the record (%d bytes) is shorter than its header'
                                      % len(data))
        flag, label, _, _ = _IR_HEADER.unpack_from(data)
        start = _IR_HEADER.size
        if flag > 0:
            labels = np.frombuffer(data, np.float32, flag, start)
            start += 4 * flag
            if flag != 1:
                raise LabelError('%s: record %d has %d labels; single-label classification '
                                 'needs one' % (self.rec_path, index, flag))
            label = labels[0]
        return float(label), data[start:]


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
    from tqdm import tqdm
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
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
    idx_path = idx_path or stem + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
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


def _check_record(records, index, num_classes):
    """Read and decode one record: returns (key, label or None, reason or None)."""
    key = records.keys[index]
    try:
        label, payload = records.read(index)
    except (CorruptRecordError, LabelError) as e:
        return key, None, getattr(e, 'reason', str(e))
    if decode_image(payload) is None:
        return key, None, image_problem(payload) or 'image does not decode (%d bytes)' \
            % len(payload)
    if label != round(label) or label < 0 or (num_classes is not None and label >= num_classes):
        return key, None, 'bad label %r' % label
    return key, int(label), None


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
    (what the training loader fails on), or its label is not a valid class index. Truncated
    JPEGs that OpenCV still decodes (with a warning) are not reported, as they do not stop
    training. A clean file gets a ``<rec>.verified`` stamp (:func:`write_verified_stamp`).
    """
    from tqdm import tqdm
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    _require_rec(rec_path)
    _require_idx(rec_path, idx_path)
    records = RecordFile(rec_path, idx_path)
    keys = records.keys
    bad, counts = [], {}
    for key, label, reason in tqdm(bounded_map(lambda i: _check_record(records, i, num_classes),
                                               range(len(records)), max(1, int(num_workers))),
                                   total=len(keys), disable=not progress,
                                   desc='verify %s' % os.path.basename(rec_path)):
        if reason is not None:
            bad.append((key, reason))
        else:
            counts[label] = counts.get(label, 0) + 1
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
                 verify='auto', with_params=False):
        self.info = info or record_info(rec_path, idx_path, num_classes, progress=progress)
        self.rec_path, self.idx_path = self.info.rec_path, self.info.idx_path
        self.classes = self.info.classes
        self.check_label_range = check_label_range
        if verify is True or (verify == 'auto' and not train):
            if not is_verified(self.rec_path, self.idx_path):
                # labels are checked separately (LabelError), keep the stamp label-agnostic
                verify_record_file(self.rec_path, self.idx_path, None, progress=progress,
                                   raise_on_error=True, num_workers=max(1, num_workers))
        records = RecordFile(self.rec_path, self.idx_path)
        records.check()
        super(RecordLoader, self).__init__(
            records, batch_size, train,
            aug or AugmentConfig(), num_parts, part_index, seed, num_workers,
            num_classes if num_classes is not None else self.info.num_classes, last_batch,
            with_params, name=self.rec_path)

    def check_batch(self, label, epoch, batch):
        if self.check_label_range:
            check_labels(label.asnumpy(), self.num_classes,
                         '%s (epoch %d, batch %d)' % (self.rec_path, epoch, batch))
