"""Per-operator MXNet profile of training steps (``benchmark.py --profile``)."""
import json
import time

import mxnet as mx

__all__ = ['profile_step']


def profile_step(loop, steps=1, top=15, filename=None, per_operator=True):
    """Aggregate MXNet profile of ``steps`` training steps of a warmed-up ``loop``.

    A hybridized network runs its operators in bulked segments (``MXNET_EXEC_BULK_EXEC_*``,
    15 nodes by default), which the profiler reports as one entry named after all of its
    operators. With ``per_operator`` the network is re-hybridized with segments of one node
    (``forward_bulk_size=1, backward_bulk_size=1``), warmed up, profiled, and hybridized back
    as it was, so that every operator is timed on its own.

    Parameters
    ----------
    loop : OurTrainLoop or GluonCVTrainLoop
    steps : int
    top : int
        Operators to keep, by total time.
    filename : str, optional
        Chrome-trace file the profiler writes (default ``profile_step.json``).
    per_operator : bool

    Returns
    -------
    dict
        ``wall_ms`` (per step, under the profiler), ``operator_ms`` (sum of the operator
        times per step; above the wall time where operators overlap), ``operators`` (the top
        ``top``: ``name``, ``count`` and ``total_ms`` per step, ``share`` of ``operator_ms``),
        ``groups`` (shares of ``forward``, ``backward``, ``update`` and ``other`` operators),
        ``num_operators``.
    """
    filename = filename or 'profile_step.json'
    net = loop.net
    flags = dict(getattr(net, '_flags', []) or [])
    if per_operator:
        net.hybridize(static_alloc=flags.get('static_alloc', True),
                      static_shape=flags.get('static_shape', True),
                      forward_bulk_size=1, backward_bulk_size=1)
        loop.run(1)                     # build the unbulked graph outside the profile
    try:
        mx.nd.waitall()
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               continuous_dump=False, filename=filename)
        mx.profiler.set_state('run')
        tic = time.perf_counter()
        loop.run(steps)
        wall = (time.perf_counter() - tic) * 1e3 / steps
        mx.profiler.set_state('stop')
        mx.profiler.dump(finished=False)          # the chrome trace
        stats = json.loads(mx.profiler.dumps(reset=True, format='json'))
    finally:
        if per_operator:
            net.hybridize(**{k: v for k, v in flags.items()
                             if k in ('static_alloc', 'static_shape')})
    ops = stats.get('Time', {}).get('operator', {})
    rows = [{'name': k, 'count': v['Count'] / float(steps), 'total_ms': v['Total'] / steps}
            for k, v in ops.items()]
    total = sum(r['total_ms'] for r in rows) or 1.0
    rows.sort(key=lambda r: -r['total_ms'])
    for r in rows:
        r['share'] = r['total_ms'] / total
    groups = {'forward': 0.0, 'backward': 0.0, 'update': 0.0, 'other': 0.0}
    for r in rows:
        groups[_op_group(r['name'])] += r['share']
    return {'wall_ms': wall, 'operator_ms': total, 'operators': rows[:top], 'groups': groups,
            'num_operators': len(rows), 'per_operator': bool(per_operator)}


_FORWARD_OPS = ('Convolution', 'BatchNorm', 'Activation', 'Pooling', 'FullyConnected',
                'elemwise_add', 'Flatten', 'log_softmax', 'softmax', 'pick', 'Dropout',
                'SoftmaxOutput', 'mean', 'Reshape', 'Concat')


def _op_group(name):
    if name.startswith('_backward') or name.startswith('_contrib_backward') \
            or name == 'add_n':        # add_n sums gradients of branching activations
        return 'backward'
    if 'update' in name:
        return 'update'
    if name in _FORWARD_OPS or name.startswith('_sg_mkldnn'):
        return 'forward'
    return 'other'
