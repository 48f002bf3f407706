"""Encoded image bytes to RGB uint8 arrays: JPEGs through libjpeg-turbo (``simplejpeg``), at
full or reduced scale, everything else through OpenCV; what makes bytes unusable.

:func:`jpeg_shape` reads a JPEG's sides from its frame header without decoding, so that the
training transform draws its crop first and decodes only at the scale the crop needs
(:meth:`~gluon_tricks.data.TrainTransform.from_bytes`).
"""

__all__ = ['decode_image', 'decode_reduced', 'jpeg_shape', 'image_problem']


def image_problem(buf):
    """Why encoded image bytes are unusable, or None: empty, or a JPEG cut short.

    OpenCV decodes a truncated JPEG without an error (the missing rows come out gray), so the
    cut is found from the markers: a complete JPEG has its end-of-image marker (FF D9) after
    its last start-of-scan marker (FF DA); entropy-coded data never contains FF D9, and an
    embedded thumbnail's markers come before the main image's last scan.
    """
    if not buf:
        return 'empty file'
    if buf[:2] == b'\xff\xd8' and buf.rfind(b'\xff\xd9') < buf.rfind(b'\xff\xda'):
        return 'truncated JPEG (no end-of-image marker after its last scan)'
    return None


def decode_image(buf):
    """Decode encoded image bytes (JPEG, PNG, ...) to an RGB uint8 (H, W, 3) array.

    Returns None for bytes that :func:`image_problem` rejects or OpenCV cannot decode.
    """
    return decode_reduced(buf, 1)


def _simplejpeg():
    """The ``simplejpeg`` module, or None where it is not installed."""
    if 'module' not in _SIMPLEJPEG:
        try:
            import simplejpeg
        except ImportError:
            simplejpeg = None
        _SIMPLEJPEG['module'] = simplejpeg
    return _SIMPLEJPEG['module']


_SIMPLEJPEG = {}


#: JPEG frame-header markers (SOF0-3, 5-7, 9-11, 13-15): they carry the image's height and width.
_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF))
#: OpenCV's decode flags for libjpeg's DCT scaling by 1/2, 1/4, 1/8 (the reduction factor).
_REDUCED_FLAGS = {2: 'IMREAD_REDUCED_COLOR_2', 4: 'IMREAD_REDUCED_COLOR_4',
                  8: 'IMREAD_REDUCED_COLOR_8'}


def jpeg_shape(buf):
    """``(height, width)`` of a JPEG read from its frame header (no decoding), or None: not a
    JPEG, no frame header before the first scan, or an Exif segment (OpenCV rotates such an
    image by its orientation tag, so the header's sides may come out swapped)."""
    if buf[:2] != b'\xff\xd8':
        return None
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            return None
        marker = buf[i + 1]
        if marker == 0xFF:                          # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker == 0xDA:                          # a scan before any frame header
            return None
        if marker == 0xE1 and buf[i + 4:i + 10] == b'Exif\x00\x00':
            return None
        if marker in _SOF_MARKERS:
            if i + 9 > n:
                return None
            height, width = int.from_bytes(buf[i + 5:i + 7], 'big'), \
                int.from_bytes(buf[i + 7:i + 9], 'big')
            return (height, width) if height and width else None
        i += 2 + int.from_bytes(buf[i + 2:i + 4], 'big')
    return None


def decode_reduced(buf, factor):
    """Decode image bytes to RGB uint8, a JPEG at ``1 / factor`` of its size (``factor`` 1,
    2, 4 or 8; libjpeg's DCT scaling: each output pixel is computed from a ``factor x
    factor`` block, so the cost falls with the pixels made): ``ceil(height / factor) x
    ceil(width / factor)``. None for bytes that :func:`image_problem` rejects or that do not
    decode.

    JPEGs whose frame header :func:`jpeg_shape` reads are decoded by libjpeg-turbo through
    ``simplejpeg`` (the pixels OpenCV gives, bit for bit, in about half the time); anything
    else, or what ``simplejpeg`` refuses (CMYK, damaged data), by OpenCV, which also turns an
    Exif-rotated image upright.
    """
    import cv2
    import numpy as np
    if image_problem(buf):
        return None
    sj = _simplejpeg()
    shape = jpeg_shape(buf) if sj is not None else None
    if shape is not None:
        try:    # the smallest of libjpeg's n/8 scales that keeps these sides: exactly 1/factor
            img = sj.decode_jpeg(buf, colorspace='RGB', min_height=-(-shape[0] // factor),
                                 min_width=-(-shape[1] // factor))
            if img.shape[:2] == (-(-shape[0] // factor), -(-shape[1] // factor)):
                return img
        except ValueError:
            pass
    flag = cv2.IMREAD_COLOR if factor == 1 else getattr(cv2, _REDUCED_FLAGS[factor])
    img = cv2.imdecode(np.frombuffer(buf, np.uint8), flag)
    if img is None or img.size == 0:
        return None
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)              # OpenCV decodes BGR
