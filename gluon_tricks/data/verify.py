"""Verification of RecordIO files: every image decodes, every label is a class index.

A clean file gets a ``<rec>.verified`` stamp holding the sizes and modification times of the
``.rec`` and ``.idx``; the loaders skip the check while the stamp matches. A part of the file
(the records ``i, i + P, ...`` that rank ``i`` of ``P`` validates on) is verified and stamped
on its own (``<rec>.verified-part-i-of-P``): each rank decodes its part only.
"""
import collections
import itertools
import json
import os
from concurrent.futures import ThreadPoolExecutor

from .base import CorruptRecordError, LabelError
from .recfile import RecordFile, record_paths
from .decode import decode_image, image_problem

__all__ = ['verify_record_file', 'VerifyReport', 'is_verified', 'write_verified_stamp',
           'bounded_map']


def bounded_map(fn, jobs, num_workers):
    """``map`` over a thread pool keeping at most a few jobs in flight, results in order."""
    if num_workers <= 1:
        for job in jobs:
            yield fn(job)
        return
    jobs = iter(jobs)
    with ThreadPoolExecutor(num_workers) as pool:
        pending = collections.deque(pool.submit(fn, j)
                                    for j in itertools.islice(jobs, 4 * num_workers))
        while pending:
            result = pending.popleft().result()
            for j in itertools.islice(jobs, 1):
                pending.append(pool.submit(fn, j))
            yield result


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


def _stamp_path(rec_path, num_parts=1, part_index=0):
    if num_parts == 1:
        return rec_path + '.verified'
    return rec_path + '.verified-part-%d-of-%d' % (part_index, num_parts)


def _file_signature(rec_path, idx_path):
    st_rec, st_idx = os.stat(rec_path), os.stat(idx_path)
    return {'rec_size': st_rec.st_size, 'rec_mtime_ns': st_rec.st_mtime_ns,
            'idx_size': st_idx.st_size, 'idx_mtime_ns': st_idx.st_mtime_ns}


def write_verified_stamp(rec_path, idx_path, num_records, num_parts=1, part_index=0):
    """Record that every image of the file decodes (``<rec>.verified``, JSON).

    Written by :func:`verify_record_file` on success and by
    :func:`~gluon_tricks.data.pack_records` (which only packs images OpenCV decoded); the
    stamp holds the sizes and modification times of the .rec and .idx, so any later change
    invalidates it. Unwritable locations are silently skipped. ``num_parts > 1``: the stamp
    of one part (see the module notes).
    """
    sig = dict(_file_signature(rec_path, idx_path), num_records=int(num_records))
    try:
        with open(_stamp_path(rec_path, num_parts, part_index), 'w') as f:
            json.dump(sig, f)
    except OSError:
        pass


def is_verified(rec_path, idx_path, num_parts=1, part_index=0):
    """True when a valid ``<rec>.verified`` stamp matches the current files (or, for part
    ``part_index`` of ``num_parts``, that part's stamp)."""
    stamps = [(1, 0)] + ([(num_parts, part_index)] if num_parts > 1 else [])
    for parts, index in stamps:
        try:
            with open(_stamp_path(rec_path, parts, index)) as f:
                stamp = json.load(f)
            sig = _file_signature(rec_path, idx_path)
        except (OSError, ValueError):
            continue
        if all(stamp.get(k) == v for k, v in sig.items()):
            return True
    return False


def verify_record_file(rec_path, idx_path=None, num_classes=None, progress=True,
                       raise_on_error=False, num_workers=4, num_parts=1, part_index=0):
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
    num_parts, part_index : int
        Check only the records ``part_index, part_index + num_parts, ...`` (a rank's
        validation part) and stamp that part.

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
    rec_path, idx_path = record_paths(rec_path, idx_path)
    records = RecordFile(rec_path, idx_path)
    indices = range(part_index, len(records), num_parts)
    bad, counts = [], {}
    for key, label, reason in tqdm(bounded_map(lambda i: _check_record(records, i, num_classes),
                                               indices, max(1, int(num_workers))),
                                   total=len(indices), disable=not progress,
                                   desc='verify %s%s' % (os.path.basename(rec_path), (
                                       ' (part %d of %d)' % (part_index + 1, num_parts)
                                       if num_parts > 1 else ''))):
        if reason is not None:
            bad.append((key, reason))
        else:
            counts[label] = counts.get(label, 0) + 1
    report = VerifyReport(len(indices), bad, counts)
    if not bad:
        write_verified_stamp(rec_path, idx_path, len(records), num_parts, part_index)
    elif raise_on_error:
        raise CorruptRecordError(
            '%s: %d of %d records%s are bad (key: reason): %s. Repack the data from the '
            'original images (scripts/classification/prepare_imagenet.py)'
            % (rec_path, len(bad), len(indices), ' of part %d of %d' % (
                part_index + 1, num_parts) if num_parts > 1 else '',
               '; '.join('%s: %s' % b for b in bad[:10])))
    return report

