"""Class-folder data (no RecordIO needed): ``root/<class>/<image>``.

Folders and RecordIO files run through the same pipeline (:mod:`.pipeline`: sharding,
per-sample seeds, the transforms of :mod:`.transforms`); only the source of the encoded images
differs.
"""
import os
import stat

from .transforms import AugmentConfig
from .base import CorruptImageError, EmptyDatasetError, LabelError
from .lists import IMAGE_EXTENSIONS
from .pipeline import ImageLoader

__all__ = ['FolderLoader', 'FolderSource', 'open_image_folder']


def open_image_folder(root, classes=None):
    """``ImageFolderDataset`` of ``root/<class>/<image>`` with checked, consistent labels.

    Parameters
    ----------
    root : str
    classes : list of str, optional
        Label order to use (the training classes for a validation folder, which may miss
        some). Default: sorted folder names, as ``ImageFolderDataset`` does.

    Returns
    -------
    mxnet.gluon.data.vision.ImageFolderDataset
        With ``items`` relabeled to ``classes`` and ``synsets = classes``.

    Raises
    ------
    FileNotFoundError, EmptyDatasetError, LabelError
        Missing folder; no class folder or no image; a folder not among ``classes``.
    """
    from mxnet.gluon.data.vision import ImageFolderDataset
    if not os.path.isdir(root):
        raise FileNotFoundError('image folder %r does not exist; expected root/<class>/<image> '
                                '(set --data-dir, or use --use-rec for RecordIO)' % root)
    if not any(os.path.isdir(os.path.join(root, d)) for d in os.listdir(root)):
        raise EmptyDatasetError('no class sub-directories in %r: expected root/<class>/<image>'
                                % root)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "Ignoring <file> of type ..." for non-images
        ds = ImageFolderDataset(root, flag=1)
    if not ds.items:
        raise EmptyDatasetError('no images with extensions %s in the class folders of %r'
                                % (list(IMAGE_EXTENSIONS), root))
    empty = sorted(set(ds.synsets) - {ds.synsets[label] for _, label in ds.items})
    if empty and classes is None:
        raise EmptyDatasetError(
            'class folder(s) %s in %r hold no image with extensions %s: each would become a '
            'class without samples. Remove them (or add their images)'
            % (empty[:5], root, list(IMAGE_EXTENSIONS)))
    if classes is not None:
        classes = list(classes)
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(ds.synsets) - set(index))
        if unknown:
            raise LabelError('class folder(s) %s in %r are not among the %d training classes'
                             % (unknown[:5], root, len(classes)))
        ds.items = [(path, index[ds.synsets[label]]) for path, label in ds.items]
        ds.synsets = classes
    return ds


class FolderSource(object):
    """The images of an ``ImageFolderDataset`` as encoded bytes (see :class:`.AugmentedDataset`)."""

    def __init__(self, folder):
        self.items = list(folder.items)

    def __len__(self):
        return len(self.items)

    def read(self, index):
        path, label = self.items[index]
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
            if regular:
                with open(path, 'rb') as f:
                    return label, f.read()
        except OSError as e:
            raise self.corrupt(index, str(e))
        # a FIFO would block the read forever
        raise self.corrupt(index, 'not a regular file (a FIFO, device or directory)')

    def corrupt(self, index, reason):
        return CorruptImageError('cannot decode image %r (sample %d): %s'
                                 % (self.items[index][0], index, reason))


class FolderLoader(ImageLoader):
    """Batches of a class-folder tree (section 2.1); see :class:`.ImageLoader`.

    Parameters
    ----------
    root : str
        ``root/<class>/<image>``.
    batch_size : int
        Per-part batch size.
    train : bool
    aug : AugmentConfig, optional
        Default: the paper's.
    num_parts, part_index : int
        Sharding (see :mod:`.pipeline`).
    seed : int
    num_workers : int
        Worker processes (0: decode in the calling process).
    classes : list of str, optional
        Label order (pass the training loader's ``classes`` to a validation loader).
    num_classes : int, optional
        Default: ``len(classes)``. Labels must be below it.
    last_batch : {'discard', 'keep'}, optional
        Default ``'discard'`` for training, ``'keep'`` for validation.
    with_params : bool
        Training batches also carry every sample's random draws (tests of the pipeline).

    Raises
    ------
    FileNotFoundError, EmptyDatasetError, LabelError
        At construction, for a missing or empty folder or mismatched classes.
    CorruptImageError
        While iterating, for an image that does not decode (the message names the file).
    """

    def __init__(self, root, batch_size=256, train=True, aug=None, num_parts=1, part_index=0,
                 seed=0, num_workers=4, classes=None, num_classes=None, last_batch=None,
                 with_params=False):
        self.root = root
        self.folder = open_image_folder(root, classes)
        self.classes = list(self.folder.synsets)
        if num_classes is None:
            num_classes = len(self.classes)
        if len(self.classes) > num_classes:
            raise LabelError('%r has %d classes, more than num_classes=%d; set --num-classes '
                             'correctly' % (root, len(self.classes), num_classes))
        super(FolderLoader, self).__init__(FolderSource(self.folder), batch_size, train,
                                           aug or AugmentConfig(), num_parts, part_index, seed,
                                           num_workers, num_classes, last_batch, with_params,
                                           name=root)
