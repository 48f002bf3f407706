"""The data configuration: every data flag, its default, and the default file paths.

:class:`DataConfig` is the data section of a run's ``config.json``; its field names are the
argparse dests of the flags (``-j/--num-data-workers`` is ``num_workers``, as in GluonCV).
"""
import argparse
import dataclasses
import os
from fractions import Fraction
from typing import Optional, Tuple

from ..sections import Section, flag
from .transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig

__all__ = ['DataConfig', 'DEFAULT_DATA_DIR']

#: GluonCV's default location of ImageNet.
DEFAULT_DATA_DIR = '~/.mxnet/datasets/imagenet'

_PAPER = AugmentConfig()


def _float_or_fraction(text):
    """Parse ``'0.75'`` or ``'3/4'`` into a float (for the aspect-ratio flags)."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError('expected a number or a fraction like 3/4, got %r'
                                         % text)


@dataclasses.dataclass
class DataConfig(Section):
    """Where the data comes from and how it is pre-processed (defaults: paper section 2.1).

    ``augment()`` gives the :class:`AugmentConfig` of the transforms, ``rec_paths(split)`` and
    ``folder(split)`` the files of a split; :func:`gluon_tricks.data.build_loaders` builds the
    loaders.
    """

    title = 'data (defaults: paper section 2.1)'
    unknown_fields = 'unknown data option(s) %(names)s; known: %(known)s'

    data_dir: str = flag(DEFAULT_DATA_DIR, type=str,
                         help='data root: class folders DATA_DIR/train and DATA_DIR/val, or '
                              'with --use-rec the default place of train.rec/val.rec '
                              '(default: %(default)s)')
    rec_train: Optional[str] = flag(None, type=str,
                                    help='training RecordIO file (default: DATA_DIR/train.rec)')
    rec_train_idx: Optional[str] = flag(None, type=str,
                                        help='index of the training RecordIO file (default: '
                                             'next to it, .idx)')
    rec_val: Optional[str] = flag(None, type=str,
                                  help='validation RecordIO file (default: DATA_DIR/val.rec)')
    rec_val_idx: Optional[str] = flag(None, type=str,
                                      help='index of the validation RecordIO file (default: '
                                           'next to it, .idx)')
    use_rec: bool = flag(False, action='store_true',
                         help='read RecordIO files (.rec/.idx, as packed by prepare_imagenet.py '
                              "or MXNet's im2rec) instead of class folders")
    num_workers: Optional[int] = flag(
        None, '-j', '--num-data-workers', '--num-workers', '--workers', type=int,
        help='data worker processes decoding and augmenting images (0: in the training '
             'process); default: the CPUs of this rank, one left for the training process '
             'where it has more than 2')
    input_size: int = flag(_PAPER.input_size, type=int,
                           help='network input size (paper: 224; 299 for Inception-V3)')
    crop_ratio: float = flag(_PAPER.crop_ratio, type=float,
                             help='validation center-crop ratio; the shorter side is resized '
                                  'to ceil(input_size / crop_ratio) first (paper: 0.875, i.e. '
                                  '256 for 224)')
    random_area_min: float = flag(_PAPER.random_area[0], type=float,
                                  help='smallest area fraction of the random-resized crop '
                                       '(paper: 0.08)')
    random_area_max: float = flag(_PAPER.random_area[1], type=float,
                                  help='largest area fraction of the random-resized crop '
                                       '(paper: 1.0)')
    aspect_ratio_min: float = flag(_PAPER.aspect_ratio[0], type=_float_or_fraction,
                                   help='smallest aspect ratio of the random-resized crop '
                                        '(paper: 3/4)')
    aspect_ratio_max: float = flag(_PAPER.aspect_ratio[1], type=_float_or_fraction,
                                   help='largest aspect ratio of the random-resized crop '
                                        '(paper: 4/3)')
    no_mirror: bool = flag(False, action='store_true',
                           help='disable the random horizontal flip (paper: flip with '
                                'probability 0.5)')
    jitter: float = flag(_PAPER.brightness, type=float,
                         help='brightness, contrast and saturation are scaled by a factor in '
                              '[1 - jitter, 1 + jitter] (paper: 0.4, i.e. [0.6, 1.4])')
    hue: float = flag(_PAPER.hue, type=float,
                      help='hue jitter: rotation by U[-hue, hue] * pi in YIQ space (GluonCV '
                           'default and ours: 0)')
    pca_noise: float = flag(_PAPER.pca_noise, type=float,
                            help='std of the PCA lighting noise coefficients (paper: N(0, 0.1))')
    mean: Tuple[float, float, float] = flag(
        IMAGENET_MEAN, type=float, nargs=3, metavar=('R', 'G', 'B'), shown=list,
        help='RGB mean on the 0-255 scale (paper: 123.68 116.779 103.939)')
    std: Tuple[float, float, float] = flag(
        IMAGENET_STD, type=float, nargs=3, metavar=('R', 'G', 'B'), shown=list,
        help='RGB std on the 0-255 scale (paper: 58.393 57.12 57.375)')
    num_classes: Optional[int] = flag(None, type=int,
                                      help='number of classes (default: from the data: the '
                                           '.lst next to the .rec, a scan of the record labels, '
                                           'or the class folders; ImageNet: 1000)')
    synthetic_data: bool = flag(False, action='store_true',
                                help='random data of the right shape instead of real data '
                                     '(benchmarks)')

    def __post_init__(self):
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if self.num_workers is not None and (int(self.num_workers) != self.num_workers or
                                             self.num_workers < 0):
            raise ValueError('-j/--num-data-workers must be an integer >= 0, got %r'
                             % (self.num_workers,))
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError('--num-classes must be >= 1, got %r' % (self.num_classes,))

    def augment(self):
        """The :class:`AugmentConfig` of the train and validation transforms."""
        return AugmentConfig(
            input_size=self.input_size, crop_ratio=self.crop_ratio,
            random_area=(self.random_area_min, self.random_area_max),
            aspect_ratio=(self.aspect_ratio_min, self.aspect_ratio_max),
            mirror=not self.no_mirror,
            brightness=self.jitter, contrast=self.jitter, saturation=self.jitter,
            hue=self.hue, pca_noise=self.pca_noise, mean=tuple(self.mean), std=tuple(self.std))

    def rec_paths(self, split):
        """``(rec, idx)`` of ``split`` ('train' or 'val'): ``--rec-<split>`` (default
        ``DATA_DIR/<split>.rec``) and ``--rec-<split>-idx`` (default: next to it, ``.idx``)."""
        rec = getattr(self, 'rec_%s' % split) or os.path.join(self.root(), '%s.rec' % split)
        rec = os.path.expanduser(rec)
        idx = getattr(self, 'rec_%s_idx' % split) or os.path.splitext(rec)[0] + '.idx'
        return rec, os.path.expanduser(idx)

    def folder(self, split):
        """The class-folder tree of ``split``: ``DATA_DIR/<split>``."""
        return os.path.join(self.root(), split)

    def root(self):
        """``--data-dir`` with ``~`` expanded."""
        return os.path.expanduser(self.data_dir)
