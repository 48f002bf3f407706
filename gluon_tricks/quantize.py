"""Reduced-precision inference exports: INT8 (oneDNN quantization), bfloat16, fused float32.

:func:`export_precision` turns a trained float32 network, or the files written by
:func:`gluon_tricks.export.export_model`, into an export of the same layout
(``PREFIX-symbol.json``, ``PREFIX-0000.params``, ``PREFIX-meta.json``) that
:func:`gluon_tricks.export.load_exported` (hence ``predict.py`` and ``evaluate.py``) runs
unchanged: the input is the usual float32 batch, the output float32 logits. The metadata
gains ``precision`` (``'float32'``, ``'float32-fused'``, ``'bfloat16'`` or ``'int8'``) and,
for INT8, the calibration used.

* ``'int8'``: MXNet 1.9.1's oneDNN quantization flow
  (``mxnet.contrib.quantization.quantize_model_mkldnn``): the graph is fused
  (``get_backend_symbol('MKLDNN_QUANTIZE')``: convolution + BatchNorm + ReLU + residual
  addition), the fp32 layer outputs of ``N`` calibration images are recorded, and every
  convolution and the classifier run in INT8 with requantization ranges fixed from them:
  ``'naive'`` takes the observed min/max, ``'entropy'`` the threshold minimising the KL
  divergence (TensorRT's method; better when outliers stretch the range). The calibration
  images go through the validation transform of training (:class:`~gluon_tricks.data.
  RecordLoader` / :class:`~gluon_tricks.data.FolderLoader` with ``train=False``, the
  constants of the export's metadata). Fast with VNNI (``avx512_vnni``, ``avx_vnni``) or
  AMX (``amx_int8``); without them INT8 still runs on AVX2/AVX-512, only slower.
* ``'bfloat16'``: convolutions and the classifier in bfloat16 with bfloat16 weights;
  BatchNorm (float32 parameters), ReLU, pooling and the residual additions keep the bfloat16
  activations; operators AMP lists as float32-only (e.g. ``Flatten``) and the output get
  float32: ``mxnet.contrib.amp.convert_model(..., target_dtype='bfloat16',
  cast_optional_params=True)`` (:func:`bfloat16_symbol`), then fused
  (``get_backend_symbol('MKLDNN')``). The symbol is saved with ``remove_amp_cast=False``:
  MXNet's ``Symbol.save``/``tojson`` (and ``HybridBlock.export``) drop ``amp_cast`` nodes by
  default, which leaves a graph that fails to load. Needs ``avx512_bf16`` or ``amx_bf16`` to
  be fast; without AVX-512 MXNet 1.9.1 has no bfloat16 kernels.
* ``'float32-fused'``: the float32 graph fused for inference
  (``get_backend_symbol('MKLDNN')``: convolution + BatchNorm + ReLU + addition), the same
  numbers as float32 up to rounding, typically 5-10 % faster on CPU.
"""
import json
import logging
import os
import shutil
import tempfile

import mxnet as mx

from . import precision as _prec
from .cpu import cpu_flags, flags_origin
from .precision import PrecisionUnsupportedError

__all__ = ['PRECISIONS', 'CALIB_MODES', 'export_precision', 'calibration_loader',
           'bfloat16_symbol', 'int8_cpu_support', 'check_precision_support',
           'load_checkpoint_files', 'save_checkpoint_files', 'calibration_batches']

#: values of ``--precision`` (``float32-fused``: float32 with oneDNN graph fusion)
PRECISIONS = ('float32', 'float32-fused', 'bfloat16', 'int8')
#: calibration modes of INT8 quantization
CALIB_MODES = ('naive', 'entropy')
#: CPU flags with which oneDNN runs INT8 convolutions with dot-product instructions
INT8_FAST_FLAGS = ('avx512_vnni', 'amx_int8', 'avx_vnni')

_LOG = logging.getLogger(__name__)


# --------------------------------------------------------------------------- CPU support
def int8_cpu_support(flags=None):
    """``(fast, reason)``: whether this CPU has INT8 dot-product instructions (VNNI or AMX).

    Without them oneDNN still runs INT8 (AVX2 / AVX-512 ``vpmaddubsw`` sequences), slower, and
    the speed-up over float32 is small or none.
    """
    where = flags_origin() if flags is None else 'the flags given'
    flags = cpu_flags() if flags is None else frozenset(flags)
    found = [f for f in INT8_FAST_FLAGS if f in flags]
    if found:
        return True, ', '.join(found)
    return False, ('this CPU has none of %s in %s: oneDNN runs INT8 without '
                   'dot-product instructions (%s), so INT8 is only a little faster than '
                   'float32, if at all; the speed-ups of docs/performance.md need avx512_vnni '
                   'or amx_int8' % (', '.join(INT8_FAST_FLAGS), where,
                                    'AVX-512' if 'avx512bw' in flags else 'AVX2'
                                    if 'avx2' in flags else 'SSE4.1'))


def _check_precision_name(precision):
    if precision not in PRECISIONS:
        raise ValueError('precision must be one of %s, got %r' % (', '.join(PRECISIONS),
                                                                  precision))


def _require_onednn(precision):
    """Refuse a precision other than float32 where oneDNN is missing or switched off."""
    if precision == 'float32':
        return
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise PrecisionUnsupportedError('precision %r needs MXNet built with oneDNN (MKLDNN); '
                                        'this build has none (mx.runtime.Features())'
                                        % precision)
    if os.environ.get('MXNET_MKLDNN_ENABLED', '1').strip() in ('0', 'false', 'False'):
        raise PrecisionUnsupportedError('precision %r runs on oneDNN, which '
                                        'MXNET_MKLDNN_ENABLED=0 switches off: unset it'
                                        % precision)


def check_precision_support(precision, log=None):
    """Refuse (:class:`~gluon_tricks.precision.PrecisionUnsupportedError`, a
    ``RuntimeError``) a precision this MXNet/CPU cannot run, warn (through ``log``, default
    this module's logger) where it runs slowly. Returns the warning or ``None``. An unknown
    ``precision`` is a ``ValueError`` (checked first)."""
    _check_precision_name(precision)
    log = log or _LOG.warning
    if precision == 'float32':
        return None
    _require_onednn(precision)
    if precision == 'bfloat16':
        native, why = _prec.bfloat16_cpu_support()
        ok, probe = _prec.bfloat16_supported()
        if not ok:
            raise PrecisionUnsupportedError(
                'bfloat16 inference cannot run on this machine: %s. %s. MXNet 1.9.1 has '
                'bfloat16 kernels only in oneDNN on AVX-512 CPUs (native with avx512_bf16 or '
                'amx_bf16); export float32 or int8 here' % (probe, why[0].upper() + why[1:]))
        if not native:
            msg = ('bfloat16 export: %s, so bfloat16 is emulated and slower than float32; '
                   'it needs avx512_bf16 or amx_bf16 to be fast' % why)
            log(msg)
            return msg
    elif precision == 'int8':
        fast, why = int8_cpu_support()
        if not fast:
            msg = 'int8 export: ' + why
            log(msg)
            return msg
    return None


# --------------------------------------------------------------------------- files
def _check_export_files(prefix):
    """``prefix``'s metadata (``{}`` without ``-meta.json``) once its symbol and parameter
    files are known to exist (``FileNotFoundError`` naming the missing one otherwise)."""
    for path in (prefix + '-symbol.json', prefix + '-0000.params'):
        if not os.path.isfile(path):
            raise FileNotFoundError('%s is missing: export the model first with '
                                    'scripts/classification/export.py' % path)
    if not os.path.isfile(prefix + '-meta.json'):
        return {}
    with open(prefix + '-meta.json') as f:
        return json.load(f)


def load_checkpoint_files(prefix):
    """``(symbol, arg_params, aux_params, meta)`` of an export written by
    :func:`gluon_tricks.export.export_model` (or by :func:`export_precision`)."""
    meta = _check_export_files(prefix)
    sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
    return sym, args, auxs, meta


def save_checkpoint_files(prefix, sym, args, auxs, meta):
    """Write ``prefix-symbol.json``, ``-0000.params`` and ``-meta.json``; returns the paths."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    sym.save(prefix + '-symbol.json', remove_amp_cast=False)
    arrays = {'arg:' + k: v.as_in_context(mx.cpu()) for k, v in args.items()}
    arrays.update({'aux:' + k: v.as_in_context(mx.cpu()) for k, v in auxs.items()})
    mx.nd.save(prefix + '-0000.params', arrays)
    with open(prefix + '-meta.json', 'w') as f:
        json.dump(meta, f, indent=1)
    return {'symbol': prefix + '-symbol.json', 'params': prefix + '-0000.params',
            'meta': prefix + '-meta.json'}


# --------------------------------------------------------------------------- calibration
def calibration_batches(loader, num_images, seed=0):
    """What calibration reads: ``num_images`` images of ``loader``.

    A validation :class:`~gluon_tricks.data.RecordLoader` / :class:`~gluon_tricks.data.
    FolderLoader` reads its files in order, and a class-folder tree (or an unshuffled
    ``.lst``) is sorted by class: its first images would all be of the first classes and give
    ranges too narrow for the others (measured: 13 points of top-1 lost on the digits). From
    such a loader a random sample of ``num_images`` images (seeded, every class likely) is
    read, with its transform, batch size and workers. Any other iterable of ``(data, label)``
    or ``data`` batches is read from the start: give shuffled images.

    Returns
    -------
    iterable of batches
    """
    dataset = getattr(loader, 'dataset', None)
    if dataset is not None and not getattr(loader, 'train', False) and \
            hasattr(dataset, '__getitem__') and hasattr(dataset, '__len__'):
        import numpy as np
        n = len(dataset)
        batch = min(int(getattr(loader, 'batch_size', 32)), max(1, int(num_images)))
        take = min(n, max(batch, int(num_images)))
        idx = np.sort(np.random.RandomState(seed).choice(n, take, replace=False))
        # our worker processes (forked safely, bounded on failure), whole batches only
        from .data.workers import WorkerLoader
        keys = [[int(i) for i in idx[k:k + batch]] for k in range(0, len(idx) - batch + 1, batch)]
        return WorkerLoader(dataset, keys, num_workers=int(getattr(loader, 'num_workers', 0)),
                            name='calibration images')
    return loader


class _CalibIter(mx.io.DataIter):
    """A ``mx.io.DataIter`` over the first ``num_images`` images of an iterable of
    ``(data, label)`` or ``data`` batches (what the quantization flow consumes)."""

    def __init__(self, loader, num_images):
        super(_CalibIter, self).__init__()
        self.loader, self.num_images = loader, int(num_images)
        first = self._data(next(iter(loader)))
        self.batch_size = min(first.shape[0], self.num_images)
        self.provide_data = [mx.io.DataDesc('data', (self.batch_size,) + first.shape[1:])]
        self.provide_label = []
        self.seen = 0
        self.reset()

    @staticmethod
    def _data(batch):
        return batch[0] if isinstance(batch, (list, tuple)) else batch

    def reset(self):
        self._it, self.seen = iter(self.loader), 0

    def next(self):
        if self.seen >= self.num_images:
            raise StopIteration
        data = self._data(next(self._it))
        if data.shape[0] != self.batch_size:  # keep one shape: the module is bound to it
            if data.shape[0] < self.batch_size:
                raise StopIteration
            data = data[:self.batch_size]
        self.seen += data.shape[0]
        return mx.io.DataBatch(data=[data.astype('float32', copy=False)], pad=0)


def calibration_loader(path, meta=None, batch_size=16, num_workers=2, seed=0):
    """A validation-transform loader over ``path`` for calibration.

    ``path``: a ``.rec`` file (its ``.idx`` next to it) or a class-folder tree (``path/<class>/
    <image>``). The images are resized and center-cropped as in validation (``train=False``)
    with the input size, crop ratio, mean and std of ``meta`` (an export's metadata; the
    paper's defaults where missing). Calibration images should come from the training set.
    """
    from .data import AugmentConfig, FolderLoader, RecordLoader
    _check_calibration_path(path)
    aug = AugmentConfig.from_meta(meta or {})
    common = dict(batch_size=batch_size, train=False, aug=aug, seed=seed,
                  num_workers=num_workers, last_batch='discard')
    if os.path.isdir(path):
        return FolderLoader(path, **common)
    return RecordLoader(path, progress=False, **common)


def _check_calibration_path(path):
    if os.path.isdir(path) or (path.endswith('.rec') and os.path.isfile(path)):
        return
    raise FileNotFoundError('calibration data %r is neither a .rec file nor a class-folder '
                            'directory: give the .rec (its .idx beside it) or the folder of '
                            'training images' % path)


# --------------------------------------------------------------------------- bfloat16 graph
def bfloat16_symbol(sym, arg_params, aux_params):
    """AMP's bfloat16 conversion of a float32 inference graph
    (``mxnet.contrib.amp.convert_model(..., target_dtype='bfloat16',
    cast_optional_params=True)``): ``Convolution`` and ``FullyConnected`` in bfloat16 with
    their weights stored in bfloat16, BatchNorm (float32 parameters), ReLU, pooling and the
    residual additions on the bfloat16 activations, ``amp_cast`` nodes where the type changes
    (the float32 input, around ``Flatten``, the float32 output).

    Returns ``(symbol, arg_params, aux_params)``. Save the symbol with
    ``remove_amp_cast=False`` (``Symbol.save`` and ``tojson`` drop the casts by default).
    """
    from mxnet.contrib import amp
    return amp.convert_model(sym, dict(arg_params), dict(aux_params),
                             target_dtype='bfloat16', cast_optional_params=True)


# --------------------------------------------------------------------------- export
def _source_prefix(net_or_prefix):
    """The export prefix of a str source (``FileNotFoundError`` if its files are missing,
    ``ValueError`` if it is not a float32 export), ``None`` for a network."""
    if not isinstance(net_or_prefix, str):
        return None
    prefix = net_or_prefix[:-len('-symbol.json')] if \
        net_or_prefix.endswith('-symbol.json') else net_or_prefix
    meta = _check_export_files(prefix)
    if meta.get('precision', 'float32') != 'float32':
        raise ValueError('%s is already a %s export; convert the float32 export'
                         % (prefix, meta['precision']))
    return prefix


def _source_files(net_or_prefix, work, export_kwargs):
    """``(sym, args, auxs, meta)`` of a prefix, or of ``net`` exported to ``work``."""
    prefix = _source_prefix(net_or_prefix)
    if prefix is not None:
        return load_checkpoint_files(prefix)
    from .export import export_model
    prefix = os.path.join(work, 'float32')
    export_model(net_or_prefix, prefix, **export_kwargs)
    return load_checkpoint_files(prefix)


def export_precision(net_or_prefix, out_prefix, precision='int8', calib_loader=None,
                     calib_mode='naive', num_calib_images=256, num_calib_batches=None,
                     exclude_layers=None, quantized_dtype='auto', check_cpu=True, log=None,
                     **export_kwargs):
    """Write a reduced-precision (or fused) inference export of a float32 network.

    Parameters
    ----------
    net_or_prefix : mxnet.gluon.HybridBlock or str
        An initialised float32 network (exported first with
        :func:`gluon_tricks.export.export_model` and ``export_kwargs``: ``input_size``,
        ``crop_ratio``, ``mean``, ``std``, ``class_names``, ``model_name``), or the prefix of
        a float32 export.
    out_prefix : str
        Where ``out_prefix-symbol.json``, ``-0000.params`` and ``-meta.json`` go.
    precision : {'float32', 'float32-fused', 'bfloat16', 'int8'}
    calib_loader : iterable or str, optional
        INT8 only (required): batches ``(data, label)`` (or ``data``) of normalised float32
        images, e.g. a :class:`~gluon_tricks.data.RecordLoader` with ``train=False``; or a
        ``.rec`` file / class-folder path, read with the export's validation transform
        (:func:`calibration_loader`).
    calib_mode : {'naive', 'entropy'}
    num_calib_images : int
        Images recorded for calibration (rounded down to whole batches).
    num_calib_batches : int, optional
        Alternatively, batches of ``calib_loader`` (overrides ``num_calib_images``).
    exclude_layers : list of str, optional
        INT8: names of layers (graph nodes) left in float32.
    quantized_dtype : {'auto', 'int8', 'uint8'}
        INT8: the type of the quantized activations ('auto': uint8 after ReLU, else int8).
    check_cpu : bool
        Refuse a precision this CPU cannot run and warn where it is slow
        (:func:`check_precision_support`), after the arguments and files are checked.
    log : callable, optional
        Receives progress lines and warnings (default: this module's logger).

    Returns
    -------
    dict
        Paths (``symbol``, ``params``, ``meta``) and the written ``meta``.
    """
    log = log or _LOG.info
    # arguments, then files, then what this machine can run
    _check_precision_name(precision)
    if precision == 'int8' and calib_mode not in CALIB_MODES:
        raise ValueError('calib_mode must be one of %s, got %r' % (', '.join(CALIB_MODES),
                                                                  calib_mode))
    if precision == 'int8' and calib_loader is None:
        raise ValueError("precision='int8' needs calibration images: calib_loader (a loader "
                         "or a .rec / folder path of training images)")
    _source_prefix(net_or_prefix)
    if precision == 'int8' and isinstance(calib_loader, str):
        _check_calibration_path(calib_loader)
    if check_cpu:
        check_precision_support(precision, log=log)
    else:
        _require_onednn(precision)
    work = tempfile.mkdtemp(prefix='gluon_tricks_quantize_')
    try:
        sym, args, auxs, meta = _source_files(net_or_prefix, work, export_kwargs)
        meta = dict(meta)
        if precision == 'float32':
            pass
        elif precision == 'float32-fused':
            sym = sym.get_backend_symbol('MKLDNN')
        elif precision == 'bfloat16':
            sym, args, auxs = bfloat16_symbol(sym, args, auxs)
            sym = sym.get_backend_symbol('MKLDNN')
        else:
            sym, args, auxs, info = _quantize(sym, args, auxs, meta, calib_loader, calib_mode,
                                              num_calib_images, num_calib_batches,
                                              exclude_layers, quantized_dtype, log)
            meta.update(info)
        meta['precision'] = precision
        paths = save_checkpoint_files(out_prefix, sym, args, auxs, meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log('%s export written: %s' % (precision, out_prefix))
    return dict(paths, meta=meta)


def _quantize(sym, args, auxs, meta, calib_loader, calib_mode, num_calib_images,
              num_calib_batches, exclude_layers, quantized_dtype, log):
    from mxnet.contrib.quantization import quantize_model_mkldnn
    if isinstance(calib_loader, str):
        calib_loader = calibration_loader(calib_loader, meta)
    if num_calib_batches:
        num_calib_images = int(num_calib_batches) * int(getattr(calib_loader, 'batch_size',
                                                                 1))
    batches = calibration_batches(calib_loader, num_calib_images)
    it = _CalibIter(batches, 1 << 62)
    num = max(it.batch_size, int(num_calib_images) // it.batch_size * it.batch_size)
    it = _CalibIter(batches, num)
    log('int8: calibrating (%s) on %d images, batches of %d' % (calib_mode, num,
                                                               it.batch_size))
    qsym, qargs, qauxs = quantize_model_mkldnn(
        sym, dict(args), dict(auxs), data_names=('data',), label_names=None, ctx=mx.cpu(),
        excluded_sym_names=list(exclude_layers or []), calib_mode=calib_mode,
        calib_data=it, num_calib_examples=num, quantized_dtype=quantized_dtype,
        quantize_mode='smart', quantize_granularity='tensor-wise')
    info = {'calib_mode': calib_mode, 'num_calib_images': it.seen or num,
            'quantized_dtype': quantized_dtype,
            'excluded_layers': list(exclude_layers or [])}
    return qsym, qargs, qauxs, info
