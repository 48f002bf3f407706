"""Model EMA (--model-ema): the recursion by hand, the device-only update, evaluation and
checkpoints, and exact resume."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

from gluon_tricks.ema import ModelEMA

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
EXACT = dict(os.environ, MXNET_MKLDNN_ENABLED='0', OMP_NUM_THREADS='1', PYTHONPATH=REPO)


def test_the_recursion_by_hand():
    """decay 0.5 and weights 1 -> 3 -> 5 -> 9 after the start at 1:
    ema = 1, then 0.5*1 + 0.5*3 = 2, 0.5*2 + 0.5*5 = 3.5, 0.5*3.5 + 0.5*9 = 6.25."""
    net = gluon.nn.Dense(2, in_units=2)
    net.initialize()
    for p in net.collect_params().values():
        p.set_data(mx.nd.ones(p.shape))
    ema = ModelEMA(net, decay=0.5)
    for value, expected in ((3, 2.0), (5, 3.5), (9, 6.25)):
        for p in net.collect_params().values():
            p.set_data(mx.nd.full(p.shape, value))
        ema.update()
        for s in ema.shadow.values():
            np.testing.assert_array_equal(s.asnumpy(), np.full(s.shape, expected, np.float32))
    assert ema.num_updates == 3


def test_update_reads_nothing_back_to_the_host(monkeypatch):
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    ema = ModelEMA(net, decay=0.9)
    reads = []
    for name in ('asnumpy', 'asscalar', 'wait_to_read'):
        original = getattr(mx.nd.NDArray, name)
        monkeypatch.setattr(mx.nd.NDArray, name,
                            lambda self, *a, _o=original, _n=name, **k: (reads.append(_n),
                                                                          _o(self, *a, **k))[1])
    for _ in range(5):
        ema.update()
    assert reads == []


def test_swap_exchanges_and_restores():
    net = gluon.nn.Dense(2, in_units=2)
    net.initialize(mx.init.Constant(1.0))
    ema = ModelEMA(net, decay=0.0)
    net.weight.set_data(mx.nd.full((2, 2), 7.0))
    ema.update()                                        # decay 0: ema = weights = 7
    net.weight.set_data(mx.nd.full((2, 2), 2.0))
    ema.swap()
    assert (net.weight.data().asnumpy() == 7).all()
    ema.swap()
    assert (net.weight.data().asnumpy() == 2).all()
    with pytest.raises(ValueError, match='--model-ema-decay'):
        ModelEMA(net, decay=1.0)


def _train(*args):
    proc = subprocess.run([sys.executable, TRAIN] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=600, env=EXACT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _flags(rec_dir, out, epochs):
    return ['--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec', '--input-size', 32,
            '--crop-ratio', 0.8, '--batch-size', 16, '-j', 0, '--num-epochs', epochs,
            '--warmup-iters', 2, '--lr-mode', 'step', '--lr-decay-epoch', 1, '--model-ema',
            '--model-ema-decay', 0.9, '--save-dir', out, '--progress', 'log']


@pytest.mark.subprocess
def test_ema_is_evaluated_checkpointed_and_resumed_exactly(rec_dir, tmp_path):
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    _train(*_flags(rec_dir, full, 2))
    _train(*_flags(rec_dir, cut, 1))
    proc = _train('--save-dir', cut, '--resume', '--num-epochs', 2)
    assert 'resumed from' in proc.stdout
    final = 'checkpoint-epoch0002'
    a = mx.nd.load(str(full / final / 'net-ema.params'))
    b = mx.nd.load(str(cut / final / 'net-ema.params'))
    net = mx.nd.load(str(full / final / 'net.params'))
    assert sorted(a) == sorted(b) == sorted(net)      # the model's keys: a plain params file
    for key in a:
        np.testing.assert_array_equal(a[key].asnumpy(), b[key].asnumpy(), err_msg=key)
    assert any(not np.array_equal(a[k].asnumpy(), net[k].asnumpy()) for k in a)
    records = [json.loads(line) for line in open(str(full / 'metrics.jsonl'))]
    assert all('top1_ema' in r and 0 <= r['top1_ema'] <= 1 for r in records)
    state = json.loads((full / final / 'state.json').read_text())
    assert state['state']['stateful']['model_ema']['num_updates'] == 20   # 2 x 10 batches
    assert 'net-ema.params' in state['sha256']
