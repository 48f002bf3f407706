"""Class-folder data (no RecordIO needed): ``root/<class>/<image>``.

Folders and RecordIO files run through the same pipeline (:mod:`.pipeline`: sharding,
per-sample seeds, the transforms of :mod:`.transforms`); only the source of the encoded images
differs.
"""
import os
import stat

from .transforms import AugmentConfig
from .base import CorruptImageError, LabelError
from .lists import list_class_folder
from .pipeline import ImageLoader

__all__ = ['FolderLoader', 'FolderSource']


class FolderSource(object):
    """Images as encoded bytes (see :class:`.AugmentedDataset`) from ``items``, a list of
    ``(path, label)``."""

    def __init__(self, items):
        self.items = list(items)

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
                 with_params=False, uint8=False):
        self.root = root
        if not os.path.isdir(root):
            raise FileNotFoundError('image folder %r does not exist; expected root/<class>/<image> '
                                    '(set --data-dir, or use --use-rec for RecordIO)' % root)
        items, self.classes = list_class_folder(root, classes)
        self.items = [(os.path.join(root, path), label) for path, label in items]
        if num_classes is None:
            num_classes = len(self.classes)
        if len(self.classes) > num_classes:
            raise LabelError('%r has %d classes, more than num_classes=%d; set --num-classes '
                             'correctly' % (root, len(self.classes), num_classes))
        super(FolderLoader, self).__init__(FolderSource(self.items), batch_size, train,
                                           aug or AugmentConfig(), num_parts, part_index, seed,
                                           num_workers, num_classes, last_batch, with_params,
                                           name=root, uint8=uint8)
