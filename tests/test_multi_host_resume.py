"""Horovod --resume where users run it: two real ranks, rank 1 on device 1 (a GPU with local
rank 1, emulated by ``mx.cpu(1)``), and a save directory that only rank 0 sees (a second
host without a shared file system: each rank starts in its own working directory and
``--save-dir`` is relative, so rank 1's is empty).

The resumed job must end with the parameters of the job that never stopped: rank 1 then
continued the learning-rate schedule from the checkpoint's update count (not from zero on its
device id) and received the optimizer state from rank 0 (it could not read the file).
"""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
HOROVODRUN = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
# oneDNN off, one OpenMP thread: the same arithmetic in both jobs; two emulated GPUs
ENV = dict(os.environ, MXNET_MKLDNN_ENABLED='0', OMP_NUM_THREADS='1',
           GLUON_TRICKS_EMULATE_GPUS='2', PYTHONPATH=REPO)

pytestmark = pytest.mark.skipif(not os.path.exists(HOROVODRUN),
                                reason='horovodrun not installed (make horovod)')


def _flags(rec_dir, epochs, *extra):
    return ['--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec', '--input-size', '32',
            '--crop-ratio', '0.8', '--batch-size', '8', '-j', '0', '--log-interval', '5',
            '--num-epochs', str(epochs), '--warmup-iters', '5', '--lr-mode', 'step',
            '--lr-decay-epoch', '1',
            '--num-gpus', '1', '--horovod', '--save-dir', 'run', '--progress', 'log'] + list(extra)


def _launch(hosts, argv):
    """horovodrun -np 2; rank r starts in hosts[r] (its own file system view)."""
    inner = ' '.join("'%s'" % a for a in [sys.executable, TRAIN] + argv)
    script = 'cd "%s/host$HOROVOD_RANK" && exec %s' % (hosts, inner)
    proc = subprocess.run([HOROVODRUN, '-np', '2', '--gloo', 'sh', '-c', script],
                          capture_output=True, text=True, timeout=900, env=ENV,
                          start_new_session=True)
    return proc, proc.stdout + proc.stderr


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.mark.subprocess
def test_resume_on_two_hosts_with_rank_1_on_device_1(rec_dir, tmp_path):
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    for hosts in (full, cut):
        for r in (0, 1):
            (hosts / ('host%d' % r)).mkdir(parents=True)
    proc, out = _launch(full, _flags(rec_dir, 2))
    assert proc.returncode == 0, out[-4000:]
    proc, out = _launch(cut, _flags(rec_dir, 1))
    assert proc.returncode == 0, out[-4000:]
    assert os.listdir(str(cut / 'host1')) == []           # rank 1 never saw the run
    proc, out = _launch(cut, _flags(rec_dir, 2, '--resume'))
    assert proc.returncode == 0, out[-4000:]
    assert 'Traceback' not in out
    assert not os.path.exists(str(cut / 'host1' / 'run' / 'checkpoint-latest.json'))
    final = 'checkpoint-epoch0002/net.params'
    a, b = _params(full / 'host0' / 'run' / final), _params(cut / 'host0' / 'run' / final)
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
