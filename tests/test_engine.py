"""TrainStep sums, the loop's Meter and evaluate against hand-computed values (one and two
devices)."""
import math

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from gluon_tricks.classifier_config import TricksConfig
from gluon_tricks.engine import TrainStep, evaluate, topk_counts
from gluon_tricks.optim import make_trainer
from gluon_tricks.precision import LossScaler
from gluon_tricks.training import Meter


def _zero_net(devices):
    net = nn.Dense(4, in_units=12)
    net.initialize(mx.init.Zero(), ctx=devices)
    return net


@pytest.mark.parametrize('devices', [[mx.cpu(0)], [mx.cpu(0), mx.cpu(1)]])
def test_meters_and_first_non_finite_batch(devices):
    net = _zero_net(devices)
    trainer = make_trainer(net.collect_params(), {'learning_rate': 0.0}, 'sgd')
    # a static scale with the overflow check skips the NaN step, so the weights stay 0
    scaler = LossScaler(1.0)
    step = TrainStep(net, trainer, devices, TricksConfig(), 4, 1, scaler)
    meter = Meter(devices[0])
    labels = [np.array([0, 1, 0, 3]), np.array([0, 0, 2, 2]), np.array([1, 1, 1, 0]),
              np.array([3, 3, 3, 3])]
    for i, y in enumerate(labels):
        x = np.ones((4, 12), np.float32)
        if i == 2:
            x[1, 0] = np.nan  # one sample of batch 2 breaks
        sums = step(mx.nd.array(x), mx.nd.array(y), epoch=0, batch_index=10 + i)
        meter.add(sums, 4, 10 + i)
    sums, samples, first_bad = meter.read()
    # zero weights: every logit is 0, so CE = log 4 and argmax = class 0
    assert samples == 16 and first_bad == 12
    assert sums[1] == sum(int((y == 0).sum()) for y in labels)
    assert math.isnan(sums[0]) and scaler.num_skipped == 1
    # the meter was reset: a clean interval reads finite and without a bad batch
    meter.add(step(mx.nd.ones((4, 12)), mx.nd.array([0, 1, 2, 3]), epoch=0, batch_index=14),
              4, 14)
    sums, samples, first_bad = meter.read()
    assert first_bad == -1 and samples == 4
    assert sums[0] / 4 == pytest.approx(math.log(4), rel=1e-5)  # float32 log-softmax
    assert sums[1] == 1


def test_the_mixup_lambda_comes_from_the_generator_given_to_the_step():
    """One lambda per mixup step from the caller's generator (the position's, for exact
    resume), none after mixup's last epoch; no hidden generator of the step's own."""
    from gluon_tricks.loss import sample_mixup_lambda
    net = _zero_net([mx.cpu()])
    trainer = make_trainer(net.collect_params(), {'learning_rate': 0.0}, 'sgd')
    step = TrainStep(net, trainer, [mx.cpu()],
                     TricksConfig(mixup=True, mixup_alpha=0.2, mixup_off_epoch=1), 4, 3,
                     LossScaler(None))
    x, y = mx.nd.ones((4, 12)), mx.nd.array([0, 1, 2, 3])
    rng, ref = np.random.RandomState(7), np.random.RandomState(7)
    step(x, y, epoch=1, batch_index=0, rng=rng)
    sample_mixup_lambda(0.2, ref)
    assert rng.random_sample() == ref.random_sample()    # exactly one lambda was drawn
    step(x, y, epoch=2, batch_index=0, rng=rng)          # mixup off in the last epoch
    assert rng.random_sample() == ref.random_sample()
    with pytest.raises(ValueError, match='rng'):
        step(x, y, epoch=0, batch_index=1)
    assert not hasattr(step, 'rng')


def test_evaluate_counts_top1_top5():
    net = nn.Dense(6, in_units=6, use_bias=False)
    net.initialize(mx.init.Constant(0), ctx=[mx.cpu()])
    net.weight.set_data(mx.nd.array(np.eye(6)))  # logits = inputs
    x = np.array([[6, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 9]], np.float32)
    y = np.array([0, 0, 5])   # hit top-1; rank 6 (miss top-5); hit
    res = evaluate(net, [(mx.nd.array(x), mx.nd.array(y))], [mx.cpu()])
    assert (res['correct1'], res['correctk'], res['total']) == (2, 2, 3)
    assert res['top1'] == pytest.approx(2 / 3)


def test_topk_counts_by_hand_with_ties_and_fewer_classes_than_k():
    logits = np.array([[1, 3, 3, 0], [4, 1, 2, 3], [0, 0, 0, 0], [1, 2, 3, 4]], np.float32)
    # row 0: label 2 ties class 1 for first; row 1: label 2 is third; row 2: all tie, label 3
    # is last of 4; row 3: label 0 is last
    labels = np.array([2, 2, 3, 0])
    c = topk_counts(mx.nd.array(logits), mx.nd.array(labels), topk=2).asnumpy()
    assert c.tolist() == [0, 1, 4]                       # row 0: the tie puts 2 second
    c = topk_counts(mx.nd.array(logits), mx.nd.array(labels), topk=3).asnumpy()
    assert c.tolist() == [0, 2, 4]                       # rows 0 and 1 within the top 3
    c = topk_counts(mx.nd.array(logits), mx.nd.array(labels), topk=5).asnumpy()
    assert c.tolist() == [0, 4, 4]                       # k = 4 classes: every label is in
    c = topk_counts(mx.nd.array(logits), mx.nd.array([1, 0, 0, 2]), topk=1).asnumpy()
    assert c.tolist() == [3, 3, 4]                       # ties: the lower class index wins


class _Recorder(mx.gluon.Block):
    """A teacher that remembers its input and answers fixed logits."""

    def __init__(self, logits):
        super(_Recorder, self).__init__()
        self.logits, self.seen = logits, []

    def forward(self, x):
        self.seen.append(x.asnumpy())
        return mx.nd.array(np.tile(self.logits, (x.shape[0], 1)), ctx=x.context)


@pytest.mark.parametrize('size, expect_shape', [(2, (2, 3, 2, 2)), (None, (2, 3, 4, 4)),
                                                (4, (2, 3, 4, 4))])
def test_teacher_input_size_resizes_only_the_teachers_batch(size, expect_shape):
    devices = [mx.cpu(0)]
    net = nn.Dense(4, in_units=48)
    net.initialize(mx.init.Zero(), ctx=devices)
    trainer = make_trainer(net.collect_params(), {'learning_rate': 0.0}, 'sgd')
    teacher = _Recorder(np.array([0.0, 0.0, 20.0 * math.log(3.0), 0.0], np.float32))
    step = TrainStep(net, trainer, devices, TricksConfig(temperature=20.0), 4, 1, LossScaler(None),
                     teacher=teacher, teacher_size=size)
    x = np.tile(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), (2, 3, 1, 1))
    sums = step(mx.nd.array(x), mx.nd.array([2, 2]), epoch=0, batch_index=0)
    seen = teacher.seen[0]
    assert seen.shape == expect_shape
    if size == 2:
        # half-pixel bilinear 4 -> 2: each output pixel is the mean of a 2x2 block
        np.testing.assert_allclose(seen[0, 0], [[2.5, 4.5], [10.5, 12.5]], rtol=1e-6)
    else:
        np.testing.assert_array_equal(seen, x)
    # eq. (6) with zero student logits: CE(y, 1/4) + T^2 CE(softmax(r/T), 1/4), where the
    # teacher's softmax(r/T) is (1, 1, 3, 1)/6; both cross-entropies against uniform are log 4
    per_sample = math.log(4) + 20.0 ** 2 * math.log(4)
    assert sums[0].asscalar() == pytest.approx(2 * per_sample, rel=1e-5)
