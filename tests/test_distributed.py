"""The distributed layer (gluon_tricks.distributed) with real Horovod ranks.

Two ranks are started with ``horovodrun -np 2 --gloo`` on CPU (tests/helpers/dist_worker.py
holds the worker code); every launch has a timeout, and a launch that runs past it is
terminated and fails its test instead of blocking the suite.  Horovod is part of the test
environment (``make test`` builds it with ``make horovod``): when it is missing these tests
fail.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import mxnet as mx
import pytest
from mxnet import autograd, gluon

from gluon_tricks.distributed import DistContext

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, 'tests', 'helpers', 'dist_worker.py')
LAUNCH_SH = os.path.join(ROOT, 'scripts', 'classification', 'horovod_launch.sh')
HOROVODRUN = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
LAUNCH_TIMEOUT = 120     # seconds; one launch takes about 5 s here
FAIL_DEADLINE = 60       # a failing job must be over well before this


def _env(**extra):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=ROOT + os.pathsep + env.get('PYTHONPATH', ''))
    env.pop('HOROVOD_RANK', None)
    env.pop('HOROVOD_SIZE', None)
    env.update(extra)
    return env


def _run(cmd, timeout=LAUNCH_TIMEOUT, **env):
    """Run ``cmd`` in its own session; returns (returncode, combined output, seconds).
    On timeout the whole session gets SIGTERM (horovodrun then terminates its workers),
    then SIGKILL, and the test fails."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(**env), cwd=ROOT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        pytest.fail('%s did not finish within %d s (hung ranks?); output:\n%s'
                    % (' '.join(cmd), timeout, out[-5000:]))
    return proc.returncode, out, time.time() - start


def _horovodrun(*worker_args, timeout=LAUNCH_TIMEOUT):
    assert os.path.exists(HOROVODRUN), \
        'horovodrun not found next to %s: build Horovod with `make horovod`' % sys.executable
    return _run([HOROVODRUN, '-np', '2', '--gloo', sys.executable, WORKER] + list(worker_args),
                timeout=timeout)


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    """One 2-rank launch of the `ranks` scenario; per-rank JSON results and the output dir."""
    out = str(tmp_path_factory.mktemp('ranks'))
    rc, text, _ = _horovodrun('ranks', out)
    assert rc == 0, text[-5000:]
    res = [json.load(open(os.path.join(out, 'rank%d.json' % r))) for r in range(2)]
    return out, res


@pytest.fixture(scope='module')
def single(tmp_path_factory):
    """The same loop in one process (no horovodrun): batch 2b on one device and b on 2 devices."""
    out = str(tmp_path_factory.mktemp('single'))
    rc, text, _ = _run([sys.executable, WORKER, 'single', out])
    assert rc == 0, text[-5000:]
    return out, json.load(open(os.path.join(out, 'single.json')))


# ---------------------------------------------------------------------------- real ranks
@pytest.mark.subprocess
def test_rank_topology_object_broadcast_and_barrier(ranks):
    _, res = ranks
    assert [r['rank'] for r in res] == [0, 1]
    assert [r['is_master'] for r in res] == [True, False]
    for r in res:
        assert (r['size'], r['local_size']) == (2, 2)
        assert r['local_rank'] == r['rank']
        assert r['shard'] == [2, r['rank']]
        assert r['devices'] == ['cpu(0)']
        assert (r['local_batch'], r['global_batch']) == (8, 16)
        # rank 0's object everywhere
        assert r['bcast_obj'] == {'epoch': 7, 'from_rank': 0, 'arr': [0, 1, 2, 3, 4]}
    # rank 1 reached the barrier 1.5 s late: rank 0 must have waited for it
    assert res[0]['barrier_wait'] > 1.0, res[0]['barrier_wait']
    assert res[1]['barrier_wait'] < 1.0


@pytest.mark.subprocess
def test_ranks_hold_identical_parameters(ranks):
    """Deferred-init parameters broadcast before the first forward, then DistributedTrainer
    steps on different data per rank: both ranks hold bitwise identical parameters."""
    out, res = ranks
    assert res[0]['deferred_before_broadcast'] and \
        res[0]['deferred_before_broadcast'] == res[1]['deferred_before_broadcast']
    # the ranks really saw different data
    assert not np.allclose(res[0]['sync_losses'], res[1]['sync_losses'])
    init = [_load(os.path.join(out, 'sync_init_rank%d.npz' % r)) for r in range(2)]
    final = [_load(os.path.join(out, 'sync_final_rank%d.npz' % r)) for r in range(2)]
    assert sorted(init[0]) == sorted(final[1]) and len(init[0]) == 4
    for k in init[0]:
        np.testing.assert_array_equal(init[0][k], init[1][k], err_msg='after broadcast: ' + k)
        np.testing.assert_array_equal(final[0][k], final[1][k], err_msg='after training: ' + k)
        assert np.abs(final[0][k] - init[0][k]).max() > 1e-3, 'parameter %s did not train' % k


@pytest.mark.subprocess
def test_two_ranks_equal_one_process_with_double_batch(ranks, single):
    """2 ranks x batch b == 1 process x batch 2b == 1 process x 2 devices x b, on the same
    samples (NAG, weight decay with no-bias-decay, 6 steps; ranks start from different seeds
    and are made equal by the broadcast)."""
    out_h, res = ranks
    out_s, sres = single
    # the broadcast mattered: rank 1 started elsewhere, ends up on rank 0 / the single process
    one = sres['one_device']
    assert abs(res[1]['checksum_before_broadcast'] - one['checksum_after_broadcast']) > 1e-3
    for r in res:
        assert r['checksum_after_broadcast'] == pytest.approx(one['checksum_after_broadcast'],
                                                              abs=1e-9)
    # per-step loss sums: rank 0 + rank 1 == the single process
    np.testing.assert_allclose(np.add(res[0]['train_losses'], res[1]['train_losses']),
                               one['train_losses'], rtol=1e-5)
    h0 = _load(os.path.join(out_h, 'equiv_hvd_rank0.npz'))
    h1 = _load(os.path.join(out_h, 'equiv_hvd_rank1.npz'))
    s = _load(os.path.join(out_s, 'equiv_single_rank0.npz'))
    m = _load(os.path.join(out_s, 'equiv_multidev_rank0.npz'))
    assert sorted(h0) == sorted(s) == sorted(m) and len(s) == 10
    moved = 0.0
    for k in s:
        np.testing.assert_array_equal(h0[k], h1[k], err_msg=k)
        np.testing.assert_allclose(h0[k], s[k], rtol=0, atol=1e-5, err_msg='2 ranks vs 1: ' + k)
        np.testing.assert_allclose(m[k], s[k], rtol=0, atol=1e-5, err_msg='2 devs vs 1: ' + k)
        moved = max(moved, float(np.abs(s[k]).max()))
    # a gradient scaled by the rank count (step(global batch), or sum instead of mean)
    # would be far outside the tolerance: the update size is much larger than 1e-5
    assert moved > 0.1


@pytest.mark.subprocess
def test_allreduce_sum_of_validation_counts(ranks, single):
    _, res = ranks
    _, sres = single
    correct, total = sres['one_device']['val_local']
    assert total == 50 and 0 < correct < 50
    assert [r['val_local'][1] for r in res] == [25, 25]
    assert np.add(res[0]['val_local'], res[1]['val_local']).tolist() == [correct, total]
    for r in res:
        assert r['val_sum'] == [correct, total]
        assert r['val_loss_sum'] == pytest.approx(sres['one_device']['val_loss_sum'], rel=1e-5)


@pytest.mark.subprocess
def test_fp16_multi_precision_and_wd_mult_survive_distributed_trainer(ranks, single):
    """float16 weights with float32 master copies; wd_mult = 0 keeps a weight free of decay.
    Gradients 0.25 (rank 0) and 0.5 (rank 1) average to 0.375; NAG, lr 0.5, momentum 0.9,
    wd 0.1 from 1.0: w = 1 - 0.5 * (0.375 + 0.1) * 1.9 = 0.54875 (float16: 0.548828125)."""
    _, res = ranks
    for r in res:
        assert r['trainer_class'] == 'DistributedTrainer'
        assert r['fp16_w_dtype'] == 'float16' and r['master_dtypes'] == ['float32', 'float32']
        assert r['fp16_w'] == [float(np.float16(0.54875))] * 4
        assert r['fp16_b'] == [1.0] * 4
    fp = single[1]['fp16']   # one process, gradient 0.25: 1 - 0.5 * 0.35 * 1.9 = 0.6675
    assert fp['trainer_class'] == 'Trainer' and fp['master_dtypes'] == ['float32', 'float32']
    assert fp['fp16_w'] == [float(np.float16(0.6675))] * 4 and fp['fp16_b'] == [1.0] * 4


@pytest.mark.subprocess
@pytest.mark.parametrize('thread', [False, True], ids=['raise', 'raise-with-live-thread'])
def test_failing_rank_stops_the_whole_job(tmp_path, thread):
    """Rank 1 raises at step 2 while rank 0 goes on training: the launch must exit non-zero
    well within the timeout, with the error and its rank in the output.  With a live
    non-daemon thread on the failing rank this only holds thanks to run_main."""
    args = ['fail', str(tmp_path)] + (['--thread'] if thread else [])
    rc, text, seconds = _horovodrun(*args, timeout=FAIL_DEADLINE)   # a hang fails the test
    assert rc != 0, text[-5000:]
    assert '[gluon_tricks] rank 1/2 failed: RuntimeError: injected failure at step 2' in text, \
        text[-5000:]
    assert 'finished without error' not in text


# ---------------------------------------------------------------------------- one process
def _net(ctx):
    net = gluon.nn.Dense(3, in_units=4, bias_initializer='ones')
    net.initialize(mx.init.Constant(1.0), ctx=ctx)
    return net


def test_single_process_context():
    dist = DistContext(horovod=False)
    assert (dist.rank, dist.size, dist.local_rank, dist.local_size) == (0, 1, 0, 1)
    assert dist.is_master and not dist.is_distributed
    assert dist.shard() == (1, 0)
    assert dist.devices(0) == [mx.cpu()]
    visible = mx.context.num_gpus()
    if visible == 0:
        with pytest.raises(ValueError, match='GPU'):
            dist.devices(1)
    else:
        assert dist.devices(visible) == [mx.gpu(i) for i in range(visible)]
    with pytest.raises(ValueError):
        dist.devices(-1)
    assert dist.global_batch_size(128, 8) == 1024
    assert dist.local_batch_size(128, 8) == 1024
    # identity collectives
    state = {'epoch': 3}
    assert dist.broadcast_object(state) is state
    counts = dist.allreduce_sum([7, 10])
    assert isinstance(counts, np.ndarray) and counts.dtype == np.int64
    assert counts.tolist() == [7, 10]
    assert dist.allreduce_sum(2.5).dtype == np.float64 and float(dist.allreduce_sum(2.5)) == 2.5
    assert dist.allreduce_sum(np.ones((2, 3), 'float32')).shape == (2, 3)
    dist.barrier()
    net = _net(mx.cpu())
    before = net.weight.data().asnumpy().copy()
    dist.broadcast_parameters(net.collect_params())
    dist.broadcast_parameters(net)
    np.testing.assert_array_equal(net.weight.data().asnumpy(), before)


def test_single_process_trainers_and_no_bias_decay():
    dist = DistContext(horovod=False)
    # one device: no kvstore
    net = _net(mx.cpu())
    net.bias.wd_mult = 0.0   # set before the trainer (the rule)
    tr = dist.make_trainer(net.collect_params(), 'nag',
                           {'learning_rate': 0.5, 'momentum': 0.9, 'wd': 0.1})
    assert type(tr) is gluon.Trainer and tr._kvstore_params['kvstore'] is None
    with autograd.record():
        y = (net(mx.nd.zeros((2, 4))) * 0).sum()
    y.backward()
    tr.step(2)
    # zero gradient: the weight decays (1 - 0.5 * 0.1 * 1.9 = 0.905), the bias does not
    np.testing.assert_allclose(net.weight.data().asnumpy(), 0.905, rtol=1e-6)
    np.testing.assert_allclose(net.bias.data().asnumpy(), 1.0)
    # wd_mult is read at every update in MXNet 1.9.1 (also after the trainer exists)
    net.weight.wd_mult = 0.0
    with autograd.record():
        y = (net(mx.nd.zeros((2, 4))) * 0).sum()
    y.backward()
    # reference: MXNet's own NAG op on copies of the weight and its momentum, wd 0 vs 0.1
    state = tr._updaters[0].states[tr._param2idx[net.weight.name]]
    ref = {}
    for wd in (0.0, 0.1):
        w_ref, m_ref = net.weight.data().copy(), state.copy()
        mx.nd.nag_mom_update(w_ref, mx.nd.zeros_like(w_ref), m_ref, out=w_ref, lr=0.5,
                             wd=wd, momentum=0.9, rescale_grad=0.5)
        ref[wd] = w_ref.asnumpy()
    assert np.abs(ref[0.0] - ref[0.1]).max() > 1e-3
    tr.step(2)
    np.testing.assert_allclose(net.weight.data().asnumpy(), ref[0.0], rtol=1e-6)
    # two devices: the kvstore is kept and gradients are summed over devices
    net2 = _net([mx.cpu(0), mx.cpu(1)])
    tr2 = dist.make_trainer(net2, 'sgd', {'learning_rate': 1.0})
    assert tr2._kvstore_params == {'kvstore': 'device', 'update_on_kvstore': False}
    xs = [mx.nd.ones((1, 4), ctx=mx.cpu(0)), mx.nd.ones((1, 4), ctx=mx.cpu(1)) * 3]
    with autograd.record():
        ls = [net2(x).sum() for x in xs]
    autograd.backward(ls)
    tr2.step(dist.local_batch_size(1, 2))   # mean gradient of x = (1 + 3) / 2 = 2
    for c in (mx.cpu(0), mx.cpu(1)):
        np.testing.assert_allclose(net2.weight.data(c).asnumpy(), 1.0 - 2.0, rtol=1e-6)
    assert tr2._kvstore is not None


def test_log_only_on_master(capsys):
    dist = DistContext(horovod=False)
    dist.log('hello from master')
    dist.rank = 1   # pretend to be another rank
    dist.log('not shown')
    dist.log('shown everywhere', all_ranks=True)
    out = capsys.readouterr().out
    assert 'hello from master' in out and 'not shown' not in out and 'shown everywhere' in out


def test_missing_horovod_says_how_to_build_it(monkeypatch):
    monkeypatch.setitem(sys.modules, 'horovod.mxnet', None)   # makes the import fail
    with pytest.raises(ImportError, match='make horovod'):
        DistContext(horovod=True)


_RUN_MAIN_SNIPPET = r'''
import logging, sys, threading, time
from gluon_tricks.distributed import DistContext
from gluon_tricks.errors import run_main
mode = sys.argv[1]
logging.basicConfig(filename=sys.argv[2], level=logging.INFO)   # like --logging-file
def main():
    if mode == 'ok':
        d = DistContext(horovod=True)          # outside horovodrun: a world of one
        print('OK', d.rank, d.size, d.allreduce_sum([3, 4]).tolist(), d.shard(), flush=True)
        d.barrier(); d.broadcast_parameters({}); return 5
    if mode == 'thread':
        threading.Thread(target=time.sleep, args=(3600,)).start()
    if mode == 'exit3':
        sys.exit(3)
    if mode == 'bug':
        raise RuntimeError('internal bug')
    if mode == 'valueerror':
        raise ValueError('a bug of ours')
    from gluon_tricks.errors import UserError
    raise UserError('bad input')
print('RET', run_main(main), flush=True)
'''


@pytest.mark.subprocess
@pytest.mark.parametrize('mode,code', [('ok', 0), ('raise', 1), ('thread', 1), ('exit3', 3),
                                       ('bug', 1), ('valueerror', 1)])
def test_run_main(tmp_path, mode, code):
    # failures report the rank the launcher put in the environment (no Horovod initialized)
    env = {} if mode == 'ok' else {'HOROVOD_RANK': '3', 'HOROVOD_SIZE': '4'}
    log = str(tmp_path / 'train.log')
    rc, out, seconds = _run([sys.executable, '-c', _RUN_MAIN_SNIPPET, mode, log], timeout=60,
                            **env)
    assert rc == code, out
    logged = open(log).read() if os.path.exists(log) else ''
    assert ('failed:' in logged) == (code != 0), logged
    if mode == 'ok':
        assert 'OK 0 1 [3, 4] (1, 0)' in out and 'RET 5' in out
    elif mode == 'exit3':
        assert '[gluon_tricks] rank 3/4 failed: SystemExit: 3' in out
    elif mode in ('bug', 'valueerror'):
        # an unexpected error keeps its traceback, a ValueError of our code too
        assert ('[gluon_tricks] rank 3/4 failed: RuntimeError: internal bug' in out or
                '[gluon_tricks] rank 3/4 failed: ValueError: a bug of ours' in out)
        assert 'Traceback' in out and 'RET' not in out
    else:
        # a user error (bad flag, file or data) is reported without a traceback
        assert '[gluon_tricks] rank 3/4 failed: UserError: bad input' in out
        assert 'Traceback' not in out and 'GLUON_TRICKS_TRACEBACK=1' in out
        assert 'RET' not in out
        assert seconds < 30   # the live non-daemon thread does not keep it alive


# ---------------------------------------------------------------------------- launcher
@pytest.mark.subprocess
def test_launch_script_dry_run():
    rc, out, _ = _run(['bash', LAUNCH_SH, '--label-smoothing', '--mixup'], timeout=30,
                      DRY_RUN='1', DATA_DIR='/data/rec')
    assert rc == 0, out
    args = out.split()
    assert args[:5] == ['horovodrun', '-np', '8', '-H', 'localhost:8']
    cmd = ' '.join(args)
    for piece in ('train_imagenet.py --horovod', '--batch-size 128', '--num-gpus 1',
                  '--dtype float16', '--lr-mode cosine', '--warmup-epochs 5', '--last-gamma',
                  '--no-wd', '--use-rec', '--rec-train /data/rec/train.rec',
                  '--rec-val-idx /data/rec/val.idx'):
        assert piece in cmd, piece
    assert args[-2:] == ['--label-smoothing', '--mixup']
    assert '--lr ' not in cmd
    rc, out, _ = _run(['bash', LAUNCH_SH], timeout=30, DRY_RUN='1', NP='16',
                      HOSTFILE='hosts', LR='0.8', BATCH_SIZE='64')
    assert rc == 0, out
    args = out.split()
    assert args[:5] == ['horovodrun', '-np', '16', '-hostfile', 'hosts']
    assert '--lr 0.8' in out and '--batch-size 64' in out
