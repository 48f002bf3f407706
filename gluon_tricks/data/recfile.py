"""The RecordIO files of MXNet's im2rec (``.rec`` + ``.idx``), read in plain Python.

A ``.rec`` is a sequence of records, each ``uint32 magic 0xced7230a``, ``uint32`` length
with a continuation flag in its top 3 bits, the data padded to 4 bytes; an image record's
data is ``IRHeader(flag, label, id, id2)`` followed by the encoded image. The ``.idx`` maps
record keys to byte offsets (``key<TAB>offset`` per line).
"""
import os
import struct

import numpy as np

from .base import CorruptRecordError, LabelError

__all__ = ['RecordFile', 'read_index', 'rebuild_index', 'record_paths', 'RECORD_MAGIC']

#: First word of every RecordIO record (dmlc ``RecordIOWriter::kMagic``).
RECORD_MAGIC = 0xced7230a
_FRAME = struct.Struct('<II')          # magic, (continuation flag << 29) | length
_IR_HEADER = struct.Struct('<IfQQ')    # MXNet image record: flag, label, id, id2

_HOW_TO_CREATE = ('create it with scripts/classification/prepare_imagenet.py (or '
                  'gluon_tricks.data.pack_class_folder, or MXNet\'s tools/im2rec.py, which '
                  'writes the .idx with the .rec)')



def record_paths(rec_path, idx_path=None, need_idx=True):
    """``(rec_path, idx_path)``, the index defaulting to the .rec's path with ``.idx``; a
    missing file is a ``FileNotFoundError`` that says how to create it."""
    idx_path = idx_path or os.path.splitext(rec_path)[0] + '.idx'
    if not os.path.isfile(rec_path):
        raise FileNotFoundError('RecordIO file %r not found: pass --rec-train/--rec-val (or '
                                '--data-dir holding train.rec and val.rec), or %s'
                                % (rec_path, _HOW_TO_CREATE))
    if need_idx and not os.path.isfile(idx_path):
        raise FileNotFoundError(
            'index file %r of %r not found: the loader needs it for record-level shuffling and '
            'sharding. %s; or rebuild just the index from the .rec with '
            'gluon_tricks.data.rebuild_index(%r, %r)' % (idx_path, rec_path, _HOW_TO_CREATE,
                                                         rec_path, idx_path))
    return rec_path, idx_path


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
    from tqdm import tqdm
    rec_path, idx_path = record_paths(rec_path, idx_path, need_idx=False)
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
            m, lrec = _FRAME.unpack(head)
            if m != RECORD_MAGIC:
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

