"""Low-precision training (section 3.2): multi-precision NAG, float16 casting, loss scaling,
bfloat16 wiring through AMP."""
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_tricks.precision as precision
from gluon_tricks.optim import make_trainer, optimizer_params
from gluon_tricks.precision import LossScaler, all_finite, cast_network, init_amp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nag_kernel(w, m, g, lr, mu, wd):
    """MXNet 1.9.1 NAG kernel (see gluon_tricks.optim), also what mp_nag_mom_update runs on
    the float32 master copy."""
    w_new = w + mu * mu * m - (1 + mu) * lr * (g + wd * w)
    return w_new, mu * m - lr * (g + wd * w_new)


# -- multi-precision ---------------------------------------------------------------------------
def test_multi_precision_nag_master_matches_float64_reference():
    rng = np.random.RandomState(0)
    n, mu, wd, rescale = 2000, 0.9, 1e-4, 1.0 / 32
    w16 = mx.nd.array(rng.uniform(-1, 1, n), dtype='float16')
    opt = mx.optimizer.NAG(learning_rate=0.1, momentum=mu, wd=wd, rescale_grad=rescale,
                           multi_precision=True)
    updater = mx.optimizer.get_updater(opt)
    w_ref = w16.asnumpy().astype(np.float64)       # the master starts as float32(w16)
    m_ref = np.zeros(n)
    for step, lr in enumerate([0.1, 0.1, 0.05, 0.2, 0.01, 0.1, 0.3, 0.1]):
        opt.set_learning_rate(lr)
        g16 = mx.nd.array(rng.normal(0, 2, n), dtype='float16')   # exact in float64
        updater(0, g16, w16)
        w_ref, m_ref = nag_kernel(w_ref, m_ref, g16.asnumpy().astype(np.float64) * rescale,
                                  lr, mu, wd)
        mom, master = updater.states[0]
        assert master.dtype == np.float32 and mom.dtype == np.float32
        assert w16.dtype == np.float16
        # the float32 master follows the float64 reference to float32 rounding ...
        np.testing.assert_allclose(master.asnumpy(), w_ref, rtol=2e-6, atol=1e-7,
                                   err_msg='step %d' % step)
        np.testing.assert_allclose(mom.asnumpy(), m_ref, rtol=1e-5, atol=1e-7)
        # ... and the float16 weight is exactly the master rounded to float16
        np.testing.assert_array_equal(w16.asnumpy(), master.asnumpy().astype(np.float16))
    # float16 rounding alone is far coarser than the master's error
    assert np.abs(w16.asnumpy().astype(np.float64) - w_ref).max() > 1e-5


def test_multi_precision_keeps_updates_that_float16_loses():
    """Updates below half an ulp of float16 vanish without the master copy (section 3.2)."""
    lr, g, steps = 0.01, 0.01, 50           # each step moves the weight by ~1.9e-4 < 2**-11
    results = {}
    for mp in (True, False):
        w = mx.nd.ones((4,), dtype='float16')
        opt = mx.optimizer.NAG(learning_rate=lr, momentum=0.0, multi_precision=mp)
        updater = mx.optimizer.get_updater(opt)
        if mp:
            updater(0, mx.nd.full((4,), g, dtype='float16'), w)
        else:
            with pytest.warns(UserWarning, match='multi_precision'):
                updater(0, mx.nd.full((4,), g, dtype='float16'), w)
        for _ in range(steps - 1):
            updater(0, mx.nd.full((4,), g, dtype='float16'), w)
        results[mp] = w.asnumpy().astype(np.float64)
    expected = 1.0 - steps * lr * np.float64(np.float16(g))       # plain SGD: 0.995
    assert np.all(results[False] == 1.0)                          # every update rounded away
    np.testing.assert_allclose(results[True], expected, atol=2 ** -11)


# -- float16 casting ---------------------------------------------------------------------------
def conv_bn_net():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, in_channels=3, use_bias=True), nn.BatchNorm(in_channels=4),
                nn.Activation('relu'), nn.GlobalAvgPool2D(), nn.Dense(5, in_units=4))
    net.initialize()
    return net


def test_cast_network_float16_keeps_batchnorm_float32():
    net = conv_bn_net()
    assert cast_network(net, 'float32') is net
    assert all(np.dtype(p.dtype) == np.float32 for p in net.collect_params().values())
    cast_network(net, 'float16')
    dtypes = {k: np.dtype(p.dtype).name for k, p in net._collect_params_with_prefix().items()}
    assert dtypes == {'0.weight': 'float16', '0.bias': 'float16',
                      '1.gamma': 'float32', '1.beta': 'float32',
                      '1.running_mean': 'float32', '1.running_var': 'float32',
                      '4.weight': 'float16', '4.bias': 'float16'}
    assert net[0].weight.grad().dtype == np.float16
    assert precision.data_dtype('float16') == 'float16'
    assert precision.data_dtype('bfloat16') == 'float32'
    assert precision.needs_multi_precision('float16')
    assert not precision.needs_multi_precision('bfloat16')
    with pytest.raises(ValueError):
        cast_network(net, 'int8')


def test_cast_network_bfloat16_requires_init_amp_first():
    from mxnet.contrib.amp import amp
    assert not amp._amp_initialized
    with pytest.raises(RuntimeError, match='init_amp'):
        cast_network(conv_bn_net(), 'bfloat16')


def test_init_amp_refuses_bfloat16_without_kernels(monkeypatch):
    from mxnet.contrib.amp import amp
    monkeypatch.setattr(precision, '_BF16_PROBE', (False, 'probe failed: no kernels'))
    with pytest.raises(RuntimeError, match='probe failed: no kernels'):
        init_amp('bfloat16')
    assert not amp._amp_initialized   # nothing global
    assert init_amp('float16') is False and init_amp('float32') is False


BF16_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import mxnet as mx
    from mxnet.gluon import nn
    from mxnet.contrib.amp import amp
    from gluon_tricks.precision import init_amp, cast_network
    assert init_amp('bfloat16', check=False) is True
    assert amp._amp_initialized
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, use_bias=False, in_channels=3),
            nn.BatchNorm(in_channels=8), nn.Activation('relu'), nn.GlobalAvgPool2D(),
            nn.Dense(10, in_units=8))
    net.initialize()
    cast_network(net, 'bfloat16')
    net.hybridize()
    sym = net(mx.sym.var('data'))
    graph = json.loads(sym.tojson(remove_amp_cast=False))
    nodes = graph['nodes']
    report = {'params': sorted(set(np.dtype(p.dtype).name for p in net.collect_params().values())),
              'ops': {}}
    for node in nodes:
        if node['op'] in ('Convolution', 'FullyConnected', 'BatchNorm'):
            report['ops'][node['op']] = [
                [nodes[i[0]]['op'], nodes[i[0]].get('attrs', {}).get('dtype')]
                for i in node['inputs']]
    print(json.dumps(report))
''')


@pytest.mark.subprocess
def test_init_amp_bfloat16_casts_conv_and_dense_inputs():
    """AMP wiring only (amp.init is process-wide, so in a subprocess). Running the bfloat16
    kernels needs an AVX-512 CPU; the probe and init_amp's error cover the other case."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    out = subprocess.run([sys.executable, '-c', BF16_SCRIPT], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report['params'] == ['float32']
    ops = report['ops']
    bf16 = ['amp_cast', 'bfloat16']
    assert ops['Convolution'] == [bf16, bf16]                 # data and weight
    assert ops['FullyConnected'] == [bf16, bf16, bf16]        # data, weight, bias
    # BatchNorm keeps float32 parameters (AMP's BF16_USE_FP32_PARAMS)
    assert ops['BatchNorm'][1:] == [['null', None]] * 4


@pytest.mark.cpu_dependent
def test_bfloat16_probe_leaves_process_usable():
    """The probe passes where oneDNN has bfloat16 kernels and fails (an MXNetError caught
    inside) elsewhere, e.g. under DNNL_MAX_CPU_ISA=AVX2; either way MXNet keeps working."""
    ok, reason = precision.bfloat16_supported(refresh=True)
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    assert (reason == 'ok') == ok
    y = mx.nd.Convolution(mx.nd.ones((1, 1, 3, 3)), mx.nd.ones((1, 1, 3, 3)), kernel=(3, 3),
                          num_filter=1, no_bias=True)
    assert y.asnumpy().ravel().tolist() == [9.0]


# -- loss scaling ------------------------------------------------------------------------------
def dense_net(seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(6, in_units=5, activation='relu'), nn.Dense(3, in_units=6))
    net.initialize(mx.init.Xavier())
    return net


def batch_data(batch=4, seed=1):
    rng = np.random.RandomState(seed)
    return mx.nd.array(rng.normal(size=(batch, 5))), mx.nd.array(rng.randint(0, 3, batch))


def backward(net, scaler=None, batch=4, seed=1, manual_scale=None):
    """Forward and backward of a batch; the loss scaled by ``scaler`` or, by hand, multiplied
    by ``manual_scale``."""
    x, y = batch_data(batch, seed)
    with autograd.record():
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
        if scaler is not None:
            loss = scaler.scale_loss(loss)
        if manual_scale is not None:
            loss = loss * manual_scale
    loss.backward()


def params_np(net):
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def new_trainer(net):
    return make_trainer(net, optimizer_params(base_lr=0.1, wd=1e-3))


U32 = 2.0 ** -24      # unit roundoff of float32


def gradient_magnitudes(net, seed):
    """The componentwise error scale of ``backward(dense_net)``'s gradients (float64).

    The backward pass is linear in the loss gradient: with ``dZ = g * (onehot - softmax)`` at
    the logits (``g`` = 1, or the loss scale), ``dW2 = dZ' H``, ``db2 = sum dZ``,
    ``dH = (dZ W2) * [H > 0]``, ``dW1 = dH' X``, ``db1 = sum dH``. Each float32 product or sum
    of ``n`` terms is exact up to ``n`` roundings of the sum of the absolute values of its
    terms (any summation order, any blocking: oneDNN, OpenBLAS, AVX2 or AVX-512). This returns
    those sums of absolute values for ``g = 1``: the same formulas on ``|onehot| + |softmax|``,
    ``|H|``, ``|W2|``, ``|X|``. ``H`` and the softmax come from MXNet's own forward pass,
    which both runs share."""
    x, y = batch_data(seed=seed)
    hidden = net[0](x).asnumpy().astype(np.float64)
    prob = mx.nd.softmax(net(x)).asnumpy().astype(np.float64)
    onehot = np.eye(3)[y.asnumpy().astype(int)]
    w2 = np.abs(net[1].weight.data().asnumpy().astype(np.float64))
    a_logits = onehot + prob
    a_hidden = a_logits.dot(w2) * (hidden > 0)
    return {'0.weight': a_hidden.T.dot(np.abs(x.asnumpy().astype(np.float64))),
            '0.bias': a_hidden.sum(axis=0),
            '1.weight': a_logits.T.dot(np.abs(hidden)), '1.bias': a_logits.sum(axis=0)}


def grads_np(net):
    return {k: p.grad().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def copy_state(src, src_trainer, dst, dst_trainer):
    for k, p in dst._collect_params_with_prefix().items():
        p.set_data(src._collect_params_with_prefix()[k].data())
    for i, state in src_trainer._updaters[0].states.items():
        dst_trainer._updaters[0].states[i][:] = state


@pytest.mark.parametrize('scale', [1024.0, 3.0])
def test_static_scale_gives_the_unscaled_update(scale):
    """Three networks, three steps: ``net`` with ``LossScaler(scale)``, ``manual`` with the
    loss multiplied by ``scale`` by hand and ``trainer.step(4 * scale)``, ``ref`` unscaled.
    Every step starts all three from ``ref``'s weights and momenta.

    * ``net`` and ``manual`` run the same operations on the same numbers: bit-identical on
      any CPU and with any kernels.
    * Against ``ref``: a power-of-two scale commutes with every float32 rounding (no overflow
      or underflow here), so the scaled gradient is exactly ``scale`` times the unscaled one
      and the update is bit-identical. Any other scale (3 is not exact in binary) changes the
      roundings: the gradients agree to the rounding bound of the backward pass
      (:func:`gradient_magnitudes`) and the weights to that bound carried through the update.
    """
    ref, net, manual = dense_net(), dense_net(), dense_net()
    t_ref, t, t_manual = new_trainer(ref), new_trainer(net), new_trainer(manual)
    scaler = LossScaler(scale)
    exact = math.frexp(scale)[0] == 0.5                       # a power of two
    opt = t_ref.optimizer
    lr, mu, wd = opt.learning_rate, opt.momentum, opt.wd
    for step in range(3):
        if step:
            copy_state(ref, t_ref, net, t)
            copy_state(ref, t_ref, manual, t_manual)
        w = params_np(ref)
        mom = {k: t_ref._updaters[0].states[t_ref._params.index(p)].asnumpy().astype(
            np.float64) if step else 0.0 for k, p in ref._collect_params_with_prefix().items()}
        magnitude = gradient_magnitudes(ref, seed=step)
        backward(ref, seed=step)
        backward(net, scaler, seed=step)
        backward(manual, seed=step, manual_scale=scale)
        g_ref, g_net = grads_np(ref), grads_np(net)
        for k, g in grads_np(manual).items():
            np.testing.assert_array_equal(g_net[k], g, err_msg=k)
        t_ref.step(4)
        assert scaler.step(t, 4) is True
        t_manual.step(4 * scale)
        assert t.optimizer.rescale_grad == 1.0 / (4 * scale)
        w_ref, w_net = params_np(ref), params_np(net)
        for k, v in params_np(manual).items():
            np.testing.assert_array_equal(w_net[k], v, err_msg=k)
        for i, state in t_manual._updaters[0].states.items():
            np.testing.assert_array_equal(t._updaters[0].states[i].asnumpy(), state.asnumpy())
        for k in g_ref:
            g = g_ref[k].astype(np.float64)
            if exact:
                np.testing.assert_array_equal(g_net[k], g * scale, err_msg=k)
                np.testing.assert_array_equal(w_net[k], w_ref[k], err_msg=k)
                continue
            # gradients: each run is within 2 roundings at the logits (g * softmax,
            # subtraction), 3 (dH, 3 logits) and 4 (batch) of the absolute terms of the
            # exact backward of the shared forward pass: at most 2 + 3 + 4 = 9 u per run
            bound = 2 * 9 * U32 * scale * magnitude[k] * (1 + 1e-6)
            np.testing.assert_array_less(np.abs(g_net[k] - scale * g), bound + 1e-45,
                                         err_msg='gradient ' + k)
            # the update w + mu^2 m - (1 + mu) lr (rescale g + wd w): the rescaled gradients
            # differ by |g_net - 3 g| / 12 plus the roundings of float32(1/12) and of the
            # product; each run then rounds at most 4 times on terms no larger than these
            unscaled = (np.abs(g_net[k] - scale * g) + 2 * U32 * np.abs(g_net[k])) / (4 * scale)
            terms = np.abs(w[k]) + mu * mu * np.abs(mom[k]) + \
                (1 + mu) * lr * (np.abs(g) / 4 + wd * np.abs(w[k]))
            bound = ((1 + mu) * lr * unscaled + 2 * 4 * U32 * terms) * (1 + 1e-6)
            np.testing.assert_array_less(np.abs(w_net[k].astype(np.float64) - w_ref[k]),
                                         bound + 1e-45, err_msg='weight ' + k)
    assert (scaler.num_steps, scaler.num_skipped, scaler.scale) == (3, 0, scale)


def test_dynamic_overflow_skips_step_and_halves_scale():
    net = dense_net()
    trainer = new_trainer(net)
    scaler = LossScaler('dynamic', init_scale=2.0 ** 10, growth_interval=100)
    backward(net, scaler)
    assert scaler.step(trainer, 4)                     # creates the optimizer states
    before = params_np(net)
    states = {i: s.asnumpy().copy() for i, s in trainer._updaters[0].states.items()}
    num_update = trainer.optimizer.num_update
    backward(net, scaler, seed=5)
    net[0].bias.grad()[2] = np.inf
    assert scaler.step(trainer, 4) is False
    for k, v in params_np(net).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    for i, s in trainer._updaters[0].states.items():
        np.testing.assert_array_equal(s.asnumpy(), states[i])
    assert trainer.optimizer.num_update == num_update
    assert scaler.scale == 2.0 ** 9 and scaler.num_skipped == 1 and scaler.num_steps == 1
    backward(net, scaler, seed=6)
    net[1].weight.grad()[0, 0] = np.nan
    assert scaler.step(trainer, 4) is False
    assert scaler.scale == 2.0 ** 8 and scaler.num_skipped == 2 and scaler.growth_tracker == 0
    backward(net, scaler, seed=7)
    assert scaler.step(trainer, 4) is True
    assert any(np.any(v != before[k]) for k, v in params_np(net).items())


def test_dynamic_growth_after_interval_of_clean_steps():
    net = dense_net()
    trainer = new_trainer(net)
    scaler = LossScaler('dynamic', init_scale=8.0, growth_factor=4.0, backoff_factor=0.25,
                        growth_interval=3, max_scale=512.0)
    seen = []
    for step in range(12):
        backward(net, scaler, seed=step)
        if step == 4:
            net[0].weight.grad()[0, 0] = -np.inf
        scaler.step(trainer, 4)
        seen.append(scaler.scale)
    # clean x3 -> 32; overflow at step 4 -> 8 (tracker reset at 1 clean step); 3 clean -> 32,
    # 3 more -> 128
    assert seen == [8, 8, 32, 32, 8, 8, 8, 32, 32, 32, 128, 128]
    assert (scaler.num_steps, scaler.num_skipped) == (11, 1)


def test_static_scale_overflow_is_skipped_and_counted():
    net = dense_net()
    trainer = new_trainer(net)
    scaler = LossScaler(128.0)
    backward(net, scaler)
    before = params_np(net)
    net[1].bias.grad()[0] = np.inf
    assert scaler.step(trainer, 4) is False
    assert scaler.scale == 128.0 and scaler.num_skipped == 1 and scaler.num_steps == 0
    for k, v in params_np(net).items():
        np.testing.assert_array_equal(v, before[k])


def test_fast_path_is_a_plain_trainer_step(monkeypatch):
    ref, net = dense_net(), dense_net()
    t_ref, t = new_trainer(ref), new_trainer(net)
    scaler = LossScaler(None)
    assert scaler.scale == 1.0 and not scaler.check_overflow

    def forbidden(*args, **kwargs):
        raise AssertionError('the fast path must not split the step')
    monkeypatch.setattr(t, 'update', forbidden)
    monkeypatch.setattr(t, 'allreduce_grads', forbidden)
    monkeypatch.setattr(precision, 'all_finite', forbidden)
    backward(ref)
    t_ref.step(4)
    backward(net, scaler)
    assert scaler.step(t, 4) is True
    for k, v in params_np(ref).items():
        np.testing.assert_array_equal(params_np(net)[k], v)
    # no check means no skip: an inf goes through
    backward(net, scaler)
    net[0].bias.grad()[0] = np.inf
    assert scaler.step(t, 4) is True and scaler.num_skipped == 0
    assert not np.isfinite(net[0].bias.data().asnumpy()[0])


def test_trainer_updating_on_kvstore_is_rejected():
    ctx = [mx.cpu(0), mx.cpu(1)]
    net = nn.Dense(2, in_units=3)
    net.initialize(ctx=ctx)
    for update_on_kvstore in (True, None):   # MXNet's default on several devices: True
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1},
                                kvstore='device', update_on_kvstore=update_on_kvstore)
        with autograd.record():
            losses = [net(mx.nd.ones((2, 3), ctx=c)).sum() for c in ctx]
        autograd.backward(losses)
        with pytest.raises(RuntimeError, match='update_on_kvstore=False'):
            LossScaler('dynamic').step(trainer, 4)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1},
                            kvstore='device', update_on_kvstore=False)
    with autograd.record():
        losses = [net(mx.nd.ones((2, 3), ctx=c)).sum() for c in ctx]
    autograd.backward(losses)
    net.weight.grad(ctx[1])[0, 0] = np.inf     # overflow on one device only
    scaler = LossScaler('dynamic')
    assert scaler.step(trainer, 4) is False    # all-reduced: seen on every device


def test_all_finite_mixed_dtypes():
    a = gluon.Parameter('a', shape=(3,), dtype='float16')
    b = gluon.Parameter('b', shape=(2,), dtype='float32')
    c = gluon.Parameter('c', shape=(2,), grad_req='null')
    for p in (a, b, c):
        p.initialize()
    assert all_finite([a, b, c])
    a.grad()[1] = 70000.0        # overflows float16 to inf
    assert not all_finite([a, b, c])
    a.grad()[1] = 0
    b.grad()[0] = np.nan
    assert not all_finite([a, b])
    assert all_finite([a])


def test_scale_loss_values_and_dtype():
    s = LossScaler(2.0 ** 16)
    loss16 = mx.nd.array([3.0, 4.0], dtype='float16')
    scaled = s.scale_loss(loss16)
    assert scaled.dtype == np.float32                       # 4 * 2**16 overflows float16
    assert scaled.asnumpy().tolist() == [3.0 * 2 ** 16, 4.0 * 2 ** 16]
    pair = s.scale_loss([mx.nd.array([1.0]), mx.nd.array([2.0])])
    assert [p.asscalar() for p in pair] == [2.0 ** 16, 2.0 ** 17]
    same = mx.nd.array([5.0])
    assert LossScaler(None).scale_loss(same) is same


def test_state_dict_round_trip_and_resume_is_exact():
    net = dense_net()
    trainer = new_trainer(net)
    a = LossScaler('dynamic', init_scale=64.0, growth_interval=4)
    for step in range(6):
        backward(net, a, seed=step)
        if step == 1:
            net[0].weight.grad()[0, 0] = np.inf
        a.step(trainer, 4)
    state = json.loads(json.dumps(a.state_dict()))          # through JSON as in state.json
    b = LossScaler('dynamic', init_scale=64.0, growth_interval=4)
    b.load_state_dict(state)
    assert (b.scale, b.growth_tracker, b.num_steps, b.num_skipped) == \
        (a.scale, a.growth_tracker, a.num_steps, a.num_skipped) == (64.0, 0, 5, 1)
    net_b = dense_net(seed=1)                                # any net: only finiteness
    trainer_b = new_trainer(net_b)                           # of the gradients matters
    for step in range(6, 13):                                # continue both identically
        for scaler, n, t in ((a, net, trainer), (b, net_b, trainer_b)):
            backward(n, scaler, seed=step)
            if step == 11:
                n[1].bias.grad()[1] = -np.inf
            scaler.step(t, 4)
    assert a.state_dict() == b.state_dict()
    assert (b.num_steps, b.num_skipped, b.growth_tracker) == (11, 2, 1)
    assert a.scale == 64.0     # grew to 128 after 4 clean steps, halved at step 11
    with pytest.raises(ValueError, match='mode'):
        LossScaler(4.0).load_state_dict(state)


def test_constructor_validation():
    with pytest.raises(ValueError):
        LossScaler('dynamc')
    with pytest.raises(ValueError):
        LossScaler(0.0)
    with pytest.raises(ValueError):
        LossScaler('dynamic', check_overflow=False)
    with pytest.raises(ValueError):
        LossScaler('dynamic', backoff_factor=1.5)
    with pytest.raises(ValueError):
        LossScaler(None, check_overflow=True)
    assert LossScaler(4.0, check_overflow=False).check_overflow is False


# -- host synchronisation of the overflow check (4 CPU contexts stand for 4 GPUs) -------------
DEVICES = [mx.cpu(i) for i in range(4)]


def multi_device_step(net, scaler, seed, overflow=None):
    """Forward and backward of one batch split over ``DEVICES``; ``overflow = (device index,
    value)`` then writes inf/nan into that device's gradient only (before the all-reduce)."""
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.randint(0, 3, 8).astype(np.float32)
    with autograd.record():
        losses = [scaler.scale_loss(gluon.loss.SoftmaxCrossEntropyLoss()(
            net(mx.nd.array(x[2 * k:2 * k + 2], ctx=c)), mx.nd.array(y[2 * k:2 * k + 2], ctx=c)))
            for k, c in enumerate(DEVICES)]
    autograd.backward(losses)
    if overflow is not None:
        k, value = overflow
        net[0].weight.grad(DEVICES[k])[0, 0] = value


def multi_device_net():
    mx.random.seed(0)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Dense(6, in_units=5, activation='relu'), nn.Dense(3, in_units=6))
    net.initialize(mx.init.Xavier(), ctx=DEVICES)
    trainer = gluon.Trainer(net.collect_params(), 'nag',
                            {'learning_rate': 0.1, 'momentum': 0.9}, kvstore='device',
                            update_on_kvstore=False)
    return net, trainer


class HostReads(object):
    """Counts the device-to-host reads (``NDArray.asnumpy``, which ``asscalar`` and
    ``__bool__`` go through) while ``counting`` is set."""

    def __init__(self, monkeypatch):
        self.count, self.counting = 0, False
        original = mx.nd.NDArray.asnumpy

        def asnumpy(array):
            if self.counting:
                self.count += 1
            return original(array)
        monkeypatch.setattr(mx.nd.NDArray, 'asnumpy', asnumpy)


@pytest.mark.parametrize('overflow', [None, (3, np.inf)], ids=['clean', 'overflow'])
def test_overflow_check_reads_the_host_once_per_step_on_4_devices(monkeypatch, overflow):
    net, trainer = multi_device_net()
    scaler = LossScaler('dynamic', init_scale=2.0 ** 10)
    multi_device_step(net, scaler, seed=0)
    assert scaler.step(trainer, 8)                    # kvstore and optimizer states exist
    reads = HostReads(monkeypatch)
    for step in range(1, 4):
        multi_device_step(net, scaler, seed=step, overflow=overflow)
        reads.counting = True
        applied = scaler.step(trainer, 8)
        reads.counting = False
        assert applied is (overflow is None)
        assert reads.count == step, 'host reads after %d steps: %d' % (step, reads.count)
    reads.counting = True
    assert all_finite(net.collect_params()) is (overflow is None)
    assert reads.count == 4                           # all_finite alone: one read too


def test_dynamic_decisions_on_4_devices_match_hand_computed_ones():
    """init 2**10, growth x2 every 2 clean steps (at most 2**12), backoff x0.5 (at least
    2**9); overflows on one device at a time. Worked out by hand:

    step  0 1    2    3    4   5   6    7    8    9    10   11   12   13
    event . .    inf3 nan1 inf0 .  .    .    .    .    .    .    .    -inf2
    scale 1024 2048 1024 512 512 512 1024 1024 2048 2048 4096 4096 4096 2048
    (step 4: 512 * 0.5 is below min_scale; step 12: 4096 * 2 is above max_scale)
    """
    overflows = {2: (3, np.inf), 3: (1, np.nan), 4: (0, np.inf), 13: (2, -np.inf)}
    want_applied = [True, True, False, False, False] + [True] * 8 + [False]
    want_scale = [1024, 2048, 1024, 512, 512, 512, 1024, 1024, 2048, 2048, 4096, 4096, 4096,
                  2048]
    net, trainer = multi_device_net()
    scaler = LossScaler('dynamic', init_scale=2.0 ** 10, growth_interval=2,
                        min_scale=2.0 ** 9, max_scale=2.0 ** 12)
    applied, scales = [], []
    for step in range(14):
        before = [p.data(DEVICES[0]).asnumpy().copy() for p in net.collect_params().values()]
        multi_device_step(net, scaler, seed=step, overflow=overflows.get(step))
        applied.append(scaler.step(trainer, 8))
        scales.append(scaler.scale)
        params = list(net.collect_params().values())
        moved = any(np.any(p.data(DEVICES[0]).asnumpy() != b) for p, b in zip(params, before))
        assert moved is applied[-1], step                  # a skipped step changes nothing
        for p in params:                                   # every device holds the same
            for c in DEVICES[1:]:
                np.testing.assert_array_equal(p.data(c).asnumpy(), p.data(DEVICES[0]).asnumpy())
    assert applied == want_applied
    assert scales == want_scale
    assert (scaler.num_steps, scaler.num_skipped) == (10, 4)
