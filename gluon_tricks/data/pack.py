"""Pack image folders into RecordIO (``.rec`` + ``.idx``), as MXNet's ``tools/im2rec.py``.

Each record is ``IRHeader(flag=0, label, id=list index, id2=0)`` followed by the image encoded
by OpenCV (BGR, JPEG by default), keyed by its ``.lst`` index (:mod:`.lists`).
"""
import collections
import os

import numpy as np

from .base import CorruptImageError, EmptyDatasetError, LabelError
from .lists import (CLASSES_FILE, list_class_folder, read_class_names, read_lst, write_class_names,
                    write_lst)
from .decode import image_problem
from .verify import bounded_map, write_verified_stamp

__all__ = ['pack_records', 'pack_class_folder', 'PackResult']

PackResult = collections.namedtuple('PackResult',
                                    ['rec_path', 'idx_path', 'lst_path', 'num_records', 'skipped'])
PackResult.__doc__ = """Outcome of :func:`pack_records`.

``skipped`` lists ``(relative path, reason)`` of images left out (only with ``skip_bad=True``).
"""


def _encode(job):
    """Read, optionally downscale, and pack one image; returns (index, bytes or None, reason)."""
    import cv2
    import mxnet as mx
    i, label, abspath, resize, quality, encoding = job
    if not os.path.isfile(abspath):
        return i, None, 'file not found'
    with open(abspath, 'rb') as f:
        buf = f.read()
    reason = image_problem(buf)
    if reason:
        return i, None, reason
    img = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return i, None, 'cannot decode image'
    if resize:
        h, w = img.shape[:2]
        short = min(h, w)
        if short > resize:  # never upscale
            scale = float(resize) / short
            size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    header = mx.recordio.IRHeader(0, float(label), i, 0)
    try:
        return i, mx.recordio.pack_img(header, img, quality=quality, img_fmt=encoding), None
    except Exception as e:  # noqa: BLE001 - reported with the file name
        return i, None, 'cannot encode: %s' % e



def pack_records(lst_path, root, rec_path=None, idx_path=None, resize=0, quality=None,
                 encoding='.jpg', num_workers=1, skip_bad=False, progress=True):
    """Pack the images of a ``.lst`` into ``.rec`` + ``.idx`` (like ``im2rec.py``).

    Images are read with OpenCV (3-channel BGR), optionally downscaled, encoded with
    ``mx.recordio.pack_img`` and written with ``mx.recordio.MXIndexedRecordIO`` under the list
    index as key. The files are written under temporary names and renamed at the end, so an
    interrupted run leaves no half-written ``.rec``. The record count is checked against the
    list at the end.

    Parameters
    ----------
    lst_path : str
        Image list (:func:`write_lst`).
    root : str
        Directory the list's relative paths start from.
    rec_path, idx_path : str, optional
        Outputs; default: the list path with ``.rec`` / ``.idx``.
    resize : int
        If > 0, downscale images whose shorter side is longer than this to it (keeping the
        aspect ratio, ``cv2.INTER_AREA``); smaller images are kept as they are. GluonCV's
        ImageNet RecordIO used 480. 0 keeps every image unchanged.
    quality : int, optional
        JPEG quality (1-100, default 95) with ``encoding='.jpg'``; PNG compression level (0-9,
        default 3) with ``'.png'``.
    encoding : {'.jpg', '.png'}
        Image encoding inside the records (PNG is lossless).
    num_workers : int
        Threads decoding/encoding in parallel (OpenCV releases the GIL).
    skip_bad : bool
        False: an unreadable image is an error (raised after the pass, listing every bad file;
        nothing is written). True: leave such images out, rewrite the list without them, and
        report them in the result.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    PackResult

    Raises
    ------
    CorruptImageError
        Unreadable images with ``skip_bad=False``.
    RuntimeError
        The written record count differs from the list.
    """
    import mxnet as mx
    from tqdm import tqdm
    encoding = encoding.lower()
    if encoding not in ('.jpg', '.jpeg', '.png'):
        raise ValueError("encoding must be '.jpg' or '.png', got %r" % encoding)
    if quality is None:
        quality = 3 if encoding == '.png' else 95
    if encoding == '.png' and not 0 <= quality <= 9:
        raise ValueError('with PNG, quality is the compression level 0-9, got %r' % quality)
    if encoding != '.png' and not 1 <= quality <= 100:
        raise ValueError('JPEG quality must be in [1, 100], got %r' % quality)
    stem = os.path.splitext(lst_path)[0]
    rec_path = rec_path or stem + '.rec'
    idx_path = idx_path or stem + '.idx'
    rows = read_lst(lst_path)
    if not rows:
        raise EmptyDatasetError('image list %r is empty' % lst_path)
    jobs = [(i, label, os.path.join(root, rel), int(resize or 0), int(quality), encoding)
            for i, label, rel in rows]
    tmp_rec, tmp_idx = rec_path + '.tmp', idx_path + '.tmp'
    writer = mx.recordio.MXIndexedRecordIO(tmp_idx, tmp_rec, 'w')
    bad = []
    rel_of = {i: rel for i, _, rel in rows}
    try:
        bar = tqdm(total=len(jobs), desc='pack %s' % os.path.basename(rec_path),
                   unit='img', disable=not progress)
        for i, packed, reason in bounded_map(_encode, jobs, max(1, int(num_workers))):
            if packed is None:
                bad.append((rel_of[i], reason))
            else:
                writer.write_idx(i, packed)
            bar.update(1)
        bar.close()
    finally:
        writer.close()
    if bad and not skip_bad:
        os.remove(tmp_rec)
        os.remove(tmp_idx)
        raise CorruptImageError(
            '%d image(s) of %s under %r cannot be read, nothing written; fix or remove them, '
            'or leave them out with --skip-bad (skip_bad=True). First ones: %s'
            % (len(bad), lst_path, root, ', '.join('%s (%s)' % b for b in bad[:10])))
    os.replace(tmp_rec, rec_path)
    os.replace(tmp_idx, idx_path)
    if bad:
        skipped = {rel for rel, _ in bad}
        kept = [r for r in rows if r[2] not in skipped]
        with open(lst_path + '.tmp', 'w') as f:
            for i, label, rel in kept:
                f.write('%d\t%f\t%s\n' % (i, label, rel))
        os.replace(lst_path + '.tmp', lst_path)
        rows = kept
    reader = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'r')
    try:
        n = len(reader.keys)
    finally:
        reader.close()
    if n != len(rows):
        raise RuntimeError('%s holds %d records but %s lists %d images'
                           % (rec_path, n, lst_path, len(rows)))
    write_verified_stamp(rec_path, idx_path, n)  # every packed image was decoded by OpenCV
    return PackResult(rec_path, idx_path, lst_path, n, bad)


def pack_class_folder(root, prefix, classes=None, shuffle=True, seed=0, **pack_kwargs):
    """List a class-folder tree and pack it: writes ``prefix.lst/.rec/.idx`` and the class
    names (``classes.txt`` in the directory of ``prefix``).

    Parameters
    ----------
    root : str
        ``root/<class>/<image>``.
    prefix : str
        Output path without extension, e.g. ``out/train``.
    classes : list of str, optional
        Label order (default: sorted folder names); see :func:`list_class_folder`. Pack a
        validation tree with the training classes. An existing ``classes.txt`` that differs
        from the classes used is an error (it would mean two label orders in one place).
    shuffle : bool
        Shuffle the list before packing (see :func:`write_lst`); True for training data.
    seed : int
        Seed of the shuffle.
    **pack_kwargs
        Passed to :func:`pack_records` (``resize``, ``quality``, ``encoding``,
        ``num_workers``, ``skip_bad``, ``progress``).

    Returns
    -------
    result : PackResult
    classes : list of str
    """
    items, classes = list_class_folder(root, classes)
    names_path = os.path.join(os.path.dirname(os.path.abspath(prefix)), CLASSES_FILE)
    if os.path.isfile(names_path) and read_class_names(names_path) != classes:
        raise LabelError(
            '%s lists other classes than the folders of %r (%d vs %d): a validation tree that '
            'misses classes must be packed with the training classes, '
            'classes=read_class_names(%r); or remove the file to start afresh'
            % (names_path, root, len(read_class_names(names_path)), len(classes), names_path))
    lst = prefix + '.lst'
    write_lst(lst, items, shuffle=shuffle, seed=seed)
    write_class_names(names_path, classes)
    return pack_records(lst, root, **pack_kwargs), classes
