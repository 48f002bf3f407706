"""Where users run, emulated on CPU: several devices (``mx.cpu(i)`` for ``mx.gpu(i)``), ranks
on a device other than 0, float16 parameter files, GPU visibility per rank.

Each test reproduces a setting the test machine never has natively: a checkpoint restored by a
Horovod rank on ``gpu(3)`` is a checkpoint restored on ``cpu(3)`` (MXNet keys the optimizer's
update counts by device id, whatever the device type), a float16 file of a GPU run is a
network cast to float16 and saved on the CPU, eight GPUs are eight CPU contexts.
"""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_tricks import config as gconfig
from gluon_tricks.checkpoint import CheckpointError, CheckpointManager
from gluon_tricks.distributed import DistContext, predivide_factor
from gluon_tricks.lr_scheduler import LRScheduler
from gluon_tricks.model_zoo import get_model
from gluon_tricks.model_zoo.io import load_model, save_params
from gluon_tricks.optim import make_trainer, optimizer_params
from gluon_tricks.transfer import load_backbone

ITERS = 10   # iterations per "epoch" of the schedule below


def _scheduler():
    return LRScheduler('cosine', 0.4, ITERS, 4, warmup_epochs=1, warmup_lr=0.0)


def _setup(ctx, seed=0, dtype='float32'):
    mx.random.seed(seed)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(8, in_units=6, activation='relu'), gluon.nn.Dense(3, in_units=8))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    if dtype != 'float32':
        net.cast(dtype)
    trainer = make_trainer(net, optimizer_params(_scheduler(), momentum=0.9, wd=1e-4,
                                                 multi_precision=dtype == 'float16'),
                           kvstore='device' if len(ctx) > 1 else None)
    return net, trainer


def _step(net, trainer, ctx, i):
    rs = np.random.RandomState(100 + i)
    x = rs.normal(size=(4 * len(ctx), 6)).astype('float32')
    y = rs.randint(0, 3, size=4 * len(ctx)).astype('float32')
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        losses = [loss_fn(net(mx.nd.array(xs, ctx=c)), mx.nd.array(ys, ctx=c))
                  for c, xs, ys in zip(ctx, np.split(x, len(ctx)), np.split(y, len(ctx)))]
    autograd.backward(losses)
    trainer.step(len(x))


def _weights(net):
    return {k: p.data(p.list_ctx()[0]).asnumpy()
            for k, p in net._collect_params_with_prefix().items()}


@pytest.mark.parametrize('device', [1, 3])
def test_restore_on_another_device_id_continues_the_schedule(tmp_path, device):
    """A checkpoint saved on cpu(0) (rank 0) and restored on cpu(device) (a rank with local
    rank != 0, or a single process on another GPU): the update count goes on 6, 7, 8 and the
    lr follows the schedule, the same as a run that never stopped. (Before: the count stood
    at 5 and the lr at the saved update's for as many steps again.)"""
    ref, ref_trainer = _setup([mx.cpu(0)])
    for i in range(5):
        _step(ref, ref_trainer, [mx.cpu(0)], i)
    CheckpointManager(str(tmp_path)).save(0, ref, ref_trainer, {})
    ctx = [mx.cpu(device)]
    net, trainer = _setup(ctx, seed=9)
    CheckpointManager(str(tmp_path)).load_latest().restore(net, trainer, ctx)
    counts, lrs, ref_lrs = [], [], []
    for i in range(5, 8):
        _step(net, trainer, ctx, i)
        _step(ref, ref_trainer, [mx.cpu(0)], i)
        counts.append(trainer.optimizer.num_update)
        lrs.append(trainer.learning_rate)
        ref_lrs.append(ref_trainer.learning_rate)
    assert counts == [6, 7, 8]
    assert lrs == ref_lrs == [_scheduler()(n) for n in (6, 7, 8)]
    for key, value in _weights(ref).items():
        np.testing.assert_allclose(_weights(net)[key], value, rtol=1e-6, atol=1e-7,
                                   err_msg=key)


def test_optimizer_states_land_on_each_device(tmp_path):
    """States saved from cpu(0) restored for a trainer on cpu(1..3): each device's momentum
    is built on that device (not three copies on the saving device), equal to the saved
    values, and every device id has the saved update counts."""
    net0, trainer0 = _setup([mx.cpu(0)])
    for i in range(3):
        _step(net0, trainer0, [mx.cpu(0)], i)
    saved = {i: s.asnumpy() for i, s in trainer0._updaters[0].states.items()}
    CheckpointManager(str(tmp_path)).save(0, net0, trainer0, {})
    ctx = [mx.cpu(1), mx.cpu(2), mx.cpu(3)]
    net, trainer = _setup(ctx, seed=4)
    CheckpointManager(str(tmp_path)).load_latest().restore(net, trainer, ctx)
    assert len(trainer._updaters) == 3
    for updater, c in zip(trainer._updaters, ctx):
        assert sorted(updater.states) == sorted(saved)
        for i, state in updater.states.items():
            assert state.context == c
            np.testing.assert_array_equal(state.asnumpy(), saved[i])
    counts = trainer.optimizer._all_index_update_counts
    assert {d: counts[d] for d in (1, 2, 3)} == {d: {i: 3 for i in saved} for d in (1, 2, 3)}


def test_float16_master_weights_resume_exactly(tmp_path):
    """multi_precision states (float32 master copy, float32 momentum) of a float16 network
    round-trip through the array format bit for bit."""
    net, trainer = _setup([mx.cpu(0)], dtype='float16')
    trainer._init_kvstore()
    # a float16 network cannot run a Dense on the CPU: give the states values directly
    opt = trainer._optimizer
    rs = np.random.RandomState(0)
    for i, p in enumerate(trainer._params):
        master, mom = opt.create_state_multi_precision(i, p.data())
        master[:] = rs.normal(size=master.shape)
        mom[:] = rs.normal(size=mom.shape)
        trainer._updaters[0].states[i] = (mom, master)
    opt._index_update_count.update({i: 7 for i in range(len(trainer._params))})
    opt.num_update = 7
    CheckpointManager(str(tmp_path)).save(0, net, trainer, {})
    net2, trainer2 = _setup([mx.cpu(2)], seed=5, dtype='float16')
    CheckpointManager(str(tmp_path)).load_latest().restore(net2, trainer2, [mx.cpu(2)])
    for i, (mom, master) in trainer._updaters[0].states.items():
        mom2, master2 = trainer2._updaters[0].states[i]
        assert mom2.dtype == np.float32 and master2.context == mx.cpu(2)
        np.testing.assert_array_equal(mom2.asnumpy(), mom.asnumpy())
        np.testing.assert_array_equal(master2.asnumpy(), master.asnumpy())
    assert trainer2.optimizer.num_update == 7


def test_states_of_another_dtype_are_refused_by_name(tmp_path):
    net, trainer = _setup([mx.cpu(0)])
    _step(net, trainer, [mx.cpu(0)], 0)
    CheckpointManager(str(tmp_path)).save(0, net, trainer, {})
    net16, trainer16 = _setup([mx.cpu(0)], dtype='float16')
    with pytest.raises(CheckpointError, match='another --dtype'):
        CheckpointManager(str(tmp_path)).load_latest().restore(net16, trainer16)


def test_eight_devices_save_the_trained_weights_bit_for_bit(tmp_path):
    """ResNet-18-D on 8 contexts (8 GPUs): the checkpoint holds device 0's copy exactly.
    (Gluon's save_parameters averages the 8 identical copies: sums of 3, 5, 7 copies round,
    and about a fifth of the arrays changed.)"""
    ctx = [mx.cpu(i) for i in range(8)]
    mx.random.seed(1)
    net = get_model('resnet18_v1d', classes=10)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net(mx.nd.zeros((1, 3, 32, 32), ctx=ctx[0]))
    rs = np.random.RandomState(0)
    for p in net.collect_params().values():   # non-trivial values, identical on every device
        p.set_data(mx.nd.array(rs.normal(size=p.shape) * 0.37, dtype=p.dtype))
    trainer = make_trainer(net, optimizer_params(_scheduler()), kvstore='device')
    manager = CheckpointManager(str(tmp_path))
    path = manager.save(0, net, trainer, {})
    first = _weights(net)
    saved = {k: v.asnumpy() for k, v in mx.nd.load(os.path.join(path, 'net.params')).items()}
    assert sorted(saved) == sorted(first)
    for key, value in first.items():
        np.testing.assert_array_equal(saved[key], value, err_msg=key)
    # the model's own save_parameters (GluonCV-compatible names) does the same
    net.save_parameters(str(tmp_path / 'direct.params'))
    direct = mx.nd.load(str(tmp_path / 'direct.params'))
    for key, value in first.items():
        np.testing.assert_array_equal(direct[key].asnumpy(), value, err_msg=key)
    # and Gluon's averaging would not have: the test can tell the difference
    averaged = {k: p._reduce().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    assert any(not np.array_equal(averaged[k], first[k]) for k in first)


@pytest.fixture(scope='module')
def float16_file(tmp_path_factory):
    """A ResNet-18-D cast to float16 and saved, as a GPU run's checkpoint is."""
    out = tmp_path_factory.mktemp('fp16')
    mx.random.seed(3)
    net = get_model('resnet18_v1d', classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.cast('float16')
    path = str(out / 'net.params')
    save_params(net, path)
    assert 'float16' in {np.dtype(v.dtype).name for v in mx.nd.load(path).values()}
    ref = {k: p.data().astype('float32').asnumpy()
           for k, p in net._collect_params_with_prefix().items()}
    return path, ref


def test_float16_file_loads_into_float32_models(float16_file):
    """Every loader of .params: the zoo loader (export, evaluate, predict, the distillation
    teacher) and the transfer backbone; values equal the float16 ones, as float32."""
    path, ref = float16_file
    net = load_model('resnet18_v1d', path)
    got = _weights(net)
    for key, value in ref.items():
        assert got[key].dtype == np.float32
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    backbone = load_backbone('resnet18_v1d', path, task='detection')
    np.testing.assert_array_equal(backbone.conv1[0].weight.data().asnumpy(),
                                  ref['conv1.0.weight'])
    out = net(mx.nd.ones((2, 3, 32, 32)))
    assert out.shape == (2, 10) and np.isfinite(out.asnumpy()).all()


def test_float32_file_loads_into_a_float16_model(tmp_path):
    mx.random.seed(2)
    net = get_model('resnet18_v1d', classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    save_params(net, str(tmp_path / 'fp32.params'))
    half = get_model('resnet18_v1d', classes=10)
    half.initialize()
    half(mx.nd.zeros((1, 3, 32, 32)))
    half.cast('float16')
    from gluon_tricks.model_zoo.io import load_params
    load_params(half, str(tmp_path / 'fp32.params'))
    w = half.conv1[0].weight.data()
    assert w.dtype == np.float16
    np.testing.assert_array_equal(w.asnumpy(),
                                  net.conv1[0].weight.data().asnumpy().astype(np.float16))


def test_a_checkpoint_directory_of_a_float16_run_opens_for_inference(float16_file, tmp_path):
    from gluon_tricks.inference import open_classifier
    path, ref = float16_file
    ckpt = tmp_path / 'checkpoint-epoch0001'
    ckpt.mkdir()
    (ckpt / 'net.params').write_bytes(open(path, 'rb').read())
    clf = open_classifier(str(ckpt), model='resnet18_v1d', input_size=32)
    logits = clf(np.zeros((1, 3, 32, 32), np.float32))
    assert logits.shape == (1, 10)


@pytest.mark.parametrize('kvstore', ['dist_sync', 'dist_device_sync', 'dist_async'])
def test_distributed_kvstore_is_refused_naming_horovod(kvstore):
    run = gconfig.RunConfig(kvstore=kvstore)
    with pytest.raises(ValueError, match='--horovod'):
        run.check()


def test_gpu_per_rank_visibility(monkeypatch):
    """A rank sees all GPUs of its host (gpu(local_rank)) or only its own (one visible GPU,
    CUDA_VISIBLE_DEVICES per rank: gpu(0)); anything else is refused naming both ways."""
    monkeypatch.delenv('GLUON_TRICKS_EMULATE_GPUS', raising=False)
    dist = DistContext()
    dist.horovod, dist.rank, dist.local_rank, dist.local_size = True, 5, 3, 4
    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 4)
    assert dist.devices(1) == [mx.gpu(3)]
    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 1)
    assert dist.devices(1) == [mx.gpu(0)]
    monkeypatch.setattr(mx.context, 'num_gpus', lambda: 2)
    with pytest.raises(ValueError, match='CUDA_VISIBLE_DEVICES'):
        dist.devices(1)
    monkeypatch.setenv('GLUON_TRICKS_EMULATE_GPUS', '4')
    assert dist.devices(1) == [mx.cpu(3)]
    single = DistContext()
    assert single.devices(8 // 2) == [mx.cpu(i) for i in range(4)]


def test_float16_gradients_are_divided_before_the_sum():
    """Horovod's gradient_predivide_factor: the number of ranks for float16 parameters (each
    gradient scaled by 1/size before the sum, nothing after), 1 for float32. The arithmetic:
    two float16 gradients of 40000 summed first overflow; divided first they average."""
    p16 = gluon.Parameter('w16', shape=(2,), dtype='float16')
    p32 = gluon.Parameter('w32', shape=(2,))
    assert predivide_factor([p32, p16], 8) == 8.0
    assert predivide_factor([p32], 8) == 1.0
    assert predivide_factor([p16], 1) == 1.0
    g = np.float16(40000)
    assert not np.isfinite(np.float16(g + g))
    size = predivide_factor([p16], 2)
    pre = np.float16(g / np.float16(size))
    assert np.float16(pre + pre) * np.float16(size / size) == np.float16(40000)
