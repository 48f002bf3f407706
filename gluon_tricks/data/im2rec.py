"""Pack image folders into RecordIO: the ``im2rec`` part of the data pipeline.

File formats (those of MXNet's ``tools/im2rec.py``, read by ``mx.io.ImageRecordIter`` and by
:class:`~gluon_tricks.data.RecordFile`):

* ``.lst``: one line per image, tab separated: ``index<TAB>label<TAB>relative/path``;
* ``.rec``: the records, each an ``IRHeader(flag=0, label, id=index, id2=0)`` followed by the
  encoded image (OpenCV, BGR, JPEG by default);
* ``.idx``: ``key<TAB>byte offset`` per record (key = the list index), so that the iterator can
  shuffle at the record level and split the file into parts;
* ``classes.txt``: the class names, one per line; line ``k`` (from 0) is label ``k``.
  Labels are the positions of the class folder names in sorted order.
"""
import collections
import itertools
import os
import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .transforms import image_problem
from .base import CorruptImageError, EmptyDatasetError, LabelError

__all__ = ['IMAGE_EXTENSIONS', 'list_class_folder', 'list_flat_folder', 'read_label_file',
           'write_lst', 'read_lst', 'write_class_names', 'read_class_names', 'pack_records',
           'pack_class_folder', 'PackResult', 'CLASSES_FILE']

#: Image file extensions taken from folders (those of ``ImageFolderDataset``; case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
#: Name of the class-name file written next to the lists.
CLASSES_FILE = 'classes.txt'

PackResult = collections.namedtuple('PackResult',
                                    ['rec_path', 'idx_path', 'lst_path', 'num_records', 'skipped'])
PackResult.__doc__ = """Outcome of :func:`pack_records`.

``skipped`` lists ``(relative path, reason)`` of images left out (only with ``skip_bad=True``).
"""


def _is_image(name, exts):
    return os.path.splitext(name)[1].lower() in exts


def _check_dir(root, what):
    if not os.path.isdir(root):
        raise FileNotFoundError('%s %r does not exist or is not a directory' % (what, root))


def list_class_folder(root, classes=None, exts=IMAGE_EXTENSIONS):
    """List the images of a class-folder tree ``root/<class>/<image>``.

    Parameters
    ----------
    root : str
        Directory holding one sub-directory per class.
    classes : list of str, optional
        Class names in label order. Default: the sorted sub-directory names. Give the training
        classes when listing a validation tree so that both use the same labels (a validation
        tree may miss classes; a class unknown to ``classes`` is an error).
    exts : tuple of str
        Lower-case image extensions to take; other files are ignored.

    Returns
    -------
    items : list of (str, int)
        ``(path relative to root with '/' separators, label)``, sorted by class then file name.
    classes : list of str
        Class names in label order.

    Raises
    ------
    FileNotFoundError
        ``root`` is missing.
    EmptyDatasetError
        No class folder or no image at all; or, when the classes come from the folders, a
        class folder without images (it would be a class without samples).
    LabelError
        A folder is not one of the given ``classes``.
    """
    _check_dir(root, 'image folder')
    found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not found:
        raise EmptyDatasetError('no class sub-directories in %r: expected root/<class>/<image> '
                                '(e.g. train/n01440764/*.JPEG)' % root)
    own_classes = classes is None
    if classes is None:
        classes = found
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    unknown = [d for d in found if d not in index]
    if unknown:
        raise LabelError('class folder(s) %s in %r are not among the %d known classes (e.g. '
                         'the training classes); first known: %s'
                         % (unknown[:5], root, len(classes), classes[:3]))
    items, empty = [], []
    for name in found:
        files = sorted(f for f in os.listdir(os.path.join(root, name)) if _is_image(f, exts))
        items.extend(('%s/%s' % (name, f), index[name]) for f in files)
        if not files:
            empty.append(name)
    if empty and items and own_classes:
        raise EmptyDatasetError(
            'class folder(s) %s in %r hold no image with extensions %s: each would become a '
            'class without samples. Remove them (or add their images)'
            % (empty[:5], root, list(exts)))
    if not items:
        raise EmptyDatasetError('no images with extensions %s under %r' % (list(exts), root))
    return items, classes


def read_label_file(path, filenames, classes):
    """Read ground-truth labels of a flat image folder.

    Accepted formats (blank lines and lines starting with ``#`` are skipped):

    * ``filename label`` per line (white-space or comma separated, extra fields ignored, an
      optional header line such as ``ImageId,PredictionString``). ``filename`` may omit its
      extension. ``label`` is a class name (e.g. the synset ``n01440764``) or an integer label
      (position in ``classes``). Examples: Places365's ``places365_val.txt``
      (``Places365_val_00000001.jpg 165``), a converted ImageNet list
      (``ILSVRC2012_val_00000001.JPEG n01751748``), Kaggle's ``LOC_val_solution.csv``.
    * one class name per line, in the sorted order of the image file names.

    Class names are looked up first, integers second. The ILSVRC2012 devkit's
    ``ILSVRC2012_validation_ground_truth.txt`` (one integer per line) numbers the classes in the
    devkit's own order, not in sorted-synset order; it is rejected rather than silently
    mislabeling the data: convert it to ``filename synset`` lines first.

    Parameters
    ----------
    path : str
        The label file.
    filenames : list of str
        Image file names of the flat folder.
    classes : list of str
        Class names in label order.

    Returns
    -------
    list of int
        The label of each entry of ``filenames``.

    Raises
    ------
    FileNotFoundError, LabelError
        Missing file, unknown class, integer out of range, an image without label, a label for
        a missing image, or a count mismatch.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('label file %r does not exist' % path)
    index = {c: i for i, c in enumerate(classes)}
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            fields = [t.strip() for t in line.split(',')] if ',' in line else line.split()
            rows.append((lineno, fields))
    if rows and rows[0][1][0].lower() in ('imageid', 'image_id', 'filename', 'file', 'image',
                                          'name', 'path'):
        rows = rows[1:]
    if not rows:
        raise LabelError('label file %r has no labels' % path)

    def to_label(token, lineno, one_per_line):
        if token in index:
            return index[token]
        try:
            value = int(token)
        except ValueError:
            raise LabelError('%s line %d: unknown class %r (known classes: %s ...)'
                             % (path, lineno, token, classes[:3]))
        if one_per_line:
            raise LabelError(
                '%s line %d: integer label %r in a one-label-per-line file. The ILSVRC2012 '
                'devkit numbers classes in its own order, not in sorted-synset order; write '
                '"filename synset" lines (or "filename label" with labels in the order of %s) '
                'instead' % (path, lineno, token, CLASSES_FILE))
        if not 0 <= value < len(classes):
            raise LabelError('%s line %d: label %d out of range [0, %d)'
                             % (path, lineno, value, len(classes)))
        return value

    one_per_line = all(len(fields) == 1 for _, fields in rows)
    if one_per_line:
        if len(rows) != len(filenames):
            raise LabelError('%s has %d labels (one per line, in sorted file order) but the '
                             'folder has %d images' % (path, len(rows), len(filenames)))
        return [to_label(fields[0], lineno, True) for lineno, fields in rows]

    by_name = {}
    for lineno, fields in rows:
        if len(fields) < 2:
            raise LabelError('%s line %d: expected "filename label", got %r'
                             % (path, lineno, ' '.join(fields)))
        label_field = fields[1].split()
        if not label_field:
            raise LabelError('%s line %d: empty label' % (path, lineno))
        name = os.path.basename(fields[0])
        by_name[name] = to_label(label_field[0], lineno, False)
        by_name.setdefault(os.path.splitext(name)[0], by_name[name])
    labels, unlabeled = [], []
    for fn in filenames:
        lab = by_name.get(fn, by_name.get(os.path.splitext(fn)[0]))
        if lab is None:
            unlabeled.append(fn)
        labels.append(lab)
    if unlabeled:
        raise LabelError('%d image(s) have no label in %s, e.g. %s'
                         % (len(unlabeled), path, unlabeled[:5]))
    stems = {os.path.splitext(fn)[0] for fn in filenames}
    missing = [fields[0] for _, fields in rows
               if os.path.splitext(os.path.basename(fields[0]))[0] not in stems]
    if missing:
        raise LabelError('%s labels %d image(s) that are not in the folder, e.g. %s'
                         % (path, len(missing), missing[:5]))
    return labels


def list_flat_folder(root, label_file, classes, exts=IMAGE_EXTENSIONS):
    """List a flat folder of images (e.g. the original ILSVRC2012 ``val/``) with a label file.

    Parameters
    ----------
    root : str
        Folder holding the images directly.
    label_file : str
        Ground truth, see :func:`read_label_file`.
    classes : list of str
        Class names in label order (those of the training set).
    exts : tuple of str

    Returns
    -------
    list of (str, int)
        ``(file name, label)`` in sorted file-name order.
    """
    _check_dir(root, 'image folder')
    files = sorted(f for f in os.listdir(root)
                   if _is_image(f, exts) and os.path.isfile(os.path.join(root, f)))
    if not files:
        raise EmptyDatasetError('no images with extensions %s in %r' % (list(exts), root))
    labels = read_label_file(label_file, files, classes)
    return list(zip(files, labels))


def write_lst(path, items, shuffle=False, seed=0):
    """Write an image list (``.lst``) in im2rec's format.

    Parameters
    ----------
    path : str
    items : list of (str, int)
        ``(relative path, label)``.
    shuffle : bool
        Shuffle the order (our loaders shuffle every epoch themselves, but MXNet's
        ``ImageRecordIter`` splits a file into contiguous parts for distributed training, where
        a class-sorted file would give every worker a subset of the classes).
    seed : int
        Seed of the shuffle (the result is deterministic).

    Returns
    -------
    list of (int, float, str)
        The written ``(index, label, relative path)`` lines; the index is the line number
        from 0 and becomes the record key.
    """
    items = list(items)
    if shuffle:
        random.Random(seed).shuffle(items)
    rows = [(i, float(label), rel) for i, (rel, label) in enumerate(items)]
    with open(path, 'w') as f:
        for i, label, rel in rows:
            if '\t' in rel or '\n' in rel:
                raise ValueError('file name with a tab or newline cannot be listed: %r' % rel)
            f.write('%d\t%f\t%s\n' % (i, label, rel))
    return rows


def read_lst(path):
    """Read an image list (``.lst``): ``index<TAB>label<TAB>path`` per line.

    Parameters
    ----------
    path : str

    Returns
    -------
    list of (int, float, str)

    Raises
    ------
    FileNotFoundError
        The file is missing.
    LabelError
        A malformed line or several labels per image (this package trains single-label
        classification).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError('image list %r does not exist' % path)
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip():
                continue
            parts = line.split('\t')
            if len(parts) != 3:
                raise LabelError('%s line %d: expected "index<TAB>label<TAB>path" (one label per '
                                 'image), got %d fields' % (path, lineno, len(parts)))
            try:
                rows.append((int(parts[0]), float(parts[1]), parts[2]))
            except ValueError:
                raise LabelError('%s line %d: index or label is not a number: %r'
                                 % (path, lineno, line))
    return rows


def write_class_names(path, classes):
    """Write the class names, one per line in label order."""
    with open(path, 'w') as f:
        for c in classes:
            f.write('%s\n' % c)


def read_class_names(path):
    """Read a file written by :func:`write_class_names`; returns a list of str."""
    with open(path) as f:
        return [line.rstrip('\n') for line in f if line.strip()]


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
    from .recordio import write_verified_stamp
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
