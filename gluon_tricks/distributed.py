"""One training path for single-process, multi-device and Horovod runs.

The training script creates one :class:`DistContext` and asks it for everything that differs
between the modes: which devices to use, the global batch size (for the linear learning-rate
scaling rule), the trainer, the data shard, and the few collectives that training needs
(parameter/object broadcast, summing validation counts, a barrier).  With ``horovod=False``
every collective is an identity and nothing from Horovod is imported, so the same loop runs
unchanged on one CPU, on several GPUs of one process, or as one Horovod rank per GPU.

Typical use (the order matters, see the notes below)::

    dist = DistContext(horovod=args.horovod)
    ctx = dist.devices(args.num_gpus)
    batch_size = dist.global_batch_size(args.batch_size, len(ctx))   # for lr = 0.1 * b / 256
    net = get_model(...); net.initialize(init, ctx=ctx)
    set_no_bias_decay(net)                         # wd_mult = 0 on biases/BN, before the trainer
    net(mx.nd.zeros((1, 3, 224, 224), ctx=ctx[0]))  # finish deferred init (recommended)
    dist.broadcast_parameters(net.collect_params())
    trainer = dist.make_trainer(net.collect_params(), 'nag', {..., 'multi_precision': True})
    num_parts, part_index = dist.shard()           # the loaders' (num_parts, part_index)
    ...
    trainer.step(dist.local_batch_size(args.batch_size, len(ctx)))   # samples of THIS process
    correct, total = dist.allreduce_sum([correct, total])
    dist.log('epoch %d: top-1 %.4f' % (epoch, correct / total))

and the script's entry point is ``run_main(main)`` so that an exception on any rank ends the
whole job (see :func:`gluon_tricks.errors.run_main`).

Facts this module relies on (Horovod 0.28.1, MXNet 1.9.1; checked against their source and by
``tests/test_distributed.py`` with two real ranks):

* Gradient scaling.  ``hvd.DistributedTrainer`` *averages* gradients over ranks: either in
  C++ (allreduce op ``Average``; builds with NCCL >= 2.10) or, on Gloo/CPU builds, as a sum
  with ``1 / size`` folded into the trainer's ``_scale``.  ``Trainer.step(b)`` then multiplies
  by ``1 / b``.  So each rank must call ``trainer.step(local_batch)`` with the number of
  samples *it* processed; the update equals one process stepping on the global batch
  (size x local_batch samples).  Calling ``step(global_batch)`` would shrink the gradient by
  a factor of ``size``.  The single-process multi-device Trainer *sums* the device gradients,
  so there too ``step`` gets the samples of the process (per-device batch x devices):
  :meth:`DistContext.local_batch_size` returns exactly that in both modes.
* ``DistributedTrainer`` reduces only the gradient of each parameter's *first* context, so a
  Horovod rank must hold its parameters on exactly one device (:meth:`devices` returns one);
  :meth:`make_trainer` refuses anything else.
* No-bias-decay and multi-precision: ``DistributedTrainer`` is a ``gluon.Trainer`` with
  ``kvstore=None``; the optimizer is created by the base class with ``param_dict`` pointing at
  the Parameter objects, and reads ``Parameter.wd_mult``/``lr_mult`` from them at every update,
  and ``multi_precision=True`` keeps a float32 master copy for float16 weights exactly as in
  the single-process Trainer.  Setting ``wd_mult`` *before* creating the trainer is still the
  rule here, because a trainer that updates on a distributed kvstore pickles the optimizer
  (a snapshot) when it is created.
* Deferred initialization.  Parameters whose shapes are not known yet cannot be broadcast
  immediately; Horovod then patches the parameter so that it is broadcast right after its
  deferred initialization, i.e. inside the first forward pass, which every rank runs.  That
  works (tested), but the recommended order is to finish initialization first (one forward
  pass on a dummy batch, or give ``in_units``/``in_channels``) so the broadcast happens at a
  known point and is checked for errors there.
* Failures.  ``horovodrun --gloo`` watches its workers: when one exits non-zero it sends
  SIGTERM to the others and exits 1 itself; a rank blocked in a collective whose peer has
  shut Horovod down gets ``MXNetError: Horovod has been shut down`` at once.  The launch
  hangs, however, when the failing rank cannot *exit*: Python joins non-daemon threads
  (prefetchers, loggers, ...) before it runs ``atexit`` (where Horovod shuts down), so the
  failing rank stays alive, the others wait in their next collective forever and the launcher
  waits for both.  :func:`~gluon_tricks.errors.run_main` logs the exception with the rank and leaves with
  ``os._exit`` so that cannot happen.
"""
import logging
import os

import numpy as np
import mxnet as mx

from .errors import ConfigError
from .optim import make_trainer

__all__ = ['DistContext']

_HOROVOD_MISSING = (
    'Horovod with MXNet support is not installed in this environment: build it with '
    '`make horovod` (HOROVOD_WITH_MXNET=1, Gloo; about 6 minutes), then launch with '
    '`horovodrun -np N python scripts/classification/train_imagenet.py --horovod ...` '
    '(see scripts/classification/horovod_launch.sh).')


def _import_horovod():
    try:
        import horovod.mxnet as hvd
    except ImportError as e:   # also raised by check_extension when built without MXNet
        raise ImportError('%s (import error: %s)' % (_HOROVOD_MISSING, e)) from e
    return hvd


def _params_list(params):
    """Parameters of a Block, ParameterDict, dict or list, as a list."""
    if isinstance(params, mx.gluon.Block):
        params = params.collect_params()
    if isinstance(params, (dict, mx.gluon.ParameterDict)):
        return [params[k] for k in sorted(params.keys())]
    return list(params)


#: Set to N, this variable makes the devices of :meth:`DistContext.devices` ``mx.cpu(i)`` in
#: place of ``mx.gpu(i)``, with N GPUs "visible": the multi-GPU and Horovod paths (device ids,
#: per-device copies, local ranks) then run on a CPU-only machine, as the tests do.
EMULATE_GPUS_ENV = 'GLUON_TRICKS_EMULATE_GPUS'


def _gpu(i):
    return mx.cpu(i) if os.environ.get(EMULATE_GPUS_ENV) else mx.gpu(i)


def visible_gpus():
    """GPUs this process can use (``GLUON_TRICKS_EMULATE_GPUS`` when set)."""
    emulated = os.environ.get(EMULATE_GPUS_ENV)
    return int(emulated) if emulated else mx.context.num_gpus()


def _is_deferred(param):
    return param._data is None and param._deferred_init != ()


class DistContext(object):
    """Everything the training loop needs to know about how it is distributed.

    Parameters
    ----------
    horovod : bool
        ``False``: one process (one or several devices), every collective is an identity.
        ``True``: one Horovod rank per device; ``horovod.mxnet`` is imported and initialized
        here (an ``ImportError`` that says how to build it if it is missing).
    logger : logging.Logger or None
        Where :meth:`log` writes; ``None`` prints to stdout (flushed).
    """

    def __init__(self, horovod=False, logger=None):
        self.horovod = bool(horovod)
        self.logger = logger
        self._hvd = None
        if self.horovod:
            hvd = _import_horovod()
            hvd.init()
            self._hvd = hvd
            self.rank, self.size = hvd.rank(), hvd.size()
            self.local_rank, self.local_size = hvd.local_rank(), hvd.local_size()
        else:
            self.rank, self.size, self.local_rank, self.local_size = 0, 1, 0, 1

    # ------------------------------------------------------------------ topology
    @property
    def is_master(self):
        """True on rank 0 only: the rank that logs, saves checkpoints and writes results."""
        return self.rank == 0

    @property
    def is_distributed(self):
        """True when there is more than one rank (collectives actually communicate)."""
        return self.size > 1

    def __repr__(self):
        return 'DistContext(horovod=%s, rank=%d, size=%d, local_rank=%d, local_size=%d)' % (
            self.horovod, self.rank, self.size, self.local_rank, self.local_size)

    def devices(self, num_gpus):
        """The devices this process trains on.

        Horovod: one device per rank when ``num_gpus > 0`` (launch one rank per GPU;
        ``num_gpus`` only says "use GPUs"), else ``mx.cpu()``: ``mx.gpu(local_rank)`` when the
        rank sees every GPU of its host, ``mx.gpu(0)`` when a scheduler shows each rank only
        its own GPU (``CUDA_VISIBLE_DEVICES`` per rank: one visible GPU).
        Single process: ``mx.gpu(0) .. mx.gpu(num_gpus - 1)``, or ``[mx.cpu()]``.
        Asking for GPUs that are not visible raises ``ValueError`` here instead of failing
        later inside MXNet.
        """
        num_gpus = int(num_gpus)
        if num_gpus < 0:
            raise ValueError('num_gpus must be >= 0, got %d' % num_gpus)
        if num_gpus == 0:
            return [mx.cpu()]
        visible = visible_gpus()
        if self.horovod:
            if visible == 1:
                return [_gpu(0)]
            if self.local_rank >= visible or visible < self.local_size:
                raise ConfigError(
                    'rank %d (local rank %d of %d on this host) sees %d GPU(s): give each rank '
                    'either all the GPUs of its host (one rank per GPU, horovodrun -H '
                    'host:<gpus>) or exactly one (CUDA_VISIBLE_DEVICES per rank)'
                    % (self.rank, self.local_rank, self.local_size, visible))
            return [_gpu(self.local_rank)]
        if num_gpus > visible:
            raise ConfigError('--num-gpus %d: %d GPU(s) are visible to this process (check '
                              'CUDA_VISIBLE_DEVICES and nvidia-smi)' % (num_gpus, visible))
        return [_gpu(i) for i in range(num_gpus)]

    def local_batch_size(self, per_device_batch, num_devices):
        """Samples this process handles per step: the argument of ``trainer.step``."""
        return int(per_device_batch) * int(num_devices)

    def global_batch_size(self, per_device_batch, num_devices):
        """Samples per optimizer step over all ranks (per-device x devices x ranks): the ``b``
        of the linear scaling rule lr = 0.1 * b / 256 and of steps-per-epoch."""
        return self.local_batch_size(per_device_batch, num_devices) * self.size

    def shard(self):
        """``(num_parts, part_index)`` for the data loaders and samplers: ``(size, rank)``."""
        return self.size, self.rank

    # ------------------------------------------------------------------ collectives
    def broadcast_parameters(self, params, root_rank=0):
        """Copy the values of ``params`` (Block, ParameterDict or dict of Parameter/NDArray)
        from ``root_rank`` to every rank, in place.  No-op in a single process.

        Initialized parameters are broadcast now and this call waits for them.  Parameters
        still waiting for deferred initialization are broadcast right after that happens (in
        the first forward pass, which every rank must run); finishing initialization before
        this call is recommended (see the module docstring).  Call it again after loading a
        checkpoint on the root only.
        """
        if not self.is_distributed:
            return
        if isinstance(params, mx.gluon.Block):
            params = params.collect_params()
        if not isinstance(params, (dict, mx.gluon.ParameterDict)):
            raise TypeError('broadcast_parameters takes a Block, ParameterDict or dict, got %s'
                            % type(params).__name__)
        for p in params.values():
            if isinstance(p, mx.gluon.Parameter) and not _is_deferred(p) and \
                    len(p.list_ctx()) != 1:
                raise ValueError('Parameter %s lives on %d devices; a Horovod rank must hold '
                                 'its parameters on one device' % (p.name, len(p.list_ctx())))
        self._hvd.broadcast_parameters(params, root_rank=root_rank)
        for p in params.values():
            if isinstance(p, mx.gluon.Parameter):
                if not _is_deferred(p):
                    p.data().wait_to_read()
            else:
                p.wait_to_read()

    def broadcast_statistics(self, net, root_rank=0):
        """Copy the parameters without gradient of ``net`` (BatchNorm running means and
        variances) from ``root_rank`` to every rank, in place.  No-op in a single process.

        ``DistributedTrainer`` all-reduces gradients only; every rank's BatchNorm layers
        update their running statistics from that rank's own batches, so after training the
        ranks hold different statistics.  Call this before validating (each rank scores its
        shard with them) and checkpointing (the root saves), so that the counts summed over
        ranks are those of the one model that is saved.
        """
        if not self.is_distributed:
            return
        params = net.collect_params() if isinstance(net, mx.gluon.Block) else net
        stats = {k: p for k, p in params.items() if p.grad_req == 'null'}
        if stats:
            self.broadcast_parameters(stats, root_rank=root_rank)

    def broadcast_object(self, obj, root_rank=0, name=None):
        """Return ``root_rank``'s ``obj`` on every rank (pickled with cloudpickle), e.g. a
        resume state or the chosen run directory.  Identity in a single process."""
        if not self.is_distributed:
            return obj
        out = self._hvd.broadcast_object(
            obj, root_rank=root_rank, name=name or 'gluon_tricks.obj.' + type(obj).__name__)
        # horovod returns on the root before the others have received; a root that exits
        # right after would shut Horovod down under them
        self.barrier()
        return out

    def allreduce_sum(self, array_like):
        """Sum ``array_like`` (a number, list or numpy array) over ranks; returns a numpy array
        of the same shape (int64 for integers, float64 otherwise).  E.g. the (correct, total)
        validation counts of each shard.  In a single process: the same values as an array."""
        a = np.asarray(array_like)
        dtype = np.int64 if (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_) \
            else np.float64
        a = a.astype(dtype)
        if not self.is_distributed:
            return a.copy()
        shape = a.shape
        flat = mx.nd.array(a.reshape(-1) if a.size else np.zeros(1, dtype), dtype=dtype)
        name = 'gluon_tricks.allreduce_sum.%s.%d' % (np.dtype(dtype).name, flat.size)
        out = self._hvd.allreduce(flat, op=self._hvd.Sum, name=name).asnumpy()
        return out[:a.size].reshape(shape)

    def barrier(self):
        """Block until every rank has reached this point.  No-op in a single process."""
        if not self.is_distributed:
            return
        self._hvd.allreduce(mx.nd.ones((1,), dtype='int32'), op=self._hvd.Sum,
                            name='gluon_tricks.barrier').wait_to_read()

    # ------------------------------------------------------------------ trainer
    def make_trainer(self, params, optimizer, optimizer_params=None, kvstore='device',
                     update_on_kvstore=False):
        """The trainer for this mode.

        Horovod: ``hvd.DistributedTrainer`` (gradients averaged over ranks; ``kvstore`` and
        ``update_on_kvstore`` are ignored). With float16 parameters every gradient is divided
        by the number of ranks *before* the sum (``gradient_predivide_factor``): summed first,
        float16 gradients would overflow ``size`` times earlier.  Single process: ``gluon.Trainer`` with
        ``kvstore`` when the parameters live on more than one device (or a ``dist_*`` kvstore is
        asked for), else no kvstore.
        In both, call ``trainer.step(self.local_batch_size(per_device, len(devices)))``; the
        update then equals one process on the global batch.  Set ``wd_mult``/``lr_mult``
        (no-bias-decay) before calling this; ``optimizer_params`` such as
        ``multi_precision`` are passed through unchanged.
        """
        plist = _params_list(params)
        if not plist:
            raise ValueError('make_trainer got no parameters')
        optimizer_params = dict(optimizer_params or {})
        ctxs = plist[0].list_ctx()
        if self.horovod:
            if len(ctxs) != 1:
                raise ValueError('with Horovod each rank trains on one device (got %s); launch '
                                 'one rank per GPU' % (ctxs,))
            if isinstance(params, mx.gluon.Block):
                params = params.collect_params()
            return self._hvd.DistributedTrainer(params, optimizer, optimizer_params,
                                                gradient_predivide_factor=predivide_factor(
                                                    plist, self.size))
        if isinstance(params, mx.gluon.Block):
            params = params.collect_params()
        use_kvstore = kvstore and (len(ctxs) > 1 or 'dist' in str(kvstore))
        return make_trainer(params, optimizer_params, optimizer,
                            kvstore=kvstore if use_kvstore else None,
                            update_on_kvstore=update_on_kvstore)

    # ------------------------------------------------------------------ logging
    def log(self, msg, all_ranks=False, level=logging.INFO):
        """Log ``msg`` on the master rank only (or on every rank, prefixed with the rank, when
        ``all_ranks``)."""
        if not (self.is_master or all_ranks):
            return
        if all_ranks and self.is_distributed:
            msg = '[rank %d/%d] %s' % (self.rank, self.size, msg)
        if self.logger is not None:
            self.logger.log(level, msg)
        else:
            print(msg, flush=True)


def predivide_factor(params, size):
    """Horovod's ``gradient_predivide_factor`` for ``params``: ``size`` when any of them is
    float16 (average, then nothing after the sum), else 1 (sum, then divide)."""
    low = any(np.dtype(p.dtype) == np.float16 for p in params)
    return float(size) if low and size > 1 else 1.0
