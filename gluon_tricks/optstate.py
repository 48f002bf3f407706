"""A trainer's optimizer state as named arrays plus JSON: what a checkpoint keeps of it.

MXNet's ``Trainer.save_states`` pickles the optimizer and its states. A pickle runs code when
it is loaded (a checkpoint from elsewhere could do anything on ``--resume``), unpickles every
array onto the device it was saved from, and holds the update counts of the saving device
only (``Optimizer._all_index_update_counts`` is keyed by device id, so a Horovod rank on
``gpu(3)`` resuming rank 0's file starts from an empty count and its learning rate stands
still). Here instead:

* the arrays (momentum, float32 master weights ...) of the first device's updater are
  copied to the CPU and written with ``mx.nd.save`` under keys ``<index>/<path>``; loading
  them (``mx.nd.load``) cannot run code;
* the scalars (update counts, ``num_update``) and the shape of each state (``None``, an
  array, or a tuple/list of those) are plain JSON (``state.json`` of the checkpoint);
* :func:`apply_state` builds each device's states on that device from the CPU arrays and
  gives every device id of the trainer the saved update counts.

The optimizer object itself is not restored: the trainer keeps the one this command built
(its ``lr_scheduler``, momentum and weight decay); the schedule is a pure function of the
update count, so it continues exactly.
"""
import mxnet as mx
import numpy as np

from .errors import UserError

__all__ = ['OptimizerStateError', 'collect_state', 'apply_state', 'apply_trainer_payload']


class OptimizerStateError(UserError, ValueError):
    """Saved optimizer states that do not fit this trainer (another model, dtype or
    optimizer)."""


def _updaters(trainer):
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        raise OptimizerStateError('a trainer that updates on the kvstore keeps its optimizer '
                                  'states in the kvstore; gluon_tricks trains with '
                                  'update_on_kvstore=False')
    return trainer._updaters


def _flatten(state, key, arrays):
    """The JSON layout of one state; its arrays go to ``arrays`` under ``key/...``."""
    if state is None:
        return None
    if isinstance(state, mx.nd.NDArray):
        arrays[key] = state.copyto(mx.cpu())
        return 'array'
    if isinstance(state, (tuple, list)):
        return {'tuple' if isinstance(state, tuple) else 'list':
                [_flatten(s, '%s/%d' % (key, i), arrays) for i, s in enumerate(state)]}
    raise OptimizerStateError('optimizer state of type %s cannot be saved as arrays'
                              % type(state).__name__)


def _build(layout, key, arrays, ctx):
    if layout is None:
        return None
    if layout == 'array':
        if key not in arrays:
            raise OptimizerStateError('optimizer state array %s is missing' % key)
        return arrays[key].as_in_context(ctx)
    kind, items = next(iter(layout.items()))
    out = [_build(item, '%s/%d' % (key, i), arrays, ctx) for i, item in enumerate(items)]
    return tuple(out) if kind == 'tuple' else out


def _signature(state):
    """Structure, shapes and dtypes of a state, to compare a saved one with a fresh one."""
    if state is None:
        return None
    if isinstance(state, (mx.nd.NDArray, np.ndarray)):
        return (tuple(state.shape), np.dtype(state.dtype).name)
    return tuple(_signature(s) for s in state)


def _names(trainer, net):
    """The key of each of the trainer's parameters: its structural name in ``net``
    (``layer1.0.conv1.weight``), else ``#<index>``. Trainer indices follow the sorted full
    names, which depend on how many blocks the process built before; structural names do not."""
    names = {id(p): k for k, p in net._collect_params_with_prefix().items()} if net else {}
    return [names.get(id(p), '#%d' % i) for i, p in enumerate(trainer._params)]


def collect_state(trainer, net=None):
    """``(arrays, info)`` of ``trainer``: CPU NDArrays by key and the JSON-serialisable rest,
    each parameter under its structural name in ``net`` (see :func:`_names`).

    The states and counts of the trainer's first device are taken: every device holds the
    same ones (the gradients are reduced before each update).
    """
    updater = _updaters(trainer)[0]
    opt = trainer._optimizer
    device = trainer._contexts[0].device_id
    counts = opt._all_index_update_counts.get(device, opt._index_update_count)
    names = _names(trainer, net)
    arrays, layout = {}, {}
    for index in sorted(updater.states):
        layout[names[index]] = _flatten(updater.states[index], names[index], arrays)
    info = {'optimizer': type(opt).__name__.lower(), 'num_update': int(opt.num_update),
            'update_counts': {names[k]: int(v) for k, v in counts.items()},
            'layout': layout, 'num_params': len(trainer._params),
            'shapes': {n: list(p.shape) for n, p in zip(names, trainer._params)}}
    return arrays, info


def apply_state(trainer, arrays, info, where='the checkpoint', net=None):
    """Give ``trainer`` the state :func:`collect_state` saved: ``arrays`` (NDArrays or numpy
    arrays by key, on any device) and ``info``; each device's states are built on that
    device. :class:`OptimizerStateError` (naming ``where``) when they do not fit."""
    updaters = _updaters(trainer)
    opt = trainer._optimizer
    name = type(opt).__name__.lower()
    if info.get('optimizer') != name:
        raise OptimizerStateError('%s holds the states of optimizer %r, this run uses %r'
                                  % (where, info.get('optimizer'), name))
    names = _names(trainer, net)
    shapes = {n: list(p.shape) for n, p in zip(names, trainer._params)}
    if info.get('num_params') != len(shapes) or info.get('shapes') != shapes:
        differ = sorted(set(shapes) ^ set(info.get('shapes') or {}))[:3] or sorted(
            n for n in shapes if shapes[n] != (info.get('shapes') or {}).get(n))[:3]
        raise OptimizerStateError('%s holds optimizer states of %s parameters that do not fit '
                                  'the %d of this model (another model or classes? e.g. %s)'
                                  % (where, info.get('num_params'), len(shapes),
                                     ', '.join(differ)))
    arrays = {k: v if isinstance(v, mx.nd.NDArray) else mx.nd.array(v, dtype=v.dtype)
              for k, v in arrays.items()}
    index_of = {n: i for i, n in enumerate(names)}
    layout = {index_of[k]: (k, v) for k, v in info['layout'].items() if k in index_of}
    if len(layout) != len(info['layout']):
        raise OptimizerStateError('%s holds optimizer states of parameters this model does not '
                                  'have' % where)
    for index, (key, item) in layout.items():
        param = trainer._params[index]
        fresh = opt.create_state_multi_precision(index, param.data(trainer._contexts[0]))
        saved = _build(item, key, arrays, mx.cpu())
        if _signature(saved) != _signature(fresh):
            raise OptimizerStateError(
                '%s: the optimizer state of parameter %s is %s, this run needs %s (was the '
                'checkpoint trained with another --dtype or optimizer?)'
                % (where, key, _signature(saved), _signature(fresh)))
    for updater, ctx in zip(updaters, trainer._contexts):
        updater.states = {i: _build(item, key, arrays, ctx) for i, (key, item) in layout.items()}
        updater.states_synced = dict.fromkeys(updater.states, True)
    counts = {index_of[k]: int(v) for k, v in info['update_counts'].items() if k in index_of}
    opt.num_update = int(info['num_update'])
    opt._all_index_update_counts = {ctx.device_id: dict(counts) for ctx in trainer._contexts}
    opt._index_update_count = opt._all_index_update_counts[trainer._contexts[0].device_id]


def apply_trainer_payload(trainer, payload, hyper=None, where='the checkpoint', net=None):
    """Give ``trainer`` a checkpoint's optimizer state (``Checkpoint.trainer_payload``:
    ``{'arrays', 'info'}``, or ``{'pickle': bytes}`` of an older version that the user allowed),
    then set ``hyper`` (this command's ``lr_scheduler``, ``momentum``, ``wd``) on the
    optimizer: the schedule is a function of the update count, so a scheduler built from the
    same flags continues exactly. :class:`OptimizerStateError` (naming ``where``) when the
    state does not fit."""
    if 'pickle' in payload:
        try:
            for updater in _updaters(trainer):
                updater.set_states(payload['pickle'])
                updater.optimizer = trainer._updaters[0].optimizer
        except Exception as err:  # unpickling errors have many types
            raise OptimizerStateError('trainer states %s cannot be loaded into this trainer '
                                      '(%s: %s)' % (where, type(err).__name__, err))
        trainer._optimizer = trainer._updaters[0].optimizer
        trainer._optimizer.param_dict = dict(enumerate(trainer._params))
        _spread_update_counts(trainer)
    else:
        apply_state(trainer, payload['arrays'], payload['info'], where, net)
    for key, value in (hyper or {}).items():
        setattr(trainer._optimizer, key, value)


def _spread_update_counts(trainer):
    """After MXNet's own ``load_states`` (a pickled file): give every device id of the trainer
    the largest saved update counts, so no device starts again from zero."""
    opt = trainer._optimizer
    saved = [c for c in opt._all_index_update_counts.values() if c]
    counts = max(saved, key=lambda c: sum(c.values())) if saved else {}
    opt._all_index_update_counts = {ctx.device_id: dict(counts) for ctx in trainer._contexts}
    opt._index_update_count = opt._all_index_update_counts[trainer._contexts[0].device_id]
