"""--resume as users type it, and checkpoints from elsewhere.

* ``--save-dir X --resume`` alone continues a run with the settings of its ``config.json``;
  ``--config FILE`` starts a new run from a saved configuration;
* a finished run resumed again trains nothing and leaves its results.json as it was;
* an optimizer state that is a pickle (older versions, or a file from elsewhere) is never
  loaded without ``--allow-pickled-states``: a real malicious file runs nothing;
* a checkpoint without any configuration still refuses another seed or model.
"""
import hashlib
import json
import os
import pickle

import mxnet as mx
import pytest
from mxnet import autograd, gluon

from gluon_tricks.checkpoint import CheckpointError, CheckpointManager
from gluon_tricks.errors import ResumeConfigError
from gluon_tricks.optim import make_trainer, optimizer_params
from gluon_tricks.lr_scheduler import LRScheduler

from helpers.scripts_runner import run_script  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')


def _train(*args, check=True):
    return run_script(TRAIN, *args, check=check)


@pytest.fixture(scope='module')
def run_dir(rec_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('resume') / 'run'
    _train('--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec', '--input-size', 32,
           '--crop-ratio', 0.8, '--batch-size', 16, '-j', 0, '--num-epochs', 1,
           '--warmup-iters', 2, '--lr-mode', 'step', '--lr-decay-epoch', 1, '--seed', 7,
           '--save-dir', out, '--progress', 'log')
    return out


@pytest.mark.subprocess
def test_resume_with_only_save_dir_and_resume(run_dir, tmp_path):
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(str(run_dir), str(run), symlinks=True)
    proc = _train('--save-dir', run, '--resume', '--num-epochs', 2)
    assert 'resumed from' in proc.stdout and 'at epoch 1' in proc.stdout
    saved = json.loads((run / 'config.json').read_text())
    assert saved['model']['model'] == 'resnet18_v1b' and saved['data']['input_size'] == 32
    assert saved['run']['seed'] == 7 and saved['optim']['num_epochs'] == 2
    assert [json.loads(line)['epoch'] for line in open(str(run / 'metrics.jsonl'))] == [1, 2]
    # a finished run resumed again: nothing trained, results.json untouched
    before = (run / 'results.json').read_text()
    assert 'top1' in json.loads(before)
    proc = _train('--save-dir', run, '--resume', '--num-epochs', 2)
    assert 'already finished its 2 epochs' in proc.stdout
    assert (run / 'results.json').read_text() == before
    # a refused change names real flags only
    proc = _train('--save-dir', run, '--resume', '--batch-size', 8, check=False)
    assert proc.returncode != 0 and '--batch-size: 16' in proc.stderr
    assert '--global-batch' not in proc.stderr and '--iters-per-epoch' not in proc.stderr
    assert 'the global batch (--batch-size x devices x Horovod ranks)' in proc.stderr


@pytest.mark.subprocess
def test_config_file_starts_a_new_run_with_the_saved_settings(run_dir, tmp_path):
    new = tmp_path / 'again'
    _train('--config', run_dir / 'config.json', '--save-dir', new, '--num-epochs', 1)
    a = json.loads((run_dir / 'config.json').read_text())
    b = json.loads((new / 'config.json').read_text())
    for section in ('model', 'data', 'optim', 'tricks'):
        assert a[section] == b[section], section
    assert b['run']['seed'] == 7 and b['run']['save_dir'] == str(new)
    proc = _train('--config', tmp_path / 'missing.json', '--save-dir', tmp_path / 'x',
                  check=False)
    assert proc.returncode == 2 and '--config' in proc.stderr and 'missing.json' in proc.stderr


class _Exploit(object):
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ('touch %s' % self.marker,))


def _as_legacy(ckpt_dir, states_bytes):
    """Rewrite a checkpoint as an older version wrote it: trainer.states (a pickle) with its
    sha256 recorded, no optimizer arrays."""
    (ckpt_dir / 'trainer.states').write_bytes(states_bytes)
    meta = json.loads((ckpt_dir / 'state.json').read_text())
    os.remove(str(ckpt_dir / 'optimizer.params'))
    meta['files'] = {'params': 'net.params', 'trainer_states': 'trainer.states'}
    meta.pop('optimizer', None)
    meta['sha256'] = {f: hashlib.sha256((ckpt_dir / f).read_bytes()).hexdigest()
                      for f in ('net.params', 'trainer.states')}
    (ckpt_dir / 'state.json').write_text(json.dumps(meta))


@pytest.mark.subprocess
def test_a_malicious_pickle_in_a_checkpoint_runs_nothing(run_dir, tmp_path):
    import shutil
    run = tmp_path / 'run'
    shutil.copytree(str(run_dir), str(run), symlinks=True)
    marker = tmp_path / 'pwned'
    latest = run / json.loads((run / 'checkpoint-latest.json').read_text())['dir']
    os.remove(str(run / 'checkpoint-best'))        # only the tampered checkpoint is left
    _as_legacy(latest, pickle.dumps(_Exploit(marker)))
    proc = _train('--save-dir', run, '--resume', '--num-epochs', 2, check=False)
    assert proc.returncode != 0
    assert '--allow-pickled-states' in proc.stderr and 'runs any code' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert not marker.exists()


def _small(ctx):
    mx.random.seed(0)
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize(ctx=ctx)
    sched = LRScheduler('step', 0.1, 4, 3, step_epochs=[1])
    return net, make_trainer(net, optimizer_params(sched), kvstore=None)


def _step(net, trainer, ctx):
    x = mx.nd.ones((2, 4), ctx=ctx)
    with autograd.record():
        loss = net(x).sum()
    loss.backward()
    trainer.step(2)


def test_an_older_pickled_checkpoint_resumes_only_when_allowed(tmp_path):
    """A checkpoint of an older version (Trainer.save_states): refused by default; with
    allow_pickle it restores, and on another device id the update count still goes on."""
    net, trainer = _small(mx.cpu(0))
    for _ in range(5):
        _step(net, trainer, mx.cpu(0))
    path = CheckpointManager(str(tmp_path)).save(0, net, trainer, {})
    trainer.save_states(str(tmp_path / 'legacy.states'))
    _as_legacy(tmp_path / os.path.basename(path), (tmp_path / 'legacy.states').read_bytes())
    ckpt = CheckpointManager(str(tmp_path)).load_latest()
    net2, trainer2 = _small(mx.cpu(2))
    with pytest.raises(CheckpointError, match='--allow-pickled-states'):
        ckpt.restore(net2, trainer2, mx.cpu(2))
    ckpt.restore(net2, trainer2, mx.cpu(2), allow_pickle=True)
    _step(net2, trainer2, mx.cpu(2))
    assert trainer2.optimizer.num_update == 6
    assert trainer2.learning_rate == pytest.approx(0.01)    # past the step at update 4


def test_a_checkpoint_without_configuration_refuses_another_seed(tmp_path):
    from gluon_tricks.resume import _check_recorded
    net, trainer = _small(mx.cpu(0))
    CheckpointManager(str(tmp_path)).save(1, net, trainer, {'seed': 7, 'model': 'resnet18_v1b'})
    ckpt = CheckpointManager(str(tmp_path)).load_latest()
    _check_recorded(ckpt, {'run': {'seed': 7}, 'model': {'model': 'resnet18_v1b'}})
    with pytest.raises(ResumeConfigError, match='--seed: 7'):
        _check_recorded(ckpt, {'run': {'seed': 8}, 'model': {'model': 'resnet18_v1b'}})
