"""Image lists, label files and class names: the text files around the image data.

* ``.lst`` (MXNet's im2rec format): ``index<TAB>label<TAB>relative/path`` per image; the
  index becomes the record key;
* ``classes.txt``: the class names, one per line; line ``k`` (from 0) is label ``k``, labels
  being the positions of the class folder names in sorted order;
* label files of flat folders (:func:`read_label_file`).
"""
import os
import random

import numpy as np

from .base import EmptyDatasetError, LabelError

__all__ = ['IMAGE_EXTENSIONS', 'CLASSES_FILE', 'list_class_folder', 'list_flat_folder',
           'read_label_file', 'write_lst', 'read_lst', 'write_class_names', 'read_class_names',
           'check_labels']

#: Image file extensions taken from folders (those of ``ImageFolderDataset``; case-insensitive).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
#: Name of the class-name file written next to the lists.
CLASSES_FILE = 'classes.txt'


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

