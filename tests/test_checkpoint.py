"""Atomic checkpoints: kill safety, exact resume (NAG momentum and float32 master weights of
float16 parameters), best copy, clear errors."""
import json
import os
import subprocess
import sys

import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import gluon_tricks.checkpoint
from gluon_tricks.checkpoint import CheckpointError, CheckpointManager
from gluon_tricks.optim import make_trainer, optimizer_params
from gluon_tricks.precision import LossScaler


class Elementwise(gluon.HybridBlock):
    """y = x * scale + shift: float16 forward/backward runs on CPU (no GEMM involved)."""

    def __init__(self, width=6, **kwargs):
        super(Elementwise, self).__init__(**kwargs)
        with self.name_scope():
            self.scale = self.params.get('scale', shape=(width,), init=mx.init.Uniform(1.0))
            self.shift = self.params.get('shift', shape=(width,), init=mx.init.Uniform(1.0))

    def hybrid_forward(self, F, x, scale, shift):
        return F.broadcast_add(F.broadcast_mul(x, scale.reshape((1, -1))),
                               shift.reshape((1, -1)))


def fp16_setup(seed=0):
    mx.random.seed(seed)
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(Elementwise(), Elementwise())
    net.initialize()
    net.cast('float16')
    trainer = make_trainer(net, optimizer_params(base_lr=0.05, momentum=0.9, wd=1e-4,
                                                 multi_precision=True))
    return net, trainer


def train(net, trainer, steps, start, scaler=None, dtype='float16'):
    for step in range(start, start + steps):
        rng = np.random.RandomState(step)
        x = mx.nd.array(rng.normal(size=(8, 6)), dtype=dtype)
        t = mx.nd.array(rng.normal(size=(8, 6)), dtype=dtype)
        with autograd.record():
            loss = ((net(x) - t) ** 2).astype('float32').sum(axis=1)
            if scaler is not None:
                loss = scaler.scale_loss(loss)
        loss.backward()
        if scaler is None:
            trainer.step(8)
        else:
            scaler.step(trainer, 8)


def weights(net):
    return {k: p.data().asnumpy().copy() for k, p in net._collect_params_with_prefix().items()}


def masters(trainer):
    """index -> (momentum, float32 master) of a multi-precision NAG trainer."""
    out = {}
    for i, state in trainer._updaters[0].states.items():
        mom, master = state
        out[i] = (mom.asnumpy().copy(), master.asnumpy().copy())
    return out


def test_round_trip_restores_nag_momentum_and_float32_master_exactly(tmp_path):
    net, trainer = fp16_setup()
    scaler = LossScaler('dynamic', init_scale=2.0 ** 8, growth_interval=2)
    train(net, trainer, 3, 0, scaler)
    manager = CheckpointManager(str(tmp_path), prefix='elem')
    saved_master = masters(trainer)
    assert all(m.dtype == np.float32 and mom.dtype == np.float32
               for mom, m in saved_master.values())
    assert all(p.dtype == np.float16 for p in weights(net).values())
    manager.save(3, net, trainer, {'scaler': scaler.state_dict(), 'best_acc': 0.5,
                                   'seeds': [1, 2]})
    train(net, trainer, 3, 3, scaler)           # the uninterrupted run
    expect_w, expect_m = weights(net), masters(trainer)
    expect_scaler = scaler.state_dict()

    net2, trainer2 = fp16_setup(seed=7)         # a fresh process would start like this
    assert any(np.any(v != weights(net2)[k]) for k, v in expect_w.items())
    ckpt = CheckpointManager(str(tmp_path), prefix='elem').load_latest()
    assert ckpt.epoch == 3 and ckpt.state['best_acc'] == 0.5 and ckpt.state['seeds'] == [1, 2]
    state = ckpt.restore(net2, trainer2)
    for i, (mom, m) in masters(trainer2).items():
        np.testing.assert_array_equal(mom, saved_master[i][0])
        np.testing.assert_array_equal(m, saved_master[i][1])
    assert trainer2.optimizer.multi_precision and trainer2.optimizer.num_update == 3
    scaler2 = LossScaler('dynamic', init_scale=2.0 ** 8, growth_interval=2)
    scaler2.load_state_dict(state['scaler'])
    train(net2, trainer2, 3, 3, scaler2)        # the resumed run
    for k, v in expect_w.items():
        np.testing.assert_array_equal(weights(net2)[k], v, err_msg=k)
    for i, (mom, m) in expect_m.items():
        np.testing.assert_array_equal(masters(trainer2)[i][1], m)
        np.testing.assert_array_equal(masters(trainer2)[i][0], mom)
    assert scaler2.state_dict() == expect_scaler


def test_file_layout_and_pointer(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    assert manager.load_latest() is None and manager.load_best() is None
    path = manager.save(0, net, trainer, {'lr_iter': 10})
    assert path == str(tmp_path / 'checkpoint-epoch0000')
    assert sorted(os.listdir(path)) == ['net.params', 'optimizer.params', 'state.json']
    pointer = json.loads((tmp_path / 'checkpoint-latest.json').read_text())
    assert pointer['dir'] == 'checkpoint-epoch0000' and pointer['epoch'] == 0
    meta = json.loads((tmp_path / 'checkpoint-epoch0000' / 'state.json').read_text())
    assert meta['epoch'] == 0 and meta['state'] == {'lr_iter': 10}
    # structural names, as GluonCV's save_parameters writes them
    assert sorted(mx.nd.load(os.path.join(path, 'net.params'))) == \
        ['0.scale', '0.shift', '1.scale', '1.shift']
    train(net, trainer, 1, 0)
    manager.save(1, net, trainer, {'lr_iter': 20})
    assert sorted(os.listdir(str(tmp_path))) == ['checkpoint-epoch0001',
                                                 'checkpoint-latest.json']
    assert manager.load_latest().state == {'lr_iter': 20}


def test_exception_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(0, net, trainer, {'epoch_state': 0})
    saved = weights(net)
    train(net, trainer, 2, 0)

    def crash(trainer, net):
        raise KeyboardInterrupt('killed while writing the trainer states')
    monkeypatch.setattr(gluon_tricks.checkpoint, 'collect_state', crash)
    with pytest.raises(KeyboardInterrupt):
        manager.save(1, net, trainer, {'epoch_state': 1})
    assert sorted(os.listdir(str(tmp_path))) == ['checkpoint-epoch0000',
                                                 'checkpoint-latest.json']
    ckpt = manager.load_latest()
    assert ckpt.epoch == 0
    net2, trainer2 = fp16_setup(seed=3)
    assert ckpt.restore(net2, trainer2) == {'epoch_state': 0}
    for k, v in saved.items():
        np.testing.assert_array_equal(weights(net2)[k], v)


def test_crash_between_rename_and_pointer_update(tmp_path, monkeypatch):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(4, net, trainer, {'n': 4})
    train(net, trainer, 1, 0)

    def crash(name, epoch, batch=0):
        raise OSError('cannot write the pointer')
    monkeypatch.setattr(manager, '_write_pointer', crash)
    with pytest.raises(OSError):
        manager.save(5, net, trainer, {'n': 5})
    assert os.path.isdir(str(tmp_path / 'checkpoint-epoch0005'))      # orphan, unreachable
    assert manager.load_latest().state == {'n': 4}
    monkeypatch.undo()
    manager.save(5, net, trainer, {'n': 5, 'again': True})             # replaces the orphan
    assert manager.load_latest().state == {'n': 5, 'again': True}
    assert sorted(os.listdir(str(tmp_path))) == ['checkpoint-epoch0005',
                                                 'checkpoint-latest.json']


@pytest.mark.subprocess
def test_leftovers_of_a_killed_process_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale_dir = tmp_path / ('.tmp-checkpoint-3-%d' % dead.pid)
    stale_dir.mkdir()
    (stale_dir / 'net.params').write_bytes(b'partial')
    stale_file = tmp_path / ('checkpoint-latest.json.tmp-%d' % dead.pid)
    stale_file.write_text('{"dir": ')
    live_dir = tmp_path / ('.tmp-checkpoint-3-%d' % os.getppid())     # a live process
    live_dir.mkdir()
    net, trainer = fp16_setup()
    CheckpointManager(str(tmp_path)).save(3, net, trainer)
    assert not stale_dir.exists() and not stale_file.exists()
    assert live_dir.exists()


def test_saving_the_same_epoch_twice_never_exposes_a_missing_dir(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(2, net, trainer, {'v': 1})
    path = manager.save(2, net, trainer, {'v': 2})
    assert os.path.basename(path) == 'checkpoint-epoch0002.1'
    assert manager.load_latest().state == {'v': 2}
    manager.save(3, net, trainer, {'v': 3})
    assert sorted(os.listdir(str(tmp_path))) == ['checkpoint-epoch0003',
                                                 'checkpoint-latest.json']


def test_best_copy_survives_pruning_and_is_replaced_atomically(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(0, net, trainer, {'acc': 0.1}, is_best=True)
    train(net, trainer, 1, 0)
    manager.save(1, net, trainer, {'acc': 0.3}, is_best=True)
    best_weights = weights(net)
    train(net, trainer, 1, 1)
    manager.save(2, net, trainer, {'acc': 0.2}, is_best=False)
    entries = sorted(os.listdir(str(tmp_path)))
    assert entries == ['.checkpoint-best-epoch0001', 'checkpoint-best',
                       'checkpoint-epoch0002', 'checkpoint-latest.json']
    assert os.path.islink(str(tmp_path / 'checkpoint-best'))
    best = manager.load_best()
    assert best.epoch == 1 and best.state == {'acc': 0.3}
    net2, trainer2 = fp16_setup(seed=5)
    best.restore(net2, trainer2)
    for k, v in best_weights.items():
        np.testing.assert_array_equal(weights(net2)[k], v)
    assert manager.load_latest().epoch == 2
    train(net, trainer, 1, 2)
    manager.save(3, net, trainer, {'acc': 0.4}, is_best=True)
    assert sorted(os.listdir(str(tmp_path))) == ['.checkpoint-best-epoch0003',
                                                 'checkpoint-best', 'checkpoint-epoch0003',
                                                 'checkpoint-latest.json']
    assert manager.load_best().epoch == 3
    # the best directory is its own (hard links or copies), not the epoch directory
    assert os.path.realpath(str(tmp_path / 'checkpoint-best')) == \
        str(tmp_path / '.checkpoint-best-epoch0003')
    with open(str(tmp_path / 'checkpoint-best' / 'net.params'), 'rb') as f, \
            open(str(tmp_path / 'checkpoint-epoch0003' / 'net.params'), 'rb') as g:
        assert f.read() == g.read()


def test_non_serialisable_state_fails_before_writing(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    with pytest.raises(TypeError, match='JSON'):
        manager.save(0, net, trainer, {'array': np.zeros(2)})
    assert not os.path.exists(str(tmp_path)) or os.listdir(str(tmp_path)) == []


def test_clear_errors(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(0, net, None, {'a': 1})
    # params that do not fit the model: the message names the file, the model and the diff
    other = nn.HybridSequential()
    with other.name_scope():
        other.add(Elementwise(width=4), Elementwise(width=4))
    other.initialize()
    ckpt = manager.load_latest()
    with pytest.raises(CheckpointError) as err:
        ckpt.restore(other)
    msg = str(err.value)
    assert ckpt.params_path in msg and 'HybridSequential' in msg
    assert '0.scale: model (4,), file (6,)' in msg
    # trainer states requested from a checkpoint saved without them
    with pytest.raises(CheckpointError, match='no trainer states'):
        ckpt.restore(net, trainer)
    # corrupt state.json
    state_path = tmp_path / 'checkpoint-epoch0000' / 'state.json'
    state_path.write_text('{"epoch": 0, "sta')
    with pytest.raises(CheckpointError, match='state.json is corrupt'):
        manager.load_latest()
    # pointer to a missing directory
    (tmp_path / 'checkpoint-latest.json').write_text(json.dumps({'dir': 'checkpoint-epoch0009'}))
    with pytest.raises(CheckpointError, match='missing directory .*checkpoint-epoch0009'):
        manager.load_latest()
    # corrupt pointer
    (tmp_path / 'checkpoint-latest.json').write_text('not json')
    with pytest.raises(CheckpointError, match='checkpoint-latest.json is corrupt'):
        manager.load_latest()
    # a missing file inside the directory
    manager2 = CheckpointManager(str(tmp_path), prefix='other')
    path = manager2.save(1, net, trainer)
    os.remove(os.path.join(path, 'optimizer.params'))
    with pytest.raises(CheckpointError, match='incomplete.*optimizer.params'):
        manager2.load_latest()


def test_keep_last_and_abandoned_epochs(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path), keep_last=2)
    for epoch in range(4):
        manager.save(epoch, net, trainer, {'e': epoch})
    assert sorted(e for e in os.listdir(str(tmp_path)) if 'epoch' in e) == \
        ['checkpoint-epoch0002', 'checkpoint-epoch0003']
    # a run restarted from scratch in the same directory: the old, higher epochs go
    manager.save(0, net, trainer, {'e': 'new 0'})
    manager.save(1, net, trainer, {'e': 'new 1'})
    assert sorted(e for e in os.listdir(str(tmp_path)) if 'epoch' in e) == \
        ['checkpoint-epoch0000', 'checkpoint-epoch0001']
    assert manager.load_latest().state == {'e': 'new 1'}


def test_keep_last_keeps_exactly_the_newest_n(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path), keep_last=4)
    for epoch in range(1, 7):
        manager.save(epoch, net, trainer, {'e': epoch}, is_best=epoch == 2)
    assert sorted(e for e in os.listdir(str(tmp_path)) if e.startswith('checkpoint-epoch')) == \
        ['checkpoint-epoch%04d' % e for e in (3, 4, 5, 6)]
    assert manager.load_best().epoch == 2      # the best copy outlives its epoch directory


def test_mid_epoch_checkpoints_are_named_ordered_pruned_and_checksummed(tmp_path):
    net, trainer = fp16_setup()
    manager = CheckpointManager(str(tmp_path))
    manager.save(1, net, trainer, {'e': 1})
    path = manager.save(1, net, trainer, {'e': '1+3'}, batch=3)
    assert os.path.basename(path) == 'checkpoint-epoch0001-batch000003'
    assert sorted(os.listdir(str(tmp_path))) == ['checkpoint-epoch0001-batch000003',
                                                 'checkpoint-latest.json']
    latest = manager.load_latest()
    assert (latest.epoch, latest.batch) == (1, 3)
    assert sorted(latest.meta['sha256']) == ['net.params', 'optimizer.params']
    manager.save(2, net, trainer, {'e': 2})
    assert [(c.epoch, c.batch) for c in manager.scan()] == [(2, 0)]
    # the scan orders by (epoch, batch) when the pointer is gone
    manager.save(2, net, trainer, {'e': '2+7'}, batch=7)
    os.makedirs(str(tmp_path / 'keep'))
    os.remove(str(tmp_path / 'checkpoint-latest.json'))
    assert (manager.load_latest().epoch, manager.load_latest().batch) == (2, 7)
