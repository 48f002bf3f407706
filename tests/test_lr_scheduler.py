"""Learning-rate schedules (paper secs. 3.1, 5.1) against hand-computed values."""
import math
import os
import pickle
import struct
import subprocess
import sys

import mxnet as mx
import pytest

from gluon_tricks.lr_scheduler import LRScheduler, linear_scaled_lr, resolve_lr

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A small run: 10 iterations per epoch, 12 epochs (120 iterations), 2 warmup epochs
# (m = 20 batches) from warmup_lr = 0.1 to base_lr = 0.4; after warmup T = 100 batches.
KW = dict(base_lr=0.4, iters_per_epoch=10, num_epochs=12, warmup_epochs=2, warmup_lr=0.1)


def sched(mode, **kw):
    args = dict(KW)
    args.update(kw)
    return LRScheduler(mode, **args)


def test_warmup_uses_warmup_lr():
    s = sched('cosine')
    # batch i = k + 1 of m = 20: 0.1 + 0.3 * i / 20
    assert s.lr_at(0) == pytest.approx(0.115)    # 0.1 + 0.3 * 1/20
    assert s.lr_at(9) == pytest.approx(0.25)     # 0.1 + 0.3 * 10/20
    assert s.lr_at(18) == pytest.approx(0.385)   # 0.1 + 0.3 * 19/20
    assert s.lr_at(19) == pytest.approx(0.4)     # last warmup batch reaches base_lr


def test_warmup_from_zero_is_paper_i_eta_over_m():
    s = LRScheduler('step', base_lr=0.4, iters_per_epoch=10, num_epochs=12,
                    warmup_epochs=2, step_epochs=(6,))
    # paper: batch i (1 <= i <= m) gets i * eta / m; no batch gets lr 0
    assert s.lr_at(0) == pytest.approx(0.02)     # 1 * 0.4 / 20
    assert s.lr_at(4) == pytest.approx(0.1)      # 5 * 0.4 / 20
    assert s.lr_at(19) == pytest.approx(0.4)


def test_step_boundaries():
    s = sched('step', step_epochs=(4, 8), step_factor=0.1)
    assert s.lr_at(20) == pytest.approx(0.4)     # first batch after warmup
    assert s.lr_at(39) == pytest.approx(0.4)     # last batch of epoch 3
    assert s.lr_at(40) == pytest.approx(0.04)    # first batch of epoch 4
    assert s.lr_at(79) == pytest.approx(0.04)
    assert s.lr_at(80) == pytest.approx(0.004)
    assert s.lr_at(119) == pytest.approx(0.004)  # last batch
    assert s.lr_at(10 ** 6) == pytest.approx(0.004)


def test_cosine_eq1():
    s = sched('cosine')
    assert s.lr_at(20) == pytest.approx(0.4)     # t = 0
    assert s.lr_at(45) == pytest.approx(0.4 * 0.5 * (1 + 0.7071067811865476))  # t = T/4
    assert s.lr_at(45) == pytest.approx(0.34142135623730950)
    assert s.lr_at(70) == pytest.approx(0.2)     # t = T/2: half of base
    assert s.lr_at(120) == pytest.approx(0.0, abs=1e-12)   # t = T
    assert s.lr_at(119) == pytest.approx(0.4 * 0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert 0 < s.lr_at(119) < 1e-3


def test_cosine_target_lr():
    s = sched('cosine', target_lr=0.04)
    assert s.lr_at(70) == pytest.approx(0.22)    # 0.04 + 0.36 * 0.5
    assert s.lr_at(120) == pytest.approx(0.04)


def test_poly_linear_constant():
    # t = 25 of T = 100
    assert sched('poly', power=2.0).lr_at(45) == pytest.approx(0.225)   # 0.4 * 0.75^2
    assert sched('poly', power=2.0, target_lr=0.1).lr_at(45) == pytest.approx(0.26875)
    assert sched('linear').lr_at(45) == pytest.approx(0.3)              # 0.4 * 0.75
    c = sched('constant')
    assert c.lr_at(5) == pytest.approx(0.1 + 0.3 * 6 / 20)  # constant still warms up
    assert c.lr_at(50) == pytest.approx(0.4)
    assert c.lr_at(119) == pytest.approx(0.4)


def test_no_warmup_starts_at_base():
    s = LRScheduler('cosine', 0.1, 5, 4)
    assert s.lr_at(0) == pytest.approx(0.1)
    assert s.lr_at(10) == pytest.approx(0.05)    # T = 20, t = 10


def test_call_maps_mxnet_num_update():
    s = sched('cosine')
    assert s(1) == s.lr_at(0)                    # MXNet's first update asks num_update = 1
    assert s(0) == s.lr_at(0)                    # Trainer.learning_rate before any update
    assert s(71) == pytest.approx(0.2)


def test_pure_and_picklable():
    s = sched('step', step_epochs=(4, 8))
    order = [100, 3, 40, 39, 0, 80, 19]
    first = [s(k) for k in order]
    clone = pickle.loads(pickle.dumps(s))
    assert [clone(k) for k in reversed(order)] == list(reversed(first))
    assert [s(k) for k in order] == first


def test_trainer_applies_lr_at_iteration_zero_first():
    """A real gluon.Trainer: plain SGD, gradient 1 -> each step moves w by -lr."""
    s = sched('cosine')
    w = mx.gluon.Parameter('w', shape=(1,), init=mx.init.Zero())
    w.initialize(ctx=mx.cpu())
    trainer = mx.gluon.Trainer([w], 'sgd', {'lr_scheduler': s, 'momentum': 0.0, 'wd': 0.0})
    applied = []
    for _ in range(3):
        before = w.data().asscalar()
        with mx.autograd.record():
            loss = w.data().sum()
        loss.backward()
        trainer.step(1)
        applied.append(before - w.data().asscalar())
    expected = [s.lr_at(0), s.lr_at(1), s.lr_at(2)]   # 0.115, 0.13, 0.145
    assert applied == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx([0.115, 0.13, 0.145])


@pytest.mark.parametrize('kwargs, words', [
    (dict(mode='exp'), ["'exp'", 'step, cosine, poly, linear, constant']),
    (dict(mode='step', step_epochs=(4, 13)), ['13', 'num_epochs=12']),
    (dict(mode='step', step_epochs=(1, 8)), ['1', 'warmup']),
    (dict(mode='step', step_epochs=(8, 4)), ['(8, 4)', 'increasing']),
    (dict(mode='step', step_epochs=(4, 8), step_factor=0.0), ['step_factor', '0.0']),
    (dict(mode='step'), ['30', 'num_epochs=12']),  # default steps vs a 12-epoch run
    (dict(mode='cosine', warmup_lr=0.5), ['warmup_lr', '0.5']),
    (dict(mode='cosine', warmup_epochs=12), ['warmup_epochs=12', 'num_epochs=12']),
    (dict(mode='cosine', warmup_epochs=-1), ['warmup_epochs', '-1']),
    (dict(mode='cosine', base_lr=0.0, warmup_lr=0.0), ['base_lr', '0.0']),
    (dict(mode='cosine', iters_per_epoch=0), ['iters_per_epoch', '0']),
    (dict(mode='cosine', num_epochs=2.5), ['num_epochs', '2.5']),
    (dict(mode='cosine', target_lr=0.7), ['target_lr', '0.7']),
    (dict(mode='poly', power=-1.0), ['power', '-1.0']),
])
def test_bad_arguments(kwargs, words):
    args = dict(KW)
    args.update(kwargs)
    mode = args.pop('mode')
    with pytest.raises(ValueError) as err:
        LRScheduler(mode, **args)
    for word in words:
        assert word in str(err.value)


def test_step_epochs_ignored_for_other_modes():
    # the default (30, 60, 90) must not trip validation of a short cosine run
    LRScheduler('cosine', 0.1, 10, 12)


def test_bad_iteration():
    with pytest.raises(ValueError, match='-1'):
        sched('cosine').lr_at(-1)


def test_linear_scaling():
    assert linear_scaled_lr(1024) == pytest.approx(0.4)          # 0.1 x 1024 / 256
    assert linear_scaled_lr(256) == pytest.approx(0.1)
    assert linear_scaled_lr(64, base_lr=0.2, base_batch_size=128) == pytest.approx(0.1)
    with pytest.raises(ValueError, match='0'):
        linear_scaled_lr(0)


def test_resolve_lr():
    lr, how = resolve_lr(None, 1024, batch_description='128 per device x 8 devices x 1 worker')
    assert lr == pytest.approx(0.4)
    assert how == ('lr 0.4 = 0.1 x 1024 / 256 (linear scaling, global batch 1024 = '
                   '128 per device x 8 devices x 1 worker)')
    lr, how = resolve_lr(0.3, 1024)
    assert lr == 0.3
    assert how.startswith('lr 0.3 given by --lr')
    assert '0.4' in how                                          # what scaling would give
    with pytest.raises(ValueError, match='-0.1'):
        resolve_lr(-0.1, 256)


def _png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n'
    return struct.unpack('>II', head[16:24])


@pytest.mark.subprocess
def test_plot_script_writes_png(tmp_path):
    out = tmp_path / 'sub' / 'fig3a.png'
    script = os.path.join(REPO, 'scripts', 'classification', 'plot_lr_schedule.py')
    env = dict(os.environ)
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, script, '--out', str(out), '--num-epochs', '20',
                           '--warmup-epochs', '2', '--num-samples', '51200',
                           '--step-epochs', '8,16'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1000
    width, height = _png_size(str(out))
    assert width > 100 and height > 100
    assert 'lr 0.4 = 0.1 x 1024 / 256' in proc.stdout
    assert str(out) in proc.stdout
