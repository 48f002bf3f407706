"""The paper's pre-processing (He et al., 2018, section 2.1), once for every use.

:class:`TrainTransform` (random-resized crop, flip, colour jitter, PCA lighting, normalize)
and :class:`ValTransform` (resize the shorter side to ``ceil(S / crop_ratio)`` and the longer
one floored as GluonCV does, center crop ``S``, normalize) turn a decoded RGB uint8 image into a float32 (3, S, S) array. Every
loader validates through :class:`ValTransform`, and so do export, predict and evaluate
(:func:`load_image`). The constants are the fields of :class:`AugmentConfig`, the flags of
:class:`~gluon_tricks.data.DataConfig`.
"""
import dataclasses
import math
from typing import Tuple

from .base import CorruptImageError
from .decode import decode_image, decode_reduced, image_problem, jpeg_shape

__all__ = ['AugmentConfig', 'AugParams', 'TrainTransform', 'ValTransform', 'load_image',
           'IMAGENET_MEAN', 'IMAGENET_STD', 'PARAM_FIELDS', 'JITTER_OPS']

#: Per-channel RGB mean on the 0-255 scale (section 2.1, step 6).
IMAGENET_MEAN = (123.68, 116.779, 103.939)
#: Per-channel RGB standard deviation on the 0-255 scale (section 2.1, step 6).
IMAGENET_STD = (58.393, 57.12, 57.375)


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
        Hue jitter strength: a rotation by U[-hue, hue] * pi in YIQ space (0, GluonCV's
        default).
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

    def val_meta(self):
        """The fields that define :class:`ValTransform`, as JSON values (export metadata)."""
        return {'input_size': int(self.input_size), 'crop_ratio': float(self.crop_ratio),
                'mean': [float(v) for v in self.mean], 'std': [float(v) for v in self.std]}

    @classmethod
    def from_meta(cls, meta):
        """The configuration whose :class:`ValTransform` an export's ``meta`` describes;
        fields missing or None take the paper's values."""
        d = cls()
        get = lambda k: meta.get(k) if meta.get(k) is not None else getattr(d, k)  # noqa: E731
        return cls(input_size=int(get('input_size')), crop_ratio=float(get('crop_ratio')),
                   mean=tuple(float(v) for v in get('mean')),
                   std=tuple(float(v) for v in get('std')))


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
#: The colour operations of step 4, in the order of :attr:`AugParams.factors`.
JITTER_OPS = ('brightness', 'contrast', 'saturation', 'hue')
#: Columns of :meth:`AugParams.vector` (what a loader built with ``with_params`` yields).
PARAM_FIELDS = ('area', 'log_aspect', 'x0', 'y0', 'flip', 'brightness', 'contrast',
                'saturation', 'hue', 'pca_r', 'pca_g', 'pca_b', 'fallback')


def load_image(path, cfg):
    """An image file through :class:`ValTransform` of ``cfg``: float32 (3, S, S).

    Raises :class:`~gluon_tricks.data.CorruptImageError` naming the file when it cannot be
    read or decoded.
    """
    try:
        with open(path, 'rb') as f:
            buf = f.read()
    except OSError as err:
        raise CorruptImageError('cannot read image %s: %s' % (path, err))
    img = decode_image(buf)
    if img is None:
        raise CorruptImageError('cannot decode image %s: %s' % (
            path, image_problem(buf) or 'not an image file OpenCV can read'))
    return ValTransform(cfg)(img)


@dataclasses.dataclass
class AugParams:
    """Every random draw of one training sample (section 2.1, steps 2-5).

    ``box`` is the crop ``(x0, y0, w, h)`` in source pixels; ``order`` the jitter operations
    in the order applied; ``factors`` the draw of each of :data:`JITTER_OPS` (1 for the
    scale factors and 0 for hue when an operation is off); ``alpha`` the PCA coefficients.
    """
    box: Tuple[int, int, int, int]
    fallback: bool
    flip: bool
    order: Tuple[str, ...]
    factors: dict
    alpha: Tuple[float, float, float]

    def vector(self, height, width):
        """The draws as floats in :data:`PARAM_FIELDS` order (area and offsets as fractions)."""
        x0, y0, w, h = self.box
        return [w * h / float(height * width), math.log(w / float(h)), x0 / float(width),
                y0 / float(height), float(self.flip)] + \
            [float(self.factors[k]) for k in JITTER_OPS] + list(self.alpha) + \
            [float(self.fallback)]


class TrainTransform(object):
    """The training pipeline of section 2.1 for one decoded RGB uint8 image.

    ``transform(img, rng)`` returns ``(float32 (3, S, S) normalized, AugParams)``; every
    random draw comes from ``rng`` (a ``numpy.random.Generator``), which the loaders seed per
    sample from ``(seed, epoch, sample index)`` (:mod:`gluon_tricks.data.pipeline`).

    Steps: (2) random-resized crop: up to 10 tries of an area fraction ~ U[area] and a log
    aspect ratio ~ U[log ratio], the first box that fits the image is taken at a uniform
    position, else the whole image center-cropped to the nearest allowed aspect ratio
    (torchvision's rule; MXNet's and GluonCV's crop draw the same way), resized bilinearly
    to S x S; (3) horizontal flip with p = 0.5; (1) float32 on the 0-255 scale;
    (4) brightness, contrast, saturation (and hue) in random order, each scaled by a factor
    ~ U[1 - j, 1 + j] and clipped to [0, 255]; (5) PCA lighting noise with alpha ~
    N(0, pca_noise) per eigenvector; (6) ``(x - mean) / std``, HWC -> CHW.
    """

    def __init__(self, cfg):
        import numpy as np
        self.cfg = cfg
        self._log_ratio = (math.log(cfg.aspect_ratio[0]), math.log(cfg.aspect_ratio[1]))
        self._ops = tuple(k for k in JITTER_OPS if getattr(cfg, k) > 0)
        self._gray = np.asarray(GRAY_COEF, np.float32)
        self._eig = np.asarray(PCA_EIGVEC, np.float64), np.asarray(PCA_EIGVAL, np.float64)

    def sample(self, height, width, rng):
        """Draw the parameters of one sample of a ``height x width`` image."""
        cfg = self.cfg
        box, area = None, height * width
        for _ in range(10):
            target = area * rng.uniform(*cfg.random_area)
            ratio = math.exp(rng.uniform(*self._log_ratio))
            w = int(round(math.sqrt(target * ratio)))
            h = int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                box = (int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)),
                       w, h)
                break
        fallback = box is None
        if fallback:
            ratio = width / float(height)
            lo, hi = cfg.aspect_ratio
            w, h = width, height
            if ratio < lo:
                h = int(round(w / lo))
            elif ratio > hi:
                w = int(round(h * hi))
            box = ((width - w) // 2, (height - h) // 2, w, h)
        flip = bool(cfg.mirror and rng.random() < 0.5)
        order = tuple(self._ops[i] for i in rng.permutation(len(self._ops)))
        factors = {'brightness': 1.0, 'contrast': 1.0, 'saturation': 1.0, 'hue': 0.0}
        for k in self._ops:
            j = getattr(cfg, k)
            factors[k] = float(rng.uniform(-j, j) if k == 'hue' else rng.uniform(1 - j, 1 + j))
        alpha = tuple(float(a) for a in rng.normal(0.0, cfg.pca_noise, 3)) \
            if cfg.pca_noise > 0 else (0.0, 0.0, 0.0)
        return AugParams(box, fallback, flip, order, factors, alpha)

    def reduction(self, p):
        """The DCT-scaling factor (1, 2, 4 or 8) a JPEG can be decoded at for the drawn crop
        ``p.box``: the largest one whose reduced crop still has at least ``input_size``
        pixels on both sides (so the resize still only shrinks)."""
        _, _, w, h = p.box
        s = self.cfg.input_size
        for factor in (8, 4, 2):
            if w >= factor * s and h >= factor * s:
                return factor
        return 1

    def from_bytes(self, buf, rng, out=None, raw=False):
        """``(float32 (3, S, S), AugParams, (height, width))`` of encoded image bytes, or None
        when they do not decode (:func:`decode_image`); the image is written into ``out``
        when given (a batch's slot). ``raw``: the image is :meth:`apply`'s ``(uint8, offset)``.

        For a JPEG whose frame header gives its size (:func:`jpeg_shape`), the draws are made
        from that size first, so they are those of :meth:`__call__`; when the crop is at least
        twice the output on both sides the JPEG is decoded at 1/2, 1/4 or 1/8 of its size
        (:meth:`reduction`) and sampled bilinearly at the box's exact place in the reduced
        image (docs/design.md: the pixel statistics of both decodes). Other images: decoded
        in full, then :meth:`__call__`.
        """
        shape = jpeg_shape(buf)
        if shape is None:
            img = decode_image(buf)
            if img is None:
                return None
            p = self.sample(img.shape[0], img.shape[1], rng)
            return self.apply(img, p, out=out, raw=raw), p, img.shape[:2]
        p = self.sample(shape[0], shape[1], rng)
        factor = self.reduction(p)
        img = decode_reduced(buf, factor)
        if img is None:
            return None
        expected = (-(-shape[0] // factor), -(-shape[1] // factor))
        if img.shape[:2] != expected:       # the header did not describe the decoded image
            img = decode_image(buf) if factor > 1 else img
            if img is None:
                return None
            p = self.sample(img.shape[0], img.shape[1], rng)
            return self.apply(img, p, out=out, raw=raw), p, img.shape[:2]
        return self.apply(img, p, factor, out, raw), p, shape

    def apply(self, img, p, factor=1, out=None, raw=False):
        """Apply drawn parameters to an RGB uint8 (H, W, 3) image (decoded at ``1 / factor``
        of the size the draws were made for); the result goes into ``out`` when given.

        ``raw`` stops after step 4 for batches normalized on the device: returns the jittered
        image rounded to uint8 (3, S, S) (into ``out``, a uint8 slot) and the float32 (3,)
        offset of step 5, the PCA lighting, which the training step adds on the device before
        step 6 (``(x + offset - mean) / std``)."""
        import cv2
        import numpy as np
        x0, y0, w, h = p.box
        s = self.cfg.input_size
        if factor == 1:
            crop = cv2.resize(np.ascontiguousarray(img[y0:y0 + h, x0:x0 + w]), (s, s),
                             interpolation=cv2.INTER_LINEAR)                   # step 2
        else:   # the same bilinear sampling, at the box's exact place in reduced pixels
            crop = cv2.warpAffine(img, _reduced_box_map(p.box, s, factor), (s, s),
                                 flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_REPLICATE)
        if p.flip:
            crop = cv2.flip(crop, 1)                                           # step 3
        # step 1, in planes (3, S, S): every operation below is then a plain array operation
        x = _planes(crop)
        gray, tmp = np.empty(x.shape[1:], np.float32), np.empty(x.shape[1:], np.float32)
        for name in p.order:                                                   # step 4
            a = p.factors[name]
            if name == 'brightness':
                x *= a
            elif name == 'contrast':
                m = float(_luma(x, gray, tmp).mean())
                x *= a
                x += m * (1 - a)
            elif name == 'saturation':
                _luma(x, gray, tmp)
                gray *= (1 - a)
                x *= a
                x += gray
            else:
                x = _hue_matrix(a).dot(x.reshape(3, -1)).reshape(x.shape)
            np.minimum(x, 255, out=x)
            # the clip at 0 is a no-op where every term is >= 0: brightness, and contrast and
            # saturation with a <= 1 (x * a + gray * (1 - a), gray >= 0)
            if name == 'hue' or (a > 1 and name != 'brightness'):
                np.maximum(x, 0, out=x)
        vec, val = self._eig
        offset = vec.dot(np.asarray(p.alpha) * val)
        if raw:     # x is within [0, 255]: rounding is the only change (at most 0.5)
            np.rint(x, out=x)
            if out is None:
                out = np.empty(x.shape, np.uint8)
            np.copyto(out, x, casting='unsafe')
            return out, offset.astype(np.float32)
        return normalize_chw(x, self.cfg, offset, out)  # steps 5, 6

    def __call__(self, img, rng):
        p = self.sample(img.shape[0], img.shape[1], rng)
        return self.apply(img, p), p


def _reduced_box_map(box, size, factor):
    """The affine map from output pixels to pixels of an image decoded at ``1 / factor`` that
    samples where ``cv2.resize`` of the full-size crop ``box`` samples: output centre
    ``u + 0.5`` falls on source ``x0 + (u + 0.5) * w / size``, and reduced pixel ``j`` (centre
    ``j + 0.5``) covers source pixels ``j * factor`` to ``(j + 1) * factor``."""
    import numpy as np
    x0, y0, w, h = box
    ax, ay = w / float(size * factor), h / float(size * factor)
    return np.array([[ax, 0.0, (x0 + 0.5 * w / size) / factor - 0.5],
                     [0.0, ay, (y0 + 0.5 * h / size) / factor - 0.5]], np.float64)


def _hue_matrix(h):
    """RGB -> RGB rotation of the hue by ``h * pi`` in YIQ space (leaves gray unchanged)."""
    import numpy as np
    theta = h * np.pi
    u, w = np.cos(theta), np.sin(theta)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, u, -w], [0.0, w, u]])
    to_yiq = np.array(YIQ_FROM_RGB)
    return np.linalg.inv(to_yiq).dot(rot).dot(to_yiq).astype(np.float32)


class ValTransform(object):
    """The validation pipeline of section 2.1, the one used by training, export and predict.

    GluonCV's, pixel for pixel (``mxnet.gluon.data.vision.transforms.Resize(cfg.val_resize,
    keep_ratio=True)`` then ``CenterCrop(cfg.input_size)``): the shorter side becomes
    ``cfg.val_resize`` and the longer one ``int(long * val_resize / short)``, floored
    (451x300 -> 384x256), resized bilinearly (OpenCV ``INTER_LINEAR``, as that Resize);
    the center crop starts at ``(side - input_size) // 2``; then ``(x - mean) / std``.
    RGB uint8 (H, W, 3) -> float32 (3, S, S). Images smaller than the crop are enlarged by
    the same resize (``val_resize >= input_size``).
    """

    def __init__(self, cfg):
        self.cfg = cfg

    def resized_shape(self, height, width):
        """``(height, width)`` after the resize of a ``height x width`` image (integers:
        the shorter side ``val_resize``, the longer floored as GluonCV's Resize)."""
        short = self.cfg.val_resize
        if height > width:
            return height * short // width, short
        return short, width * short // height

    def __call__(self, img, out=None):
        import cv2
        import numpy as np
        s = self.cfg.input_size
        nh, nw = self.resized_shape(*img.shape[:2])
        resized = cv2.resize(np.ascontiguousarray(img), (nw, nh),
                             interpolation=cv2.INTER_LINEAR)
        y0, x0 = (nh - s) // 2, (nw - s) // 2
        return normalize_chw(_planes(resized[y0:y0 + s, x0:x0 + s]), self.cfg, out=out)


def _planes(img):
    """uint8 (H, W, 3) -> C-contiguous float32 (3, H, W)."""
    import cv2
    import numpy as np
    return np.stack(cv2.split(np.ascontiguousarray(img))).astype(np.float32)


def _luma(x, out, tmp):
    """BT.601 luma of float32 RGB planes (3, H, W) into ``out`` (H, W), ``tmp`` a scratch plane;
    the operations and their rounding are those of ``g0 * x0 + g1 * x1 + g2 * x2``."""
    import numpy as np
    np.multiply(x[0], GRAY_COEF[0], out=out)
    out += np.multiply(x[1], GRAY_COEF[1], out=tmp)
    out += np.multiply(x[2], GRAY_COEF[2], out=tmp)
    return out


def normalize_chw(x, cfg, offset=(0.0, 0.0, 0.0), out=None):
    """``(x + offset - mean) / std`` of float32 RGB planes (3, H, W), in place, or into
    ``out`` (a batch's slot) with the same operations (step 6).

    ``offset`` carries the PCA lighting noise of step 5.
    """
    import numpy as np
    inv_std = 1.0 / np.asarray(cfg.std, np.float64)
    shift = (np.asarray(offset, np.float64) - np.asarray(cfg.mean, np.float64)) * inv_std
    out = x if out is None else out
    np.multiply(x, inv_std.astype(np.float32)[:, None, None], out=out)
    out += shift.astype(np.float32)[:, None, None]
    return out
