"""The paper's pre-processing as named options (He et al., 2018, section 2.1).

Every constant of section 2.1 is a field of :class:`AugmentConfig` and a command-line flag of
:func:`add_data_args`. The same configuration drives both data paths:

* :func:`record_iter_kwargs` turns it into keyword arguments of ``mx.io.ImageRecordIter``
  (the fast C++ RecordIO pipeline GluonCV used for ImageNet), and
* :func:`train_transform` / :func:`val_transform` turn it into Gluon transforms for
  class-folder data (``ImageFolderDataset``).

Training pipeline (section 2.1, steps 1-6): decode to RGB in [0, 255]; random-resized crop with
area in [8%, 100%] and aspect ratio in [3/4, 4/3], resized to 224 x 224; horizontal flip with
probability 0.5; brightness, contrast and saturation scaled by factors drawn from
U[1 - 0.4, 1 + 0.4] = U[0.6, 1.4] (the paper writes "hue, saturation and brightness"; GluonCV,
the paper's code, jitters contrast instead of hue, hue 0 is its default); AlexNet-style PCA
lighting noise with coefficients ~ N(0, 0.1); normalize with mean (123.68, 116.779, 103.939)
and std (58.393, 57.12, 57.375).

Validation: resize the shorter side to ceil(224 / 0.875) = 256 keeping the aspect ratio,
center crop 224, the same normalization, nothing random.
"""
import argparse
import dataclasses
import math
import os
import random
from fractions import Fraction
from typing import Tuple

__all__ = ['AugmentConfig', 'add_data_args', 'config_from_args', 'record_iter_kwargs',
           'train_transform', 'val_transform', 'ColorJitter', 'RandomFlip',
           'PCALighting', 'IMAGENET_MEAN', 'IMAGENET_STD',
           'DEFAULT_DATA_DIR', 'default_rec_paths']

#: Per-channel RGB mean on the 0-255 scale (section 2.1, step 6).
IMAGENET_MEAN = (123.68, 116.779, 103.939)
#: Per-channel RGB standard deviation on the 0-255 scale (section 2.1, step 6).
IMAGENET_STD = (58.393, 57.12, 57.375)
#: GluonCV's default location of ImageNet.
DEFAULT_DATA_DIR = '~/.mxnet/datasets/imagenet'


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The pre-processing constants of section 2.1, with the paper's values as defaults.

    Parameters
    ----------
    input_size : int
        Side of the square network input (224; 299 for Inception-V3, section 2.2).
    crop_ratio : float
        Validation center-crop ratio: the shorter side is first resized to
        ``ceil(input_size / crop_ratio)`` (224 / 0.875 = 256).
    random_area : tuple of float
        Range of the random-resized crop's area as a fraction of the image (0.08, 1.0).
    aspect_ratio : tuple of float
        Range of the random-resized crop's aspect ratio width / height (3/4, 4/3).
    mirror : bool
        Flip horizontally with probability 0.5 (step 3).
    brightness, contrast, saturation : float
        Jitter strength ``j``: each is scaled by a factor drawn from U[1 - j, 1 + j]
        (0.4, i.e. [0.6, 1.4], step 4).
    hue : float
        Hue jitter strength (0, GluonCV's default; only the class-folder path implements it,
        ``mx.io.ImageRecordIter`` has no equivalent).
    pca_noise : float
        Standard deviation of the AlexNet-style PCA lighting noise coefficients (0.1, step 5).
    mean, std : tuple of float
        RGB normalization on the 0-255 scale (step 6).
    """

    input_size: int = 224
    crop_ratio: float = 0.875
    random_area: Tuple[float, float] = (0.08, 1.0)
    aspect_ratio: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    mirror: bool = True
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.0
    pca_noise: float = 0.1
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        if int(self.input_size) != self.input_size or self.input_size <= 0:
            raise ValueError('input_size must be a positive integer, got %r' % (self.input_size,))
        if not 0 < self.crop_ratio <= 1:
            raise ValueError('crop_ratio must be in (0, 1], got %r' % (self.crop_ratio,))
        lo, hi = self.random_area
        if not 0 < lo <= hi <= 1:
            raise ValueError('random_area must satisfy 0 < min <= max <= 1, got %r'
                             % (self.random_area,))
        lo, hi = self.aspect_ratio
        if not 0 < lo <= hi:
            raise ValueError('aspect_ratio must satisfy 0 < min <= max, got %r'
                             % (self.aspect_ratio,))
        for name in ('brightness', 'contrast', 'saturation', 'hue', 'pca_noise'):
            if getattr(self, name) < 0:
                raise ValueError('%s must be >= 0, got %r' % (name, getattr(self, name)))
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError('mean and std need 3 values (R, G, B)')
        if min(self.std) <= 0:
            raise ValueError('std values must be > 0, got %r' % (self.std,))

    @property
    def val_resize(self):
        """Shorter side before the validation center crop: ``ceil(input_size / crop_ratio)``.

        256 for the defaults (section 2.1, "resize each image's shorter edge to 256").
        """
        return int(math.ceil(self.input_size / self.crop_ratio))

    def replace(self, **changes):
        """Return a copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def no_augment(cls, **changes):
        """A training configuration with every random augmentation switched off.

        Area 1 and aspect ratio 1, no flip, no jitter, no lighting noise. The two paths then
        differ in the crop: ``mx.io.ImageRecordIter`` skips its random-resized crop and center
        crops ``input_size`` pixels without resizing; Gluon's ``RandomResizedCrop`` takes the
        largest centered square and resizes it. Meant for checks of the normalization and
        of the sample order, not as a training setting.
        """
        base = dict(random_area=(1.0, 1.0), aspect_ratio=(1.0, 1.0), mirror=False,
                    brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, pca_noise=0.0)
        base.update(changes)
        return cls(**base)


def _float_or_fraction(text):
    """Parse ``'0.75'`` or ``'3/4'`` into a float (for the aspect-ratio flags)."""
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError('expected a number or a fraction like 3/4, got %r'
                                         % text)


def add_data_args(parser):
    """Add the data flags (GluonCV's names where GluonCV has them) to an argparse parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to extend; the flags go into an argument group "data".

    Returns
    -------
    argparse._ArgumentGroup
        The group holding the flags.

    Notes
    -----
    The resulting namespace is read by :func:`config_from_args` (augmentation) and
    :func:`gluon_tricks.data.build_loaders` (the data sources). ``-j`` is stored as
    ``args.num_workers`` as in GluonCV.
    """
    d = AugmentConfig()
    g = parser.add_argument_group('data (defaults: paper section 2.1)')
    g.add_argument('--data-dir', type=str, default=DEFAULT_DATA_DIR,
                   help='data root: class folders DATA_DIR/train and DATA_DIR/val, or with '
                        '--use-rec the default place of train.rec/val.rec (default: %(default)s)')
    g.add_argument('--rec-train', type=str, default=None,
                   help='training RecordIO file (default: DATA_DIR/train.rec)')
    g.add_argument('--rec-train-idx', type=str, default=None,
                   help='index of the training RecordIO file (default: next to it, .idx)')
    g.add_argument('--rec-val', type=str, default=None,
                   help='validation RecordIO file (default: DATA_DIR/val.rec)')
    g.add_argument('--rec-val-idx', type=str, default=None,
                   help='index of the validation RecordIO file (default: next to it, .idx)')
    g.add_argument('--use-rec', action='store_true',
                   help='read RecordIO files with mx.io.ImageRecordIter instead of class folders')
    g.add_argument('-j', '--num-data-workers', dest='num_workers', type=int, default=4,
                   help='decoding threads (RecordIO) or worker processes (folders); '
                        'default %(default)s')
    g.add_argument('--input-size', type=int, default=d.input_size,
                   help='network input size (paper: 224; 299 for Inception-V3)')
    g.add_argument('--crop-ratio', type=float, default=d.crop_ratio,
                   help='validation center-crop ratio; the shorter side is resized to '
                        'ceil(input_size / crop_ratio) first (paper: 0.875, i.e. 256 for 224)')
    g.add_argument('--random-area-min', type=float, default=d.random_area[0],
                   help='smallest area fraction of the random-resized crop (paper: 0.08)')
    g.add_argument('--random-area-max', type=float, default=d.random_area[1],
                   help='largest area fraction of the random-resized crop (paper: 1.0)')
    g.add_argument('--aspect-ratio-min', type=_float_or_fraction, default=d.aspect_ratio[0],
                   help='smallest aspect ratio of the random-resized crop (paper: 3/4)')
    g.add_argument('--aspect-ratio-max', type=_float_or_fraction, default=d.aspect_ratio[1],
                   help='largest aspect ratio of the random-resized crop (paper: 4/3)')
    g.add_argument('--no-mirror', action='store_true',
                   help='disable the random horizontal flip (paper: flip with probability 0.5)')
    g.add_argument('--jitter', type=float, default=d.brightness,
                   help='brightness, contrast and saturation are scaled by a factor in '
                        '[1 - jitter, 1 + jitter] (paper: 0.4, i.e. [0.6, 1.4])')
    g.add_argument('--hue', type=float, default=d.hue,
                   help='hue jitter (GluonCV default and ours: 0; class-folder data only)')
    g.add_argument('--pca-noise', type=float, default=d.pca_noise,
                   help='std of the PCA lighting noise coefficients (paper: N(0, 0.1))')
    g.add_argument('--mean', type=float, nargs=3, default=list(d.mean), metavar=('R', 'G', 'B'),
                   help='RGB mean on the 0-255 scale (paper: 123.68 116.779 103.939)')
    g.add_argument('--std', type=float, nargs=3, default=list(d.std), metavar=('R', 'G', 'B'),
                   help='RGB std on the 0-255 scale (paper: 58.393 57.12 57.375)')
    g.add_argument('--num-classes', type=int, default=None,
                   help='number of classes (default: from the data: the .lst next to the .rec, '
                        'a scan of the record labels, or the class folders; ImageNet: 1000)')
    g.add_argument('--synthetic-data', action='store_true',
                   help='random data of the right shape instead of real data (benchmarks)')
    return g


def config_from_args(args):
    """Build an :class:`AugmentConfig` from a namespace made by :func:`add_data_args`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments; missing attributes take the paper's defaults.

    Returns
    -------
    AugmentConfig
    """
    d = AugmentConfig()
    jitter = getattr(args, 'jitter', d.brightness)
    return AugmentConfig(
        input_size=getattr(args, 'input_size', d.input_size),
        crop_ratio=getattr(args, 'crop_ratio', d.crop_ratio),
        random_area=(getattr(args, 'random_area_min', d.random_area[0]),
                     getattr(args, 'random_area_max', d.random_area[1])),
        aspect_ratio=(getattr(args, 'aspect_ratio_min', d.aspect_ratio[0]),
                      getattr(args, 'aspect_ratio_max', d.aspect_ratio[1])),
        mirror=not getattr(args, 'no_mirror', False),
        brightness=jitter, contrast=jitter, saturation=jitter,
        hue=getattr(args, 'hue', d.hue),
        pca_noise=getattr(args, 'pca_noise', d.pca_noise),
        mean=tuple(getattr(args, 'mean', d.mean)),
        std=tuple(getattr(args, 'std', d.std)),
    )


def record_iter_kwargs(cfg, train):
    """Keyword arguments of ``mx.io.ImageRecordIter`` implementing the configuration.

    Parameters
    ----------
    cfg : AugmentConfig
    train : bool
        True for the training pipeline (section 2.1 steps 1-6), False for validation.

    Returns
    -------
    dict
        Augmentation and normalization arguments (no paths, batch size, seeds or sharding).

    Notes
    -----
    ``ImageRecordIter`` decodes with OpenCV and outputs RGB; its color jitter scales by
    ``1 + U[-j, j]`` (brightness, contrast, saturation) on the 8-bit image, then adds the PCA
    noise on the float image and normalizes ``(x - mean) / std``.
    """
    norm = dict(mean_r=cfg.mean[0], mean_g=cfg.mean[1], mean_b=cfg.mean[2],
                std_r=cfg.std[0], std_g=cfg.std[1], std_b=cfg.std[2])
    if not train:
        # Section 2.1, validation: shorter edge to 256 keeping the aspect ratio, center 224.
        return dict(resize=cfg.val_resize, rand_crop=False, rand_mirror=False, **norm)
    if cfg.hue:
        raise ValueError('hue=%r: mx.io.ImageRecordIter has no hue jitter (its random_h works '
                         'in HSL and is not the same operation); use hue 0 as the paper\'s code '
                         'does, or class-folder data (without --use-rec)' % (cfg.hue,))
    return dict(
        random_resized_crop=True,                      # step 2
        min_random_area=cfg.random_area[0], max_random_area=cfg.random_area[1],
        min_aspect_ratio=cfg.aspect_ratio[0], max_aspect_ratio=cfg.aspect_ratio[1],
        rand_mirror=bool(cfg.mirror),                  # step 3
        brightness=cfg.brightness, contrast=cfg.contrast,
        saturation=cfg.saturation,                     # step 4
        pca_noise=cfg.pca_noise,                       # step 5
        **norm)                                        # step 6


def _normalize(cfg):
    from mxnet.gluon.data.vision import transforms
    # ToTensor maps [0, 255] to [0, 1], so mean and std are scaled by 1/255 (step 6).
    return transforms.Normalize(mean=tuple(m / 255.0 for m in cfg.mean),
                                std=tuple(s / 255.0 for s in cfg.std))


#: Luma weights of R, G, B (ITU-R BT.601), used by the contrast and saturation jitter.
GRAY_COEF = (0.299, 0.587, 0.114)
#: RGB -> YIQ (FCC NTSC); the I and Q rows sum to 0, so a hue rotation leaves gray unchanged.
YIQ_FROM_RGB = ((0.299, 0.587, 0.114),
                (0.595716, -0.274453, -0.321263),
                (0.211456, -0.522591, 0.311135))
#: Eigenvalues of the RGB covariance of ImageNet pixels (0-255 scale), AlexNet's PCA lighting.
PCA_EIGVAL = (55.46, 4.794, 1.148)
#: Eigenvectors (columns) of the RGB covariance of ImageNet pixels, AlexNet's PCA lighting.
PCA_EIGVEC = ((-0.5675, 0.7192, 0.4009),
              (-0.5808, -0.0045, -0.8140),
              (-0.5836, -0.6948, 0.4203))


_BLOCKS = []


def _blocks():
    """The augmentation block classes, defined on first use (``import`` stays MXNet-free)."""
    if _BLOCKS:
        return _BLOCKS
    import numpy as np
    import mxnet as mx
    from mxnet.gluon import Block

    class RandomFlip(Block):
        """Flip an (H, W, C) image left-right with probability ``p`` (section 2.1, step 3).

        Randomness from Python's ``random`` (seeded per sample by the class-folder loader).
        """

        def __init__(self, p=0.5):
            super().__init__()
            self._p = p

        def forward(self, x):
            return mx.nd.flip(x, axis=1) if random.random() < self._p else x

    class ColorJitter(Block):
        """Brightness, contrast, saturation and hue jitter (section 2.1, step 4).

        Each enabled operation uses a factor drawn from U[1 - j, 1 + j] (hue: a rotation by
        U[-h, h] * pi in YIQ space); the operations run in a random order and the image is
        clipped to [0, 255] after each, as ``mx.io.ImageRecordIter`` does on its 8-bit
        image. Input and output: float32 (H, W, 3) RGB on the 0-255 scale. Randomness from
        Python's ``random``.

        Replaces Gluon's ``RandomColorJitter``: in MXNet 1.9.1 its saturation operator takes
        ``0.114 * B`` as the gray level (an assignment where a sum was meant), so it changes
        the brightness of gray images instead of leaving them unchanged.
        """

        def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
            super().__init__()
            self._strength = dict(brightness=brightness, contrast=contrast,
                                  saturation=saturation, hue=hue)

        @staticmethod
        def _gray(x):
            return x.dot(np.asarray(GRAY_COEF, np.float32))[..., None]

        def _apply(self, name, x):
            j = self._strength[name]
            if name == 'hue':
                theta = random.uniform(-j, j) * np.pi
                u, w = np.cos(theta), np.sin(theta)
                rot = np.array([[1.0, 0.0, 0.0], [0.0, u, -w], [0.0, w, u]])
                to_yiq = np.array(YIQ_FROM_RGB)
                t = np.linalg.inv(to_yiq).dot(rot).dot(to_yiq)
                return x.dot(t.T.astype(np.float32))
            alpha = random.uniform(1 - j, 1 + j)
            if name == 'brightness':
                return x * alpha
            if name == 'contrast':
                return x * alpha + self._gray(x).mean() * (1 - alpha)
            return x * alpha + self._gray(x) * (1 - alpha)           # saturation

        def forward(self, x):
            names = [n for n in ('brightness', 'contrast', 'saturation', 'hue')
                     if self._strength[n] > 0]
            if not names:
                return x
            random.shuffle(names)
            out = x.asnumpy().astype(np.float32, copy=False)
            for name in names:
                out = np.clip(self._apply(name, out), 0, 255)
            return mx.nd.array(out, dtype='float32')

    class PCALighting(Block):
        """AlexNet-style PCA lighting noise (section 2.1, step 5).

        Adds ``PCA_EIGVEC @ (alpha * PCA_EIGVAL)`` to every pixel, ``alpha ~ N(0, alphastd)``
        per channel; float32 (H, W, 3) RGB on the 0-255 scale. Randomness from Python's
        ``random``. Same noise as Gluon's ``RandomLighting``, which draws from MXNet's
        generator instead.
        """

        def __init__(self, alphastd):
            super().__init__()
            self._alphastd = alphastd

        def forward(self, x):
            alpha = np.array([random.gauss(0, self._alphastd) for _ in range(3)])
            rgb = np.asarray(PCA_EIGVEC).dot(alpha * np.asarray(PCA_EIGVAL))
            return x + mx.nd.array(rgb.reshape(1, 1, 3), dtype=x.dtype)

    _BLOCKS.extend([RandomFlip, ColorJitter, PCALighting])
    return _BLOCKS


def RandomFlip(p=0.5):
    """Random left-right flip block (class defined in :func:`_blocks`)."""
    return _blocks()[0](p)


def ColorJitter(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
    """Color-jitter block with a correct saturation (class defined in :func:`_blocks`)."""
    return _blocks()[1](brightness, contrast, saturation, hue)


def PCALighting(alphastd):
    """PCA lighting-noise block (class defined in :func:`_blocks`)."""
    return _blocks()[2](alphastd)


def train_transform(cfg):
    """Gluon transform of one decoded HWC uint8 RGB image for training (section 2.1).

    Parameters
    ----------
    cfg : AugmentConfig

    Returns
    -------
    mxnet.gluon.data.vision.transforms.Compose
        Image (H, W, 3) uint8 -> normalized float32 tensor (3, input_size, input_size).

    Notes
    -----
    Crop (Gluon's ``RandomResizedCrop``) and flip on the 8-bit image, then (step 1) conversion
    to float32 on the 0-255 scale, color jitter (:func:`ColorJitter`, clipped to [0, 255] like
    the 8-bit jitter of ``ImageRecordIter``), PCA lighting noise, scaling to [0, 1] and
    normalization. All randomness comes from Python's ``random`` (none from MXNet's global
    generator), which the class-folder loader seeds per sample.
    """
    from mxnet.gluon.data.vision import transforms
    steps = [transforms.RandomResizedCrop(cfg.input_size, scale=tuple(cfg.random_area),
                                          ratio=tuple(cfg.aspect_ratio))]       # step 2
    if cfg.mirror:
        steps.append(RandomFlip(0.5))                                            # step 3
    steps.append(transforms.Cast('float32'))                                     # step 1
    if cfg.brightness or cfg.contrast or cfg.saturation or cfg.hue:
        steps.append(ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation,
                                 cfg.hue))                                       # step 4
    if cfg.pca_noise:
        steps.append(PCALighting(cfg.pca_noise))                                 # step 5
    steps += [transforms.ToTensor(), _normalize(cfg)]                            # step 6
    return transforms.Compose(steps)


def val_transform(cfg):
    """Gluon transform of one decoded HWC uint8 RGB image for validation (section 2.1).

    Resize the shorter side to ``cfg.val_resize`` keeping the aspect ratio, center crop
    ``cfg.input_size``, normalize; nothing random.

    Parameters
    ----------
    cfg : AugmentConfig

    Returns
    -------
    mxnet.gluon.data.vision.transforms.Compose
    """
    from mxnet.gluon.data.vision import transforms
    return transforms.Compose([
        transforms.Resize(cfg.val_resize, keep_ratio=True),
        transforms.CenterCrop(cfg.input_size),
        transforms.ToTensor(),
        _normalize(cfg),
    ])


def default_rec_paths(args, split):
    """RecordIO paths of a split from the flags: ``(rec, idx)``.

    Parameters
    ----------
    args : argparse.Namespace
        From :func:`add_data_args`.
    split : {'train', 'val'}

    Returns
    -------
    tuple of str
        ``--rec-<split>`` (default ``DATA_DIR/<split>.rec``) and ``--rec-<split>-idx``
        (default: the .rec path with the extension ``.idx``).
    """
    data_dir = os.path.expanduser(getattr(args, 'data_dir', DEFAULT_DATA_DIR))
    rec = getattr(args, 'rec_%s' % split, None) or os.path.join(data_dir, '%s.rec' % split)
    rec = os.path.expanduser(rec)
    idx = getattr(args, 'rec_%s_idx' % split, None) or os.path.splitext(rec)[0] + '.idx'
    return rec, os.path.expanduser(idx)
