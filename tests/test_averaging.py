"""scripts/classification/average_checkpoints.py and gluon_tricks.averaging: the mean of
several checkpoints' parameters, BatchNorm statistics included, as a plain params file.

Small hand-computed files check the arithmetic (float64 sums, each array's dtype kept);
a real 6-epoch run with ``--keep-checkpoints 4`` checks which checkpoints ``--last`` and
``--best`` take, and that the result loads into our model and GluonCV's.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.averaging import AveragingError, average_params, select_checkpoints
from gluon_tricks.checkpoint import CheckpointManager

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')
SCRIPT = os.path.join(SCRIPTS, 'average_checkpoints.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)


def _module():
    spec = importlib.util.spec_from_file_location('average_checkpoints', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cli(*args):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=300, env=ENV)


def _save(path, arrays):
    mx.nd.save(str(path), {k: mx.nd.array(np.asarray(v), dtype=np.asarray(v).dtype)
                           for k, v in arrays.items()})
    return str(path)


def _load(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


# -- arithmetic on small files -----------------------------------------------------------------

def test_the_average_of_identical_files_is_the_file_bit_for_bit(tmp_path):
    rng = np.random.RandomState(0)
    arrays = {'conv0.weight': rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
              'bn0.running_mean': rng.normal(size=4).astype(np.float32),
              'bn0.running_var': rng.uniform(0.5, 2, size=4).astype(np.float32),
              'half.weight': rng.normal(size=(3, 5)).astype(np.float16)}
    a = _save(tmp_path / 'a.params', arrays)
    copies = [shutil.copy(a, str(tmp_path / ('copy%d.params' % i))) for i in range(3)]
    _module().main([a] + copies + ['--out', str(tmp_path / 'avg.params')])
    with open(a, 'rb') as f, open(str(tmp_path / 'avg.params'), 'rb') as g:
        assert f.read() == g.read()


def test_two_known_files_average_to_their_hand_computed_mean(tmp_path):
    """BatchNorm statistics are averaged like the weights; float16 is summed in float64
    (65504 + 65504 overflows float16) and written as float16."""
    a = _save(tmp_path / 'a.params', {
        'conv.weight': np.array([[1, 2], [3, 4]], np.float32),
        'bn.running_mean': np.array([0, 1], np.float32),
        'bn.running_var': np.array([1, 4], np.float32),
        'fc.weight': np.array([65504, 1], np.float16)})
    b = _save(tmp_path / 'b.params', {
        'conv.weight': np.array([[3, 2], [1, 0]], np.float32),
        'bn.running_mean': np.array([2, 3], np.float32),
        'bn.running_var': np.array([3, 2], np.float32),
        'fc.weight': np.array([65504, 2], np.float16)})
    out = str(tmp_path / 'avg.params')
    _module().main([a, b, '--out', out])
    got = _load(out)
    assert sorted(got) == ['bn.running_mean', 'bn.running_var', 'conv.weight', 'fc.weight']
    np.testing.assert_array_equal(got['conv.weight'], [[2, 2], [2, 2]])
    np.testing.assert_array_equal(got['bn.running_mean'], [1, 2])
    np.testing.assert_array_equal(got['bn.running_var'], [2, 3])
    np.testing.assert_array_equal(got['fc.weight'], [65504, 1.5])
    assert got['fc.weight'].dtype == np.float16 and got['conv.weight'].dtype == np.float32


def test_float32_files_are_summed_in_float64(tmp_path):
    """(1e8 + 1 - 1e8) / 3 is 0 in float32 arithmetic, 1/3 in float64."""
    paths = [_save(tmp_path / ('%d.params' % i), {'w': np.array([v], np.float32)})
             for i, v in enumerate([1e8, 1, -1e8])]
    np.testing.assert_array_equal(average_params(paths)['w'].asnumpy(), [np.float32(1 / 3.)])


@pytest.mark.subprocess
def test_files_of_other_keys_shapes_or_dtypes_are_refused_by_name(tmp_path):
    a = _save(tmp_path / 'a.params', {'w': np.ones((2, 3), np.float32),
                                      'b': np.zeros(3, np.float32)})
    keys = _save(tmp_path / 'keys.params', {'w': np.ones((2, 3), np.float32),
                                            'c': np.zeros(3, np.float32)})
    shape = _save(tmp_path / 'shape.params', {'w': np.ones((3, 3), np.float32),
                                              'b': np.zeros(3, np.float32)})
    dtype = _save(tmp_path / 'dtype.params', {'w': np.ones((2, 3), np.float16),
                                              'b': np.zeros(3, np.float32)})
    with pytest.raises(AveragingError, match=r'keys\.params.*1 key\(s\) only in .*a\.params '
                                             r'\(b\).*only in .*keys\.params \(c\)'):
        average_params([a, keys])
    with pytest.raises(AveragingError, match=r'shape\.params.*w: \(2, 3\) vs \(3, 3\)'):
        average_params([a, shape])
    with pytest.raises(AveragingError, match=r'dtype\.params.*w: float32 vs float16'):
        average_params([a, dtype])
    proc = _cli(a, shape, '--out', tmp_path / 'avg.params')
    assert proc.returncode != 0
    assert 'shape.params' in proc.stderr and 'a.params' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'avg.params').exists()


# -- choosing checkpoints of a run -------------------------------------------------------------

def _fake_run(save_dir, top1, keep_last=10):
    """A run directory of ``len(top1)`` end-of-epoch checkpoints of a tiny network whose
    weights are the epoch number, each recording its validation top-1 as training does."""
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    manager = CheckpointManager(str(save_dir), keep_last=keep_last)
    best = None
    for epoch, value in enumerate(top1, 1):
        net.weight.set_data(mx.nd.full((2, 3), epoch))
        is_best = best is None or value > best
        best = value if is_best else best
        manager.save(epoch, net, state={'metrics': {'epoch': epoch, 'top1': value},
                                        'best': best, 'best_key': 'top1'}, is_best=is_best)
    return str(save_dir)


def test_best_takes_the_highest_top1_and_the_best_copy_of_a_pruned_epoch(tmp_path):
    top1 = [0.1, 0.5, 0.45, 0.2, 0.4, 0.3]
    run = _fake_run(tmp_path / 'run', top1, keep_last=4)
    kept = sorted(int(d[len('checkpoint-epoch'):]) for d in os.listdir(run)
                  if d.startswith('checkpoint-epoch'))
    assert kept == list(range(len(top1) - 3, len(top1) + 1)), \
        'CheckpointManager(keep_last=4) kept the epochs %s' % kept
    best_epoch = 1 + int(np.argmax(top1))
    candidates = set(kept) | {best_epoch}
    want = sorted(sorted(candidates, key=lambda e: top1[e - 1])[-3:])
    chosen, note = select_checkpoints(run, best=3)
    assert [e.epoch for e in chosen] == want and not note
    assert [e.metric for e in chosen] == [top1[e - 1] for e in want]
    assert best_epoch in want and best_epoch not in kept   # taken from checkpoint-best
    out = str(tmp_path / 'best3.params')
    _module().main(['--run', run, '--best', '3', '--out', out])
    np.testing.assert_allclose(_load(out)['weight'], np.full((2, 3), np.mean(want)), rtol=1e-7)


def test_top1_from_metrics_jsonl_and_mid_epoch_checkpoints_left_out(tmp_path):
    """Checkpoints that record no top-1 take it from the run's metrics.jsonl (the last line
    of their epoch); a mid-epoch checkpoint (the latest here) is never averaged."""
    run = str(tmp_path / 'run')
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    manager = CheckpointManager(run, keep_last=10)
    top1 = [0.2, 0.6, 0.4, 0.5]
    os.makedirs(run)
    with open(os.path.join(run, 'metrics.jsonl'), 'w') as f:
        for epoch, value in enumerate(top1, 1):
            net.weight.set_data(mx.nd.full((2, 3), epoch))
            manager.save(epoch, net, state={})
            f.write(json.dumps({'epoch': epoch, 'top1': value - 0.1}) + '\n')   # superseded
            f.write(json.dumps({'epoch': epoch, 'top1': value}) + '\n')
    manager.save(len(top1), net, state={}, batch=3)      # 3 batches into the next epoch
    assert any('-batch' in d for d in os.listdir(run))
    chosen, _ = select_checkpoints(run, best=2)
    want = sorted(sorted(range(1, 5), key=lambda e: top1[e - 1])[-2:])
    assert [e.epoch for e in chosen] == want
    assert [e.metric for e in chosen] == [top1[e - 1] for e in want]
    chosen, _ = select_checkpoints(run, last=2)
    assert [(e.epoch, e.batch, e.kind) for e in chosen] == [(3, 0, 'epoch'), (4, 0, 'epoch')]


@pytest.mark.subprocess
def test_fewer_than_two_checkpoints_says_what_the_run_holds(tmp_path):
    run = _fake_run(tmp_path / 'run', [0.3])
    with pytest.raises(AveragingError, match=r'--last 3: found 1 end-of-epoch checkpoint.*'
                                             r'checkpoint-epoch0001 \(top1 0.3000\)'):
        select_checkpoints(run, last=3)
    proc = _cli('--run', run, '--best', 2)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert '--best 2: found 1' in proc.stderr and 'checkpoint-epoch0001' in proc.stderr
    assert '--keep-checkpoints' in proc.stderr
    with pytest.raises(SystemExit):
        _module().main([os.path.join(run, 'checkpoint-epoch0001'), '--out',
                        str(tmp_path / 'x.params')])


def test_the_output_must_not_go_into_a_checkpoint_directory(tmp_path):
    run = _fake_run(tmp_path / 'run', [0.3, 0.4])
    with pytest.raises(SystemExit):
        _module().main(['--run', run, '--last', '2', '--out',
                        os.path.join(run, 'checkpoint-epoch0002', 'avg.params')])
    assert not os.path.exists(os.path.join(run, 'checkpoint-epoch0002', 'avg.params'))


# -- a real training run ------------------------------------------------------------------------

@pytest.fixture(scope='module')
def real_run(rec_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('avg') / 'run'
    proc = subprocess.run(
        [sys.executable, os.path.join(SCRIPTS, 'train_imagenet.py'), '--model', 'resnet18_v1b',
         '--data-dir', rec_dir, '--use-rec', '--input-size', '32', '--crop-ratio', '0.8',
         '--batch-size', '16', '-j', '0', '--num-epochs', '6', '--warmup-epochs', '1',
         '--lr-mode', 'cosine', '--save-dir', str(out), '--progress', 'log',
         '--keep-checkpoints', '4'], capture_output=True, text=True, timeout=900, env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return str(out)


def _metrics(run):
    with open(os.path.join(run, 'metrics.jsonl')) as f:
        return {r['epoch']: r['top1'] for r in map(json.loads, f)}


def _epoch_params(run, epoch):
    for name in os.listdir(run):
        path = os.path.join(run, name)
        if name == 'checkpoint-epoch%04d' % epoch or (name.startswith('.checkpoint-best-') and
                                                      json.load(open(os.path.join(
                                                          path, 'state.json')))['epoch'] == epoch):
            return _load(os.path.join(path, 'net.params'))
    raise AssertionError('no checkpoint of epoch %d in %s' % (epoch, os.listdir(run)))


def _assert_mean(out, run, epochs):
    got = _load(out)
    inputs = [_epoch_params(run, e) for e in epochs]
    assert sorted(got) == sorted(inputs[0])
    for key, value in got.items():
        want = np.mean([p[key].astype(np.float64) for p in inputs], axis=0).astype(value.dtype)
        np.testing.assert_array_equal(value, want, err_msg=key)
    stats = [k for k in got if k.endswith('running_mean')]
    assert stats and any(not np.array_equal(got[k], inputs[-1][k]) for k in stats)


@pytest.mark.subprocess
def test_last_averages_the_four_newest_epochs_and_loads_in_ours_and_gluoncv(real_run, tmp_path):
    epochs = sorted(_metrics(real_run))[-4:]
    out = str(tmp_path / 'last4.params')
    path, entries = _module().main(['--run', real_run, '--last', '4', '--out', out])
    assert [e.epoch for e in entries] == epochs, \
        'the run keeps %s' % sorted(os.listdir(real_run))
    _assert_mean(out, real_run, epochs)
    from gluon_tricks.model_zoo import get_model
    ours = get_model('resnet18_v1b', classes=10)
    ours.load_parameters(out)
    gluoncv = pytest.importorskip('gluoncv')
    theirs = gluoncv.model_zoo.get_model('resnet18_v1b', classes=10)
    theirs.load_parameters(out)


@pytest.mark.subprocess
def test_best_averages_the_highest_top1_of_the_run(real_run, tmp_path):
    top1 = _metrics(real_run)
    best_epoch = max(sorted(top1), key=lambda e: (top1[e], -e))    # the first best, as training
    candidates = set(sorted(top1)[-4:]) | {best_epoch}
    want = sorted(sorted(candidates, key=lambda e: (top1[e], e))[-2:])
    out = os.path.join(real_run, 'average-best2.params')
    _, entries = _module().main(['--run', real_run, '--best', '2'])
    assert [e.epoch for e in entries] == want
    assert [e.metric for e in entries] == pytest.approx([top1[e] for e in want])
    _assert_mean(out, real_run, want)


@pytest.mark.subprocess
def test_identical_checkpoints_give_the_checkpoint_back(real_run, tmp_path):
    original = os.path.join(real_run, 'checkpoint-epoch%04d' % max(_metrics(real_run)),
                            'net.params')
    copy = shutil.copy(original, str(tmp_path / 'copy.params'))
    out = str(tmp_path / 'same.params')
    _module().main([original, copy, '--out', out])
    with open(original, 'rb') as f, open(out, 'rb') as g:
        assert f.read() == g.read()


@pytest.mark.subprocess
def test_a_damaged_checkpoint_is_refused_by_name(real_run, tmp_path):
    copy = str(tmp_path / 'run')
    shutil.copytree(real_run, copy, symlinks=True)
    last = max(_metrics(real_run))
    params = os.path.join(copy, 'checkpoint-epoch%04d' % last, 'net.params')
    data = bytearray(open(params, 'rb').read())
    data[len(data) // 2] ^= 0xFF
    with open(params, 'wb') as f:
        f.write(bytes(data))
    proc = _cli('--run', copy, '--last', 2, '--out', tmp_path / 'avg.params')
    assert proc.returncode != 0
    assert 'checkpoint-epoch%04d/net.params is damaged' % last in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not (tmp_path / 'avg.params').exists()
