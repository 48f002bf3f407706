"""The data configuration: every data flag, its default, and the default file paths.

:class:`DataConfig` is the data section of a run's ``config.json``; its field names are the
argparse dests of the flags (``-j/--num-data-workers`` is ``num_workers``, as in GluonCV).
"""
import argparse
import dataclasses
import os
from fractions import Fraction
from typing import Optional, Tuple

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
class DataConfig:
    """Where the data comes from and how it is pre-processed (defaults: paper section 2.1).

    ``augment()`` gives the :class:`AugmentConfig` of the transforms, ``rec_paths(split)`` and
    ``folder(split)`` the files of a split; :func:`gluon_tricks.data.build_loaders` builds the
    loaders.
    """

    data_dir: str = DEFAULT_DATA_DIR
    rec_train: Optional[str] = None
    rec_train_idx: Optional[str] = None
    rec_val: Optional[str] = None
    rec_val_idx: Optional[str] = None
    use_rec: bool = False
    synthetic_data: bool = False
    num_workers: Optional[int] = None
    num_classes: Optional[int] = None
    input_size: int = _PAPER.input_size
    crop_ratio: float = _PAPER.crop_ratio
    random_area_min: float = _PAPER.random_area[0]
    random_area_max: float = _PAPER.random_area[1]
    aspect_ratio_min: float = _PAPER.aspect_ratio[0]
    aspect_ratio_max: float = _PAPER.aspect_ratio[1]
    no_mirror: bool = False
    jitter: float = _PAPER.brightness
    hue: float = _PAPER.hue
    pca_noise: float = _PAPER.pca_noise
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        if self.num_workers is not None and (int(self.num_workers) != self.num_workers or
                                             self.num_workers < 0):
            raise ValueError('-j/--num-data-workers must be an integer >= 0, got %r'
                             % (self.num_workers,))
        if self.num_classes is not None and self.num_classes < 1:
            raise ValueError('--num-classes must be >= 1, got %r' % (self.num_classes,))

    @staticmethod
    def add_args(parser):
        """Add the data flags (GluonCV's names where GluonCV has them) to ``parser``; returns
        the argument group."""
        d = DataConfig()
        g = parser.add_argument_group('data (defaults: paper section 2.1)')
        g.add_argument('--data-dir', type=str, default=d.data_dir,
                       help='data root: class folders DATA_DIR/train and DATA_DIR/val, or with '
                            '--use-rec the default place of train.rec/val.rec (default: '
                            '%(default)s)')
        g.add_argument('--rec-train', type=str, default=None,
                       help='training RecordIO file (default: DATA_DIR/train.rec)')
        g.add_argument('--rec-train-idx', type=str, default=None,
                       help='index of the training RecordIO file (default: next to it, .idx)')
        g.add_argument('--rec-val', type=str, default=None,
                       help='validation RecordIO file (default: DATA_DIR/val.rec)')
        g.add_argument('--rec-val-idx', type=str, default=None,
                       help='index of the validation RecordIO file (default: next to it, .idx)')
        g.add_argument('--use-rec', action='store_true',
                       help='read RecordIO files (.rec/.idx, as packed by prepare_imagenet.py '
                            "or MXNet's im2rec) instead of class folders")
        g.add_argument('-j', '--num-data-workers', '--num-workers', '--workers',
                       dest='num_workers', type=int, default=d.num_workers,
                       help='data worker processes decoding and augmenting images (0: in the '
                            'training process); default: the CPUs of this rank, one left for '
                            'the training process where it has more than 2')
        g.add_argument('--input-size', type=int, default=d.input_size,
                       help='network input size (paper: 224; 299 for Inception-V3)')
        g.add_argument('--crop-ratio', type=float, default=d.crop_ratio,
                       help='validation center-crop ratio; the shorter side is resized to '
                            'ceil(input_size / crop_ratio) first (paper: 0.875, i.e. 256 for '
                            '224)')
        g.add_argument('--random-area-min', type=float, default=d.random_area_min,
                       help='smallest area fraction of the random-resized crop (paper: 0.08)')
        g.add_argument('--random-area-max', type=float, default=d.random_area_max,
                       help='largest area fraction of the random-resized crop (paper: 1.0)')
        g.add_argument('--aspect-ratio-min', type=_float_or_fraction, default=d.aspect_ratio_min,
                       help='smallest aspect ratio of the random-resized crop (paper: 3/4)')
        g.add_argument('--aspect-ratio-max', type=_float_or_fraction, default=d.aspect_ratio_max,
                       help='largest aspect ratio of the random-resized crop (paper: 4/3)')
        g.add_argument('--no-mirror', action='store_true',
                       help='disable the random horizontal flip (paper: flip with probability '
                            '0.5)')
        g.add_argument('--jitter', type=float, default=d.jitter,
                       help='brightness, contrast and saturation are scaled by a factor in '
                            '[1 - jitter, 1 + jitter] (paper: 0.4, i.e. [0.6, 1.4])')
        g.add_argument('--hue', type=float, default=d.hue,
                       help='hue jitter: rotation by U[-hue, hue] * pi in YIQ space (GluonCV '
                            'default and ours: 0)')
        g.add_argument('--pca-noise', type=float, default=d.pca_noise,
                       help='std of the PCA lighting noise coefficients (paper: N(0, 0.1))')
        g.add_argument('--mean', type=float, nargs=3, default=list(d.mean),
                       metavar=('R', 'G', 'B'),
                       help='RGB mean on the 0-255 scale (paper: 123.68 116.779 103.939)')
        g.add_argument('--std', type=float, nargs=3, default=list(d.std),
                       metavar=('R', 'G', 'B'),
                       help='RGB std on the 0-255 scale (paper: 58.393 57.12 57.375)')
        g.add_argument('--num-classes', type=int, default=None,
                       help='number of classes (default: from the data: the .lst next to the '
                            '.rec, a scan of the record labels, or the class folders; '
                            'ImageNet: 1000)')
        g.add_argument('--synthetic-data', action='store_true',
                       help='random data of the right shape instead of real data (benchmarks)')
        return g

    @classmethod
    def from_args(cls, args):
        """The configuration of parsed flags; attributes ``args`` lacks keep their defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: getattr(args, k) for k in names if hasattr(args, k)})

    def to_dict(self):
        """JSON-ready dict: field name (= argparse dest) -> value."""
        out = dataclasses.asdict(self)
        out['mean'], out['std'] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict`; an unknown key is an error naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError('unknown data option(s) %s; known: %s'
                             % (', '.join(unknown), ', '.join(sorted(names))))
        return cls(**values)

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
