"""No bias decay by role (section 3.1) and the NAG update of MXNet 1.9.1 (section 2.1)."""
import re

import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

from gluon_tricks.optim import (apply_no_bias_decay, make_trainer, no_weight_decay_params,
                                optimizer_params)


class GammaScale(gluon.HybridBlock):
    """A custom layer whose *weight* is called ``gamma_weight``: unknown kind, keeps decay."""

    def __init__(self, channels, **kwargs):
        super(GammaScale, self).__init__(**kwargs)
        with self.name_scope():
            self.gamma_weight = self.params.get('gamma_weight', shape=(1, channels, 1, 1),
                                                init=mx.init.One())

    def hybrid_forward(self, F, x, gamma_weight):
        return F.broadcast_mul(x, gamma_weight)


class SyncBatchNorm(gluon.HybridBlock):
    """Stand-in for a third-party SyncBatchNorm that does not derive from MXNet's classes
    (recognised by class name in the MRO); its gamma is registered under the name 'weight'."""

    def __init__(self, channels, **kwargs):
        super(SyncBatchNorm, self).__init__(**kwargs)
        with self.name_scope():
            self.gamma = self.params.get('weight', shape=(channels,), init=mx.init.One())
            self.beta = self.params.get('bias_is_beta', shape=(channels,), init=mx.init.Zero())

    def hybrid_forward(self, F, x, gamma, beta):
        return F.broadcast_add(F.broadcast_mul(x, gamma.reshape((1, -1, 1, 1))),
                               beta.reshape((1, -1, 1, 1)))


class MyBN(nn.BatchNorm):
    """A subclass of MXNet's BatchNorm."""


def confusing_net():
    net = nn.HybridSequential(prefix='beta_')
    with net.name_scope():
        net.add(nn.Conv2D(4, 3, padding=1, in_channels=3, use_bias=True, prefix='beta_conv_'))
        net.add(nn.BatchNorm(in_channels=4, prefix='weight_'))
        net.add(GammaScale(4, prefix='gamma_'))
        net.add(nn.Conv2D(4, 1, in_channels=4, use_bias=False, prefix='bias_conv_'))
        net.add(MyBN(in_channels=4, scale=False, prefix='conv_'))     # gamma frozen
        net.add(SyncBatchNorm(4, prefix='dense_'))
        net.add(mx.gluon.contrib.nn.SyncBatchNorm(in_channels=4, num_devices=1,
                                                prefix='plain_'))
        net.add(nn.Conv2DTranspose(4, 2, strides=2, in_channels=4, prefix='gamma_deconv_'))
        net.add(nn.PReLU(prefix='bias_prelu_'))
        net.add(nn.GlobalAvgPool2D())
        net.add(nn.Dense(6, in_units=4, prefix='gamma_fc_'))
        net.add(nn.LayerNorm(in_channels=6, prefix='layer_'))
        net.add(nn.Dense(6, in_units=6, use_bias=True, prefix='beta_fc_'))
    net.initialize(mx.init.Xavier())
    return net


def test_selection_is_by_role_not_by_name():
    net = confusing_net()
    sel = no_weight_decay_params(net)
    assert sel.no_decay == ['0.bias', '1.gamma', '1.beta', '4.beta', '5.gamma', '5.beta',
                            '6.gamma', '6.beta', '7.bias', '10.bias', '11.gamma', '11.beta',
                            '12.bias']
    assert sel.decay == ['0.weight', '3.weight', '7.weight', '10.weight', '12.weight']
    assert sel.unknown == ['2.gamma_weight', '8.alpha']
    assert sel.frozen == ['1.running_mean', '1.running_var', '4.gamma', '4.running_mean',
                          '4.running_var', '6.running_mean', '6.running_var']
    assert sel.roles['2.gamma_weight'] == 'GammaScale.gamma_weight'
    assert sel.roles['5.beta'] == 'SyncBatchNorm.beta'
    assert sel.roles['4.beta'] == 'MyBN.beta'
    assert sel.roles['7.bias'] == 'Conv2DTranspose.bias'
    assert '2.gamma_weight (GammaScale.gamma_weight)' in sel.summary()
    # every trainable or frozen parameter is classified exactly once
    everything = sel.no_decay + sel.decay + sel.unknown + sel.frozen
    assert sorted(everything) == sorted(net._collect_params_with_prefix())

    # GluonCV's name regex depends on the implicit prefixes: under the outer prefix 'beta_'
    # it matches every parameter, conv and dense weights included
    by_regex = net.collect_params('.*beta|.*gamma|.*bias')
    assert sorted(by_regex.keys()) == sorted(net.collect_params().keys())
    # and without that prefix it still takes the custom weight and misses the foreign BN
    regex = re.compile('.*beta|.*gamma|.*bias')
    assert regex.match(net[2].gamma_weight.name[len('beta_'):])   # 'gamma_gamma_weight'
    assert not regex.match(net[5].gamma.name[len('beta_'):])      # 'dense_weight'
    assert regex.match(net[0].weight.name[len('beta_'):])         # 'beta_conv_weight'


def test_apply_sets_wd_mult_exactly_on_the_selection():
    net = confusing_net()
    sel = apply_no_bias_decay(net)
    params = net._collect_params_with_prefix()
    zero = sorted(n for n, p in params.items() if p.wd_mult == 0)
    assert zero == sorted(sel.no_decay)
    for name in sel.decay + sel.unknown:
        assert params[name].wd_mult == 1.0


def test_shared_parameters_are_listed_once():
    net = nn.HybridSequential()
    with net.name_scope():
        first = nn.Dense(3, in_units=3)
        net.add(first, nn.Dense(3, in_units=3, params=first.collect_params()))
    net.initialize()
    sel = no_weight_decay_params(net)
    assert sel.decay == ['0.weight'] and sel.no_decay == ['0.bias']


def small_net():
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2D(3, 3, padding=1, in_channels=2, use_bias=True),
                nn.BatchNorm(in_channels=3),
                nn.Activation('relu'),
                nn.Conv2D(3, 1, in_channels=3, use_bias=False),
                nn.GlobalAvgPool2D(),
                nn.Dense(4, in_units=3))
    net.initialize(mx.init.Xavier(magnitude=3))
    return net


def nag_kernel(w, m, g, lr, mu, wd):
    """MXNet 1.9.1 ``nag_mom_update`` in place (NAGMomKernel, out aliases weight)."""
    w_new = w + mu * mu * m - (1 + mu) * lr * (g + wd * w)
    m_new = mu * m - lr * (g + wd * w_new)
    return w_new, m_new


def nag_docstring(w, m, g, lr, mu, wd):
    """The formula in mxnet.optimizer.NAG's docstring (lr outside the momentum)."""
    m_new = mu * m + g + wd * w
    return w - lr * (g + wd * w + mu * m_new), m_new


def test_nag_update_matches_hand_formula_and_skips_decay_on_bias():
    mx.random.seed(3)
    np.random.seed(3)
    net = small_net()
    sel = apply_no_bias_decay(net)
    params = net._collect_params_with_prefix()
    wd, mu, batch = 0.05, 0.9, 4
    lrs = [0.1, 0.02, 0.3]    # lr changes between steps: pins down where lr enters
    trainer = gluon.Trainer(net.collect_params(), 'nag',
                            optimizer_params(base_lr=lrs[0], momentum=mu, wd=wd),
                            update_on_kvstore=False)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    x = mx.nd.random.normal(shape=(batch, 2, 5, 5))
    y = mx.nd.array([0, 1, 2, 3])
    names = ['0.weight', '0.bias', '1.gamma', '1.beta', '3.weight', '5.weight', '5.bias']
    ref = {n: (params[n].data().asnumpy().astype(np.float64), 0.0) for n in names}
    doc = dict(ref)
    for lr in lrs:
        trainer.set_learning_rate(lr)
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        grads = {n: params[n].grad().asnumpy().astype(np.float64) / batch for n in names}
        trainer.step(batch)
        for n in names:
            wd_n = 0.0 if n in sel.no_decay else wd
            ref[n] = nag_kernel(ref[n][0], ref[n][1], grads[n], lr, mu, wd_n)
            doc[n] = nag_docstring(doc[n][0], doc[n][1], grads[n], lr, mu, wd_n)
            got = params[n].data().asnumpy()
            np.testing.assert_allclose(got, ref[n][0], rtol=1e-5, atol=1e-6, err_msg=n)
            mom = trainer._updaters[0].states[trainer._param2idx[params[n].name]]
            np.testing.assert_allclose(mom.asnumpy(), ref[n][1], rtol=1e-4, atol=1e-6,
                                       err_msg=n)
    # the docstring formula is not what runs once lr changes
    assert not np.allclose(params['0.weight'].data().asnumpy(), doc['0.weight'][0],
                           rtol=1e-4, atol=1e-5)


def test_weight_decay_is_visible_in_one_step():
    """One NAG step from zero momentum: w -= (1 + mu) * lr * (g + wd * w) on weights only."""
    net = small_net()
    apply_no_bias_decay(net)
    params = net._collect_params_with_prefix()
    for p in params.values():   # non-zero biases/betas so that a decay would show
        if p.grad_req != 'null':
            p.set_data(p.data() + 0.5)
    before = {n: p.data().asnumpy().astype(np.float64) for n, p in params.items()}
    lr, mu, wd = 0.1, 0.9, 0.2
    trainer = make_trainer(net, optimizer_params(base_lr=lr, momentum=mu, wd=wd))
    x = mx.nd.random.normal(shape=(2, 2, 5, 5))
    with autograd.record():
        out = net(x).sum()
    out.backward()
    grads = {n: p.grad().asnumpy().astype(np.float64) / 2 for n, p in params.items()
             if p.grad_req != 'null'}
    trainer.step(2)
    for n, g in grads.items():
        decayed = n in ('0.weight', '3.weight', '5.weight')
        expect = before[n] - (1 + mu) * lr * (g + (wd * before[n] if decayed else 0))
        other = before[n] - (1 + mu) * lr * (g + (0 if decayed else wd * before[n]))
        got = params[n].data().asnumpy()
        np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6, err_msg=n)
        assert not np.allclose(got, other, rtol=1e-5, atol=1e-6), n


class FakeScheduler(mx.lr_scheduler.LRScheduler):
    def __call__(self, num_update):
        return self.base_lr * 0.5 ** num_update


def test_optimizer_params_defaults_and_scheduler_guard():
    p = optimizer_params(base_lr=0.4)
    assert p == {'learning_rate': 0.4, 'momentum': 0.9, 'wd': 1e-4, 'multi_precision': False}
    sched = FakeScheduler(base_lr=0.2)
    p = optimizer_params(sched, multi_precision=True)
    assert p['learning_rate'] == 0.2 and p['lr_scheduler'] is sched and p['multi_precision']
    with pytest.raises(ValueError, match='overwrite'):
        optimizer_params(sched, base_lr=0.1)
    with pytest.raises(ValueError):
        optimizer_params()
    net = nn.Dense(2, in_units=2)
    net.initialize()
    trainer = make_trainer(net, optimizer_params(sched))
    opt = trainer.optimizer
    assert isinstance(opt, mx.optimizer.NAG)
    assert (opt.momentum, opt.wd, opt.lr_scheduler.base_lr) == (0.9, 1e-4, 0.2)
    assert trainer._kvstore_params['update_on_kvstore'] is False
    assert re.search('nag', type(opt).__name__, re.I)


class Hidden(gluon.HybridBlock):
    """Registers a parameter without assigning it to an attribute (legacy Gluon style)."""

    def __init__(self, **kwargs):
        super(Hidden, self).__init__(**kwargs)
        with self.name_scope():
            self.params.get('bias', shape=(2,), init=mx.init.Zero())
            self.dense = nn.Dense(2, in_units=2)

    def hybrid_forward(self, F, x):
        return self.dense(x)


def test_parameters_without_an_owner_are_reported():
    net = Hidden(prefix='h_')
    net.initialize()
    sel = no_weight_decay_params(net)
    assert sel.unknown == ['h_bias'] and sel.roles['h_bias'] == '<unowned>'
    assert sel.decay == ['dense.weight'] and sel.no_decay == ['dense.bias']
