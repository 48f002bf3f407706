"""Low-precision training (section 3.2): float16 with a float32 master copy and loss scaling,
and bfloat16 through MXNet's AMP.

* ``'float32'``: nothing changes.
* ``'float16'`` (the paper's FP16): :func:`cast_network` casts the network (BatchNorm stays
  float32 in MXNet 1.9.1), the batch is cast too (:func:`data_dtype`), the optimizer runs with
  ``multi_precision=True`` and :class:`LossScaler` scales the loss. MXNet 1.9.1 has no float16
  GEMM on CPU: this needs a GPU (the tests run its parts on CPU).
* ``'bfloat16'``: AMP casts Convolution/FullyConnected to bfloat16, parameters stay float32,
  no loss scaling. It needs oneDNN's bfloat16 kernels (AVX-512 CPUs; :func:`bfloat16_supported`
  probes, :func:`init_amp` refuses otherwise, naming the missing CPU flag). AMP patches
  ``mx.nd``/``mx.sym`` process-wide, so the order matters::

      init_amp('bfloat16')                  # 1. first
      net = get_model('resnet50_v1d')       # 2. then build
      net = cast_network(net, 'bfloat16')   #    (checks that step 1 happened)
      net.hybridize()                       # 3. then hybridize / run the first forward
"""
import math
import os
import weakref

import numpy as np
import mxnet as mx
from mxnet import autograd

from .cpu import AVX512_CORE_FLAGS, BF16_CPU_FLAGS, bfloat16_cpu_support, cpu_flags  # noqa: F401
from .errors import UserError

__all__ = ['DTYPES', 'init_amp', 'bfloat16_supported', 'bfloat16_cpu_support', 'cpu_flags',
           'cast_network', 'data_dtype', 'needs_multi_precision', 'all_finite', 'LossScaler',
           'PrecisionUnsupportedError']

DTYPES = ('float32', 'float16', 'bfloat16')

_AMP_DTYPE = None          # dtype passed to amp.init by init_amp, or None
_BF16_PROBE = None         # cached (supported, reason)


class PrecisionUnsupportedError(UserError, RuntimeError):
    """This machine cannot run the precision asked for (no bfloat16 kernels, oneDNN off);
    the message says why and what to use instead."""


def _check_dtype(dtype):
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = repr(dtype)
    if name not in DTYPES:
        raise ValueError('dtype must be one of %s, got %r' % (', '.join(DTYPES), dtype))
    return name


def bfloat16_supported(refresh=False):
    """Whether this machine's MXNet can train Convolution/FullyConnected in bfloat16.

    Runs one tiny bfloat16 convolution (forward and backward) and one inner product, without
    ``amp.init`` (so nothing global changes). The result is cached. This asks oneDNN itself,
    not the CPU flags: ``GLUON_TRICKS_CPU_FLAGS`` does not change it, ``DNNL_MAX_CPU_ISA``
    (set before the process starts) does.

    Returns
    -------
    (bool, str)
        ``(True, 'ok')`` or ``(False, reason)`` with the error MXNet raised.
    """
    global _BF16_PROBE
    if _BF16_PROBE is not None and not refresh:
        return _BF16_PROBE
    try:
        from mxnet.contrib.amp.amp import bfloat16
    except ImportError as err:  # pragma: no cover - mxnet 1.9.1 has it
        _BF16_PROBE = (False, 'mxnet.contrib.amp has no bfloat16: %s' % err)
        return _BF16_PROBE
    try:
        x = mx.nd.ones((1, 4, 5, 5))
        w = mx.nd.ones((4, 4, 3, 3)) * 0.1
        x.attach_grad()
        with autograd.record():
            y = mx.nd.Convolution(mx.nd.amp_cast(x, dtype=bfloat16),
                                  mx.nd.amp_cast(w, dtype=bfloat16),
                                  kernel=(3, 3), num_filter=4, no_bias=True, pad=(1, 1))
            z = mx.nd.FullyConnected(y.reshape((1, -1)),
                                     mx.nd.amp_cast(mx.nd.ones((2, 100)), dtype=bfloat16),
                                     num_hidden=2, no_bias=True)
            s = mx.nd.amp_cast(z, dtype='float32').sum()
        s.backward()
        value = float(s.asnumpy()[0])
        x.grad.wait_to_read()
        if not math.isfinite(value):
            _BF16_PROBE = (False, 'bfloat16 probe produced %r' % value)
        else:
            _BF16_PROBE = (True, 'ok')
    except mx.base.MXNetError as err:
        first = str(err).strip().splitlines()
        _BF16_PROBE = (False, 'bfloat16 Convolution/FullyConnected failed: %s'
                       % (first[-1] if first else err))
    return _BF16_PROBE


def init_amp(dtype, check=True):
    """Set up automatic mixed precision for ``dtype``; call it before building the network.

    ``'bfloat16'`` calls ``mxnet.contrib.amp.init(target_dtype='bfloat16')`` (once per process;
    see the module docstring for the order). ``'float32'`` and ``'float16'`` need no AMP (the
    paper's float16 is ``net.cast`` plus a multi-precision optimizer) and return ``False``.

    Parameters
    ----------
    dtype : {'float32', 'float16', 'bfloat16'}
    check : bool
        For bfloat16, first probe that this CPU/GPU can run bfloat16 convolutions
        (:func:`bfloat16_supported`) and raise :class:`PrecisionUnsupportedError` (a
        ``RuntimeError``) with the reason if not, before anything global is changed.

    Returns
    -------
    bool
        Whether AMP is (now) active.
    """
    global _AMP_DTYPE
    dtype = _check_dtype(dtype)
    if dtype != 'bfloat16':
        if _AMP_DTYPE is not None:
            raise RuntimeError('AMP was already initialised for %s in this process; it cannot '
                               'be undone for a %s run' % (_AMP_DTYPE, dtype))
        return False
    if _AMP_DTYPE == 'bfloat16':
        return True
    if check:
        ok, reason = bfloat16_supported()
        if not ok:
            native, flag_reason = bfloat16_cpu_support()
            if not native:
                cause = flag_reason[0].upper() + flag_reason[1:]
            elif os.environ.get('MXNET_MKLDNN_ENABLED', '1').strip() in ('0', 'false', 'False'):
                cause = ('This CPU has %s, but MXNET_MKLDNN_ENABLED=0 switches oneDNN off and '
                         'MXNet has bfloat16 kernels only in oneDNN' % flag_reason)
            else:
                cause = 'This CPU has %s, yet the bfloat16 kernels failed' % flag_reason
            raise PrecisionUnsupportedError(
                "dtype='bfloat16' cannot train on this machine: %s. %s. MXNet 1.9.1's oneDNN "
                "has bfloat16 convolution/inner-product kernels only for AVX-512 CPUs "
                "(avx512f/bw/vl/dq; native with avx512_bf16 or amx_bf16). Use "
                "dtype='float32' here, or 'float16' on a GPU." % (reason, cause))
    from mxnet.contrib import amp
    if getattr(amp.amp, '_amp_initialized', False):
        raise RuntimeError('mxnet.contrib.amp was already initialised outside init_amp '
                           '(target dtype unknown); initialise it once, through init_amp')
    amp.init(target_dtype='bfloat16')
    _AMP_DTYPE = 'bfloat16'
    return True


def _bn_blocks(net):
    from mxnet.gluon.nn.basic_layers import _BatchNorm
    found = []

    def visit(block):
        if isinstance(block, _BatchNorm):
            found.append(block)
    net.apply(visit)
    return found


def cast_network(net, dtype):
    """Put ``net`` in the precision of ``dtype`` (section 3.2) and return it.

    * ``'float32'``: no-op.
    * ``'float16'``: ``net.cast('float16')``. MXNet 1.9.1's ``_BatchNorm.cast`` keeps every
      BatchNorm (and SyncBatchNorm) in float32; this is verified and a ``RuntimeError``
      raised if some BatchNorm parameter did become float16. Other normalization layers
      (LayerNorm, GroupNorm, InstanceNorm) are cast like any layer.
    * ``'bfloat16'``: parameters stay float32 (AMP casts inside the operators); requires
      :func:`init_amp` ``('bfloat16')`` to have been called, before the network was built.
    """
    dtype = _check_dtype(dtype)
    if dtype == 'float32':
        return net
    if dtype == 'bfloat16':
        if _AMP_DTYPE != 'bfloat16':
            raise RuntimeError("dtype='bfloat16' needs init_amp('bfloat16') to be called "
                               "before the network is built (and before hybridizing)")
        return net
    net.cast('float16')
    for bn in _bn_blocks(net):
        for attr, param in bn._reg_params.items():
            if np.dtype(param.dtype) != np.float32:
                raise RuntimeError('%s.%s (%s) is %s after cast(float16); BatchNorm must stay '
                                   'float32' % (bn.name, attr, type(bn).__name__,
                                                np.dtype(param.dtype).name))
    return net


def data_dtype(dtype):
    """The dtype the input batch must be cast to: ``'float16'`` for a float16 network,
    ``'float32'`` otherwise (AMP casts a float32 input itself for bfloat16)."""
    return 'float16' if _check_dtype(dtype) == 'float16' else 'float32'


def needs_multi_precision(dtype):
    """Whether the optimizer needs float32 master weights (``multi_precision=True``)."""
    return _check_dtype(dtype) == 'float16'


def _grad_arrays(params):
    if hasattr(params, 'values'):
        params = params.values()
    arrays = []
    for p in params:
        if p.grad_req == 'null' or p._grad is None:
            continue
        arrays.extend(p.list_grad())
    return arrays


def all_finite(params, chunk=128):
    """Whether every gradient of ``params`` (all contexts) is finite (no inf, no nan).

    On each context ``mx.nd.multi_all_finite`` reduces its gradients (one fused kernel per
    dtype and chunk of ``chunk`` arrays) into a one-element flag on that device; the flags
    are copied to the first context and summed there (device-to-device copies), and that sum
    is read once: one host synchronisation per call, whatever the number of devices.
    """
    groups = {}
    for g in _grad_arrays(params):
        groups.setdefault((g.context, np.dtype(g.dtype).name), []).append(g)
    flags = {}
    for (ctx, _), arrays in groups.items():
        if ctx not in flags:
            flags[ctx] = mx.nd.ones((1,), ctx=ctx)
        out = flags[ctx]
        for i in range(0, len(arrays), chunk):
            part = arrays[i:i + chunk]
            mx.nd.multi_all_finite(*part, num_arrays=len(part), init_output=False, out=out)
    if not flags:
        return True
    flags = list(flags.values())
    home = flags[0].context
    total = flags[0] if len(flags) == 1 else \
        mx.nd.add_n(*[f.as_in_context(home) for f in flags])
    return float(total.asnumpy()[0]) == len(flags)      # 1 per device where all finite


class LossScaler(object):
    """Loss scaling for float16 training (section 3.2), static or dynamic.

    ``LossScaler(None)``
        Off: scale 1 and no overflow check. :meth:`step` is just ``trainer.step(batch_size)``
        (no per-batch host synchronisation). For float32 and bfloat16 runs.
    ``LossScaler(scale, check_overflow=True)``
        Static scale. With the check (default) a step whose gradients contain inf/nan is
        skipped and counted in ``num_skipped`` (the scale stays: a static scaler never adapts,
        so persistent overflows show up as a growing ``num_skipped``). With
        ``check_overflow=False`` every step is applied (no host synchronisation).
    ``LossScaler('dynamic', init_scale=2**16, growth_factor=2, backoff_factor=0.5, growth_interval=2000)``
        Dynamic: an overflow skips the step and multiplies the scale by ``backoff_factor``
        (not below ``min_scale``); after ``growth_interval`` consecutive clean steps the scale
        is multiplied by ``growth_factor`` (not above ``max_scale``).

    Usage::

        with autograd.record():
            loss = loss_fn(net(x).astype('float32'), y)    # compute the loss in float32
            scaled = scaler.scale_loss(loss)
        autograd.backward(scaled)                          # or scaled.backward()
        applied = scaler.step(trainer, batch_size)

    :meth:`step` calls ``trainer.allreduce_grads()``, checks all gradients, and then either
    ``trainer.update(batch_size * scale)`` -- the optimizer's ``rescale_grad`` becomes
    ``1 / (batch_size * scale)``, which un-scales the gradients inside the update kernel --
    or skips the update (no optimizer state, weight, momentum or update count changes, so an
    lr schedule driven by ``num_update`` does not advance either). This requires a trainer
    created with ``update_on_kvstore=False`` (:func:`gluon_tricks.optim.make_trainer`;
    Horovod's ``DistributedTrainer`` qualifies); a trainer that updates on a kvstore raises
    ``RuntimeError``. Under data parallelism every worker checks the same all-reduced
    gradients and so takes the same decision. With ``grad_req='add'`` the caller must zero
    the gradients after a skipped step as after an applied one.

    Host synchronisation: a checked step reads one number from the device (the summed
    per-device overflow flags of :func:`all_finite`), however many devices; the update is
    then enqueued or not, and the scale changes on the host. Nothing is read when the check
    is off. (Skipping needs that one read: a device-side skip would still let weight decay
    and momentum move the weights.)

    Attributes
    ----------
    scale : float
        Current loss scale.
    num_steps : int
        Steps applied.
    num_skipped : int
        Steps skipped because of inf/nan gradients.
    """

    def __init__(self, scale=1.0, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, check_overflow=None, min_scale=2.0 ** -16,
                 max_scale=2.0 ** 24):
        if scale is None:
            if check_overflow:
                raise ValueError('LossScaler(None) is the unchecked fast path; use '
                                 'LossScaler(1.0) for an overflow check without scaling')
            self.mode, self._scale, self.check_overflow = 'off', 1.0, False
        elif isinstance(scale, str):
            if scale != 'dynamic':
                raise ValueError("scale must be None, a positive number or 'dynamic', got %r"
                                 % (scale,))
            if check_overflow is False:
                raise ValueError('a dynamic loss scale needs the overflow check')
            if not init_scale > 0:
                raise ValueError('init_scale must be positive, got %r' % (init_scale,))
            if not growth_factor > 1:
                raise ValueError('growth_factor must be > 1, got %r' % (growth_factor,))
            if not 0 < backoff_factor < 1:
                raise ValueError('backoff_factor must be in (0, 1), got %r' % (backoff_factor,))
            if int(growth_interval) != growth_interval or growth_interval < 1:
                raise ValueError('growth_interval must be a positive integer, got %r'
                                 % (growth_interval,))
            if not 0 < min_scale <= init_scale <= max_scale:
                raise ValueError('need 0 < min_scale <= init_scale <= max_scale, got %r, %r, %r'
                                 % (min_scale, init_scale, max_scale))
            self.mode, self._scale, self.check_overflow = 'dynamic', float(init_scale), True
        else:
            scale = float(scale)
            if not (scale > 0 and math.isfinite(scale)):
                raise ValueError('a static loss scale must be a positive number, got %r'
                                 % (scale,))
            self.mode, self._scale = 'static', scale
            self.check_overflow = True if check_overflow is None else bool(check_overflow)
        self.init_scale = float(init_scale)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.growth_tracker = 0     # consecutive clean steps since the last change
        self.num_steps = 0
        self.num_skipped = 0
        self._checked_trainers = weakref.WeakSet()

    @property
    def scale(self):
        """The current loss scale (float)."""
        return self._scale

    def scale_loss(self, loss):
        """``loss * scale`` (a list for a list). A float16 loss is cast to float32 first so
        that the scaled value cannot overflow; with scale 1 the loss is returned as is."""
        if isinstance(loss, (list, tuple)):
            return [self.scale_loss(l) for l in loss]
        if self._scale == 1.0:
            return loss
        if np.dtype(loss.dtype) == np.float16:
            loss = loss.astype('float32')
        return loss * self._scale

    def _check_trainer(self, trainer):
        if trainer in self._checked_trainers:
            return
        if not getattr(trainer, '_kv_initialized', True):
            trainer._init_kvstore()
        if getattr(trainer, '_kvstore', None) is not None and \
                getattr(trainer, '_update_on_kvstore', False):
            raise RuntimeError(
                'LossScaler.step needs a Trainer created with update_on_kvstore=False: this '
                'one updates the weights on its kvstore (%s), so its gradients cannot be '
                'checked for overflow before the update. Create it with '
                'gluon.Trainer(..., update_on_kvstore=False) or gluon_tricks.optim.make_trainer,'
                ' or use LossScaler(None) / check_overflow=False.' % trainer._kvstore.type)
        self._checked_trainers.add(trainer)

    def step(self, trainer, batch_size, params=None, ignore_stale_grad=False):
        """All-reduce, check for overflow, and update (or skip).

        Parameters
        ----------
        trainer : mxnet.gluon.Trainer
            Created with ``update_on_kvstore=False`` unless the check is off.
        batch_size : int
            What ``trainer.step`` would get (the per-worker batch, or 1 for a mean loss).
        params : iterable of Parameter or ParameterDict, optional
            Whose gradients to check; default: all parameters of the trainer.
        ignore_stale_grad : bool
            Passed to ``trainer.update``/``trainer.step``.

        Returns
        -------
        bool
            Whether the update was applied.
        """
        if not self.check_overflow:
            trainer.step(batch_size * self._scale, ignore_stale_grad=ignore_stale_grad)
            self.num_steps += 1
            return True
        self._check_trainer(trainer)
        trainer.allreduce_grads()
        if all_finite(trainer._params if params is None else params):
            trainer.update(batch_size * self._scale, ignore_stale_grad=ignore_stale_grad)
            self.num_steps += 1
            if self.mode == 'dynamic':
                self.growth_tracker += 1
                if self.growth_tracker >= self.growth_interval:
                    self._scale = min(self._scale * self.growth_factor, self.max_scale)
                    self.growth_tracker = 0
            return True
        self.num_skipped += 1
        if self.mode == 'dynamic':
            self._scale = max(self._scale * self.backoff_factor, self.min_scale)
            self.growth_tracker = 0
        return False

    def state_dict(self):
        """JSON-serialisable state (for ``state.json`` of a checkpoint)."""
        return {'mode': self.mode, 'scale': self._scale, 'growth_tracker': self.growth_tracker,
                'num_steps': self.num_steps, 'num_skipped': self.num_skipped,
                'check_overflow': self.check_overflow, 'init_scale': self.init_scale,
                'growth_factor': self.growth_factor, 'backoff_factor': self.backoff_factor,
                'growth_interval': self.growth_interval, 'min_scale': self.min_scale,
                'max_scale': self.max_scale}

    def load_state_dict(self, state):
        """Restore the scale, growth tracker and counters saved by :meth:`state_dict`.

        The configuration (factors, interval, bounds) is the one this scaler was built with;
        a state from a different mode (e.g. a dynamic run resumed with a static scaler)
        raises ``ValueError``.
        """
        if state.get('mode') != self.mode:
            raise ValueError('loss scaler state is for mode %r, this scaler is %r'
                             % (state.get('mode'), self.mode))
        scale = float(state['scale'])
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError('invalid loss scale in state: %r' % (state['scale'],))
        self._scale = scale
        self.growth_tracker = int(state.get('growth_tracker', 0))
        self.num_steps = int(state.get('num_steps', 0))
        self.num_skipped = int(state.get('num_skipped', 0))

    def __repr__(self):
        if self.mode == 'off':
            return 'LossScaler(None)'
        if self.mode == 'static':
            return 'LossScaler(%g, check_overflow=%s)' % (self._scale, self.check_overflow)
        return ('LossScaler(dynamic, scale=%g, growth_factor=%g, backoff_factor=%g, '
                'growth_interval=%d)' % (self._scale, self.growth_factor, self.backoff_factor,
                                         self.growth_interval))
