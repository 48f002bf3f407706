"""Label smoothing, mixup and the losses (gluon_tricks.loss), paper secs. 5.2-5.4, against hand-computed values and an independent numpy implementation."""
import math

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.loss import (DistillationLoss, SoftTargetCrossEntropy, mixup,
                               sample_mixup_lambda, smooth_labels, smoothing_values,
                               theoretical_gap)


# ---------------------------------------------------------------- label smoothing
def test_smooth_paper_style_k4():
    # eq. (4), K = 4, eps = 0.1: true class 0.9, others 0.1 / 3 = 0.0333...
    y = smooth_labels(mx.nd.array([2, 0]), 4, eps=0.1, style='paper').asnumpy()
    t = 0.1 / 3
    expected = [[t, t, 0.9, t],
                [0.9, t, t, t]]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    np.testing.assert_allclose(y.sum(axis=1), [1, 1], rtol=1e-6)


def test_smooth_gluoncv_style_k4():
    # GluonCV, K = 4, eps = 0.1: true 1 - 0.1 + 0.1/4 = 0.925, others 0.1/4 = 0.025
    y = smooth_labels(mx.nd.array([1, 3, 3]), 4, eps=0.1, style='gluoncv').asnumpy()
    expected = [[0.025, 0.925, 0.025, 0.025],
                [0.025, 0.025, 0.025, 0.925],
                [0.025, 0.025, 0.025, 0.925]]
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize('style', ['paper', 'gluoncv'])
def test_smooth_eps0_is_one_hot(style):
    y = smooth_labels(mx.nd.array([3, 1]), 4, eps=0.0, style=style).asnumpy()
    np.testing.assert_array_equal(y, [[0, 0, 0, 1], [0, 1, 0, 0]])


def test_smooth_int_labels_and_dtype():
    y = smooth_labels(mx.nd.array([0, 2], dtype='int32'), 3, eps=0.3, dtype='float16')
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.asnumpy(), [[0.7, 0.15, 0.15], [0.15, 0.15, 0.7]],
                               rtol=1e-3)


@pytest.mark.parametrize('label, word', [([0, 4], '4'), ([-1, 0], '-1'), ([1.5], '1.5')])
def test_smooth_rejects_bad_labels(label, word):
    with pytest.raises(ValueError) as err:
        smooth_labels(mx.nd.array(label), 4)
    assert word in str(err.value) and '[0, 4)' in str(err.value)


@pytest.mark.parametrize('kwargs, word', [
    (dict(style='inception'), "'inception'"),
    (dict(eps=1.0), '1.0'),
    (dict(eps=-0.1), '-0.1'),
])
def test_smooth_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError) as err:
        smooth_labels(mx.nd.array([0]), 4, **kwargs)
    assert word in str(err.value)
    with pytest.raises(ValueError, match='classes'):
        smooth_labels(mx.nd.array([0]), 1)


def test_theoretical_gap_paper():
    # eq. (5), K = 1000, eps = 0.1: (K-1)(1-eps)/eps = 999 * 0.9 / 0.1 = 8991;
    # ln 8991 = ln 9000 + ln 0.999 = (ln 9 + 3 ln 10) + ln 0.999
    #         = (2.1972246 + 6.9077553) - 0.0010005 = 9.1039794   ("around 9.1")
    gap = theoretical_gap(0.1, 1000)
    assert abs(gap - 9.1039794) < 1e-3
    assert gap == pytest.approx(math.log(8991.0), rel=1e-12)
    assert round(gap, 1) == 9.1


def test_theoretical_gap_gluoncv():
    # on/off = (0.9 + 0.0001) / 0.0001 = 9001; ln 9001 = ln 9000 + 0.000111 = 9.1050910
    gap = theoretical_gap(0.1, 1000, style='gluoncv')
    assert abs(gap - 9.1050910) < 1e-3
    assert gap == pytest.approx(math.log(9001.0), rel=1e-12)


@pytest.mark.parametrize('style', ['paper', 'gluoncv'])
def test_gap_is_optimal_logit_gap(style):
    # the logits z* = log(q) minimise CE(q, softmax(z)); their gap is the theoretical one
    K, eps = 10, 0.2
    q = smooth_labels(mx.nd.array([3]), K, eps=eps, style=style).asnumpy()[0]
    z = np.log(q)
    assert z[3] - np.delete(z, 3).mean() == pytest.approx(theoretical_gap(eps, K, style))
    on, off = smoothing_values(K, eps, style)
    assert math.log(on / off) == pytest.approx(theoretical_gap(eps, K, style))


def test_gap_edges_and_errors():
    assert theoretical_gap(0.0, 1000) == math.inf
    assert theoretical_gap(999 / 1000, 1000) == pytest.approx(0.0, abs=1e-9)  # eps=(K-1)/K
    with pytest.raises(ValueError, match="'foo'"):
        theoretical_gap(0.1, 1000, style='foo')
    with pytest.raises(ValueError, match='1.5'):
        theoretical_gap(1.5, 1000)


# ---------------------------------------------------------------- losses
def np_log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def np_softmax(x):
    return np.exp(np_log_softmax(x))


def np_ce(target, logits):
    return -(np.asarray(target, dtype=np.float64) * np_log_softmax(logits)).sum(axis=-1)


Z = np.array([[2.0, -1.0, 0.5], [0.1, 0.3, -2.0]])          # student logits
R = np.array([[1.5, 0.2, -0.7], [-1.0, 2.5, 0.4]])          # teacher logits
LABEL = [0, 1]


@pytest.mark.parametrize('hybridize', [False, True])
def test_soft_target_cross_entropy(hybridize):
    p = smooth_labels(mx.nd.array(LABEL), 3, eps=0.1)
    loss = SoftTargetCrossEntropy()
    if hybridize:
        loss.hybridize()
    out = loss(mx.nd.array(Z), p).asnumpy()
    assert out.shape == (2,)
    np.testing.assert_allclose(out, np_ce(p.asnumpy(), Z), rtol=1e-5)
    ref = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)(mx.nd.array(Z), p)
    np.testing.assert_allclose(out, ref.asnumpy(), rtol=1e-6)
    # one-hot targets: -log softmax(z)_y; row 0: log(e^2 + e^-1 + e^0.5) - 2
    one_hot = smooth_labels(mx.nd.array(LABEL), 3, eps=0.0)
    row0 = math.log(math.exp(2) + math.exp(-1) + math.exp(0.5)) - 2
    assert loss(mx.nd.array(Z), one_hot).asnumpy()[0] == pytest.approx(row0, abs=1e-5)


@pytest.mark.parametrize('temperature', [2.0, 20.0])
@pytest.mark.parametrize('style', ['paper', 'gluoncv'])
@pytest.mark.parametrize('hybridize', [False, True])
def test_distillation_eq6(temperature, style, hybridize):
    T = temperature
    p = smooth_labels(mx.nd.array(LABEL), 3, eps=0.1, style=style)
    loss = DistillationLoss(temperature=T)
    if hybridize:
        loss.hybridize()
    out = loss(mx.nd.array(Z), p, mx.nd.array(R)).asnumpy()
    # eq. (6): CE(p, softmax(z)) + T^2 CE(softmax(r/T), softmax(z/T))
    expected = np_ce(p.asnumpy(), Z) + T ** 2 * np_ce(np_softmax(R / T), Z / T)
    assert out.shape == (2,)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize('temperature', [2.0, 20.0])
@pytest.mark.parametrize('hard_weight', [0.0, 0.5, 1.0])
def test_distillation_gluoncv_blend(temperature, hard_weight):
    T, w = temperature, hard_weight
    p = smooth_labels(mx.nd.array(LABEL), 3, eps=0.1, style='gluoncv')
    out = DistillationLoss(T, hard_weight=w)(mx.nd.array(Z), p, mx.nd.array(R)).asnumpy()
    expected = (1 - w) * T ** 2 * np_ce(np_softmax(R / T), Z / T) + w * np_ce(p.asnumpy(), Z)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    # same numbers as GluonCV's own loss, which takes softmax(r / T) precomputed
    from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
    ref = DistillationSoftmaxCrossEntropyLoss(temperature=T, hard_weight=w, sparse_label=False)
    teacher_prob = mx.nd.softmax(mx.nd.array(R) / T)
    np.testing.assert_allclose(out, ref(mx.nd.array(Z), p, teacher_prob).asnumpy(), rtol=1e-5)


def test_distillation_no_gradient_to_teacher():
    z, r = mx.nd.array(Z), mx.nd.array(R)
    z.attach_grad()
    r.attach_grad()
    p = smooth_labels(mx.nd.array(LABEL), 3)
    with mx.autograd.record():
        loss = DistillationLoss(20.0)(z, p, r)
    loss.backward()
    assert np.abs(r.grad.asnumpy()).max() == 0
    assert np.abs(z.grad.asnumpy()).max() > 0
    # d/dz of eq. (6): (softmax(z) - p) + T (softmax(z/T) - softmax(r/T))
    T = 20.0
    grad = (np_softmax(Z) - p.asnumpy()) + T * (np_softmax(Z / T) - np_softmax(R / T))
    # float32: softmax(z/T) - softmax(r/T) loses digits before the factor T = 20
    np.testing.assert_allclose(z.grad.asnumpy(), grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('kwargs, word', [
    (dict(temperature=0), 'temperature'),
    (dict(temperature=-2.0), '-2.0'),
    (dict(hard_weight=1.5), '1.5'),
])
def test_distillation_bad_arguments(kwargs, word):
    with pytest.raises(ValueError) as err:
        DistillationLoss(**kwargs)
    assert word in str(err.value)


# ---------------------------------------------------------------- mixup
X = mx.nd.array([[1, 2], [3, 4], [5, 6]])
Y = smooth_labels(mx.nd.array([0, 1, 2]), 3, eps=0.0)


def test_mixup_reverse():
    x, y = mixup(X, Y, 0.7)
    # pairs 0<->2, 1<->1: 0.7 [1,2] + 0.3 [5,6] = [2.2, 3.2]
    np.testing.assert_allclose(x.asnumpy(), [[2.2, 3.2], [3, 4], [3.8, 4.8]], rtol=1e-6)
    np.testing.assert_allclose(y.asnumpy(), [[0.7, 0, 0.3], [0, 1, 0], [0.3, 0, 0.7]],
                               rtol=1e-6, atol=1e-7)


def test_smoothing_then_mixup():
    y0 = smooth_labels(mx.nd.array([0, 1, 2]), 3, eps=0.3)       # on 0.7, off 0.15
    _, y = mixup(X, y0, 0.25)
    # row 0 = 0.25 [0.7, 0.15, 0.15] + 0.75 [0.15, 0.15, 0.7]
    np.testing.assert_allclose(y.asnumpy()[0], [0.2875, 0.15, 0.5625], rtol=1e-5)
    np.testing.assert_allclose(y.asnumpy().sum(axis=1), [1, 1, 1], rtol=1e-6)


@pytest.mark.parametrize('kwargs, word', [
    (dict(lam=1.2), '1.2'),
    (dict(lam=-0.1), '-0.1'),
    (dict(lam=True), 'True'),
])
def test_mixup_bad_arguments(kwargs, word):
    with pytest.raises(ValueError) as err:
        mixup(X, Y, **kwargs)
    assert word in str(err.value)
    with pytest.raises(ValueError, match='smooth'):
        mixup(X, mx.nd.array([0, 1, 2]), 0.5)                  # class indices, not mixed


def test_sample_mixup_lambda():
    a = [sample_mixup_lambda(0.2, np.random.RandomState(7)) for _ in range(2)]
    assert a[0] == a[1] == np.random.RandomState(7).beta(0.2, 0.2)
    rng = np.random.RandomState(0)
    draws = [sample_mixup_lambda(0.2, rng) for _ in range(200)]
    assert all(0 <= d <= 1 for d in draws)
    # Beta(0.2, 0.2) is U-shaped: most mass near 0 or 1
    assert np.mean([(d < 0.1) or (d > 0.9) for d in draws]) > 0.5
    with pytest.raises(ValueError, match='0'):
        sample_mixup_lambda(0.0)


def test_one_hot_soft_cross_entropy_is_sparse_cross_entropy_bit_for_bit():
    """Why the step chooses its loss once: after mixup's last epoch (no smoothing) its targets
    are one-hot, and their soft cross entropy gives sparse CE's loss and gradient exactly."""
    from mxnet import autograd, gluon
    rs = np.random.RandomState(0)
    for scale in (0.1, 3.0, 30.0):
        x = mx.nd.array(rs.randn(16, 100) * scale)
        y = mx.nd.array(rs.randint(0, 100, 16))
        got = []
        for loss_fn, target in ((gluon.loss.SoftmaxCrossEntropyLoss(), y),
                                (SoftTargetCrossEntropy(), smooth_labels(y, 100, eps=0.0))):
            x.attach_grad()
            with autograd.record():
                loss = loss_fn(x, target)
            loss.backward()
            got.append((loss.asnumpy(), x.grad.asnumpy().copy()))
        assert (got[0][0] == got[1][0]).all() and (got[0][1] == got[1][1]).all()

