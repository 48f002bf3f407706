"""train_imagenet.py end to end on small generated RecordIO data: every trick on, resume,
NaN handling, bad input, export and predict."""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from conftest import PER_CLASS_VAL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train_imagenet = _load_script('train_imagenet')


def _args(rec_dir, save_dir, *extra):
    return ['--model', 'resnet18_v1d', '--use-rec', '--data-dir', rec_dir,
            '--input-size', '32', '--crop-ratio', '0.8', '--random-area-min', '0.5',
            '--no-mirror', '--batch-size', '16', '-j', '1', '--log-interval', '4',
            '--save-dir', str(save_dir)] + list(extra)


def _metrics(save_dir):
    with open(os.path.join(str(save_dir), 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def test_two_epochs_with_every_trick(rec_dir, tmp_path):
    save = tmp_path / 'run'
    best = train_imagenet.main(_args(
        rec_dir, save, '--num-epochs', '2', '--warmup-epochs', '1', '--lr-mode', 'cosine',
        '--last-gamma', '--no-wd', '--label-smoothing', '--mixup'))
    rows = _metrics(save)
    assert [r['epoch'] for r in rows] == [1, 2]
    for r in rows:
        assert r['val_samples'] == 10 * PER_CLASS_VAL  # every validation image exactly once
        assert 0 <= r['top1'] <= r['top5'] <= 1 and np.isfinite(r['train_loss'])
        assert r['samples_per_sec'] > 0
    assert best['best_top1'] == max(r['top1'] for r in rows)
    log = open(os.path.join(str(save), 'train.log')).read()
    # linear scaling stated with its derivation: 0.1 x 16 / 256 (section 3.1)
    assert 'lr 0.00625 = 0.1 x 16 / 256' in log
    assert 'samples/s' in log and 'no bias decay' in log
    # 160 images / batch 16 = 10 batches per epoch, 10 of warmup then T = 10 of cosine:
    # the last batch (t = 9) runs at 0.5 (1 + cos(9 pi / 10)) x 0.00625 (eq. 1)
    assert rows[0]['lr'] == pytest.approx(0.00625)  # end of warmup: the full lr
    assert rows[-1]['lr'] == pytest.approx(0.5 * (1 + np.cos(0.9 * np.pi)) * 0.00625)
    assert os.path.isfile(os.path.join(str(save), 'checkpoint-best', 'net.params'))
    # the checkpoint is a GluonCV-style params file that loads into the zoo model
    from gluon_tricks.model_zoo.io import load_model
    net = load_model('resnet18_v1d', os.path.join(str(save), 'checkpoint-best', 'net.params'))
    assert net.fc.weight.shape == (10, 512)


def test_distillation_runs_from_a_teacher_checkpoint(rec_dir, tmp_path):
    teacher_dir = tmp_path / 'teacher'
    train_imagenet.main(_args(rec_dir, teacher_dir, '--num-epochs', '1', '--model',
                              'resnet18_v1b'))
    student = tmp_path / 'student'
    train_imagenet.main(_args(rec_dir, student, '--num-epochs', '1', '--teacher',
                              'resnet18_v1b', '--teacher-params',
                              str(teacher_dir / 'checkpoint-best' / 'net.params'),
                              '--mixup', '--label-smoothing'))
    assert _metrics(student)[0]['val_samples'] == 10 * PER_CLASS_VAL


def _run_cli(args, **kwargs):
    return subprocess.Popen([sys.executable, os.path.join(SCRIPTS, 'train_imagenet.py')] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


@pytest.mark.subprocess
def test_killed_run_resumes_to_the_same_parameters(rec_dir, tmp_path):
    """Kill a run in epoch 2 with SIGKILL, resume it: the final parameters equal those of an
    uninterrupted run bit for bit.

    oneDNN (MKLDNN) is switched off for this comparison: in MXNet 1.9.1 on CPU, a training
    step that follows an inference pass (the per-epoch validation) is not bit-reproducible
    with oneDNN on, even between two uninterrupted runs; without it every run is.
    """
    env = dict(os.environ, MXNET_MKLDNN_ENABLED='0')
    common = ['--num-epochs', '3', '--warmup-epochs', '1', '--lr-mode', 'cosine',
              '--label-smoothing', '--mixup', '--last-gamma', '--no-wd', '--batch-size', '32']
    full = tmp_path / 'full'
    out, _ = _run_cli(_args(rec_dir, full, *common), env=env).communicate(timeout=600)
    assert len(_metrics(full)) == 3, out

    killed = tmp_path / 'killed'
    proc = _run_cli(_args(rec_dir, killed, *common), start_new_session=True, env=env)
    pointer = killed / 'checkpoint-latest.json'
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if pointer.exists() and '0001' in pointer.read_text():
            os.killpg(proc.pid, signal.SIGKILL)  # killed somewhere in epoch 2
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, 'the run ended before it could be killed'
    assert len(_metrics(killed)) == 1

    out, _ = _run_cli(_args(rec_dir, killed, *common, '--resume'), env=env).communicate(
        timeout=600)
    assert 'resumed from' in out and 'at epoch 1' in out
    assert [r['epoch'] for r in _metrics(killed)] == [1, 2, 3]
    a = _params(str(full / 'checkpoint-epoch0003' / 'net.params'))
    b = _params(str(killed / 'checkpoint-epoch0003' / 'net.params'))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(b[key], a[key], err_msg=key)
    # momentum and schedule position came back too: the same losses and lr afterwards
    for ra, rb in zip(_metrics(full)[1:], _metrics(killed)[1:]):
        assert (ra['train_loss'], ra['top1'], ra['lr']) == (rb['train_loss'], rb['top1'],
                                                            rb['lr'])


def test_nan_loss_stops_with_epoch_batch_and_checkpoint(rec_dir, tmp_path):
    save = tmp_path / 'nan'
    with pytest.raises(Exception) as err:
        train_imagenet.main(_args(rec_dir, save, '--num-epochs', '1', '--lr', '1e30',
                                  '--log-interval', '2'))
    msg = str(err.value)
    assert type(err.value).__name__ == 'NonFiniteLossError'
    assert 'epoch 1, batch' in msg and 'last good checkpoint is none' in msg


def test_nan_policy_never_saves_a_state_trained_on_a_non_finite_loss(rec_dir, tmp_path):
    """The loop reads the loss sums at log points only (here every 4 batches), but before any
    checkpoint: a checkpoint due after every batch is refused from the first non-finite loss
    on, so the latest checkpoint is the last good one, and the error names it."""
    from gluon_tricks.errors import NonFiniteLossError, UserError
    save = tmp_path / 'nan'
    with pytest.raises(NonFiniteLossError) as err:
        train_imagenet.main(_args(rec_dir, save, '--num-epochs', '1', '--lr', '1e30',
                                  '--checkpoint-interval', '1'))
    assert isinstance(err.value, UserError)
    pointer = json.loads((save / 'checkpoint-latest.json').read_text())
    bad = int(str(err.value).split('epoch 1, batch ')[1].split(' ')[0])   # 1-based
    assert pointer['batch'] == bad - 1 >= 1   # the checkpoint of the batch before it
    assert str(save / pointer['dir']) in str(err.value)
    assert not os.path.exists(str(save / 'metrics.jsonl'))


def test_resume_without_checkpoint_is_a_clear_error(rec_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match='no checkpoint in'):
        train_imagenet.main(_args(rec_dir, tmp_path / 'empty', '--resume'))


@pytest.mark.subprocess
@pytest.mark.parametrize('extra,expected', [
    (['--model', 'resnet50_v9'], "unknown --model 'resnet50_v9'; valid names"),
    (['--teacher', 'resnet18_v1b'], '--teacher needs --teacher-params'),
    (['--loss-scale', 'big'], "--loss-scale must be a number, 'dynamic' or 'none'"),
])
def test_bad_flags(rec_dir, tmp_path, extra, expected):
    proc = _run_cli(_args(rec_dir, tmp_path / 'x') + extra)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and expected in out


@pytest.mark.subprocess
def test_missing_idx_names_the_file_without_traceback(rec_dir, tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(rec_dir, str(broken))
    os.remove(str(broken / 'train.idx'))
    proc = _run_cli(_args(str(broken), tmp_path / 'x', '--num-epochs', '1'))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert 'train.idx' in out and 'Traceback' not in out


@pytest.mark.subprocess
def test_help_shows_paper_defaults():
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, 'train_imagenet.py'), '--help'],
                         capture_output=True, text=True, check=True).stdout
    flat = ' '.join(out.split())
    for flag in ('--model', '--mode', '--batch-size', '--num-gpus', '--num-epochs', '--lr',
                 '--lr-mode', '--lr-decay', '--lr-decay-epoch', '--warmup-epochs', '--warmup-lr',
                 '--dtype', '--last-gamma', '--no-wd', '--label-smoothing', '--mixup',
                 '--mixup-alpha', '--mixup-off-epoch', '--teacher', '--temperature',
                 '--hard-weight', '--use-rec', '--rec-train', '--rec-train-idx', '--rec-val',
                 '--rec-val-idx', '--data-dir', '--input-size', '--crop-ratio', '--save-dir',
                 '--save-frequency', '--logging-file', '--log-interval', '-j', '--resume',
                 '--horovod', '--loss-scale'):
        assert flag + ' ' in flat, flag
    for default in ('(default: 120)', '(default: 30,60,90)', '(default: 0.9)',
                    '(default: 0.0001)', '(default: 0.1)', '(default: 0.2)', '(default: 20.0)'):
        assert default in flat, default


@pytest.mark.subprocess
def test_export_and_predict(rec_dir, tmp_path):
    save = tmp_path / 'run'
    train_imagenet.main(_args(rec_dir, save, '--num-epochs', '1'))
    prefix = str(tmp_path / 'exported' / 'r18d')
    subprocess.run([sys.executable, os.path.join(SCRIPTS, 'export.py'), '--model',
                    'resnet18_v1d', '--params', str(save / 'checkpoint-best' / 'net.params'),
                    '--out', prefix, '--input-size', '32', '--crop-ratio', '0.8',
                    '--class-names', os.path.join(rec_dir, 'classes.txt')], check=True)
    net, _ = importlib.import_module('gluon_tricks.export').load_exported(prefix)
    from gluon_tricks.model_zoo.io import load_model
    ref = load_model('resnet18_v1d', str(save / 'checkpoint-best' / 'net.params'))
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    np.testing.assert_allclose(net(x).asnumpy(), ref(x).asnumpy(), atol=1e-5)

    image = tmp_path / 'seven.png'
    import cv2
    cv2.imwrite(str(image), np.full((40, 40, 3), 128, np.uint8))
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, 'predict.py'), '--prefix',
                          prefix, str(image)], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    assert lines[0] == str(image) and len(lines) == 6
    probs = [float(line.split()[-1]) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert all(line.split()[1] in [str(d) for d in range(10)] for line in lines[1:])
    bad = subprocess.run([sys.executable, os.path.join(SCRIPTS, 'predict.py'), '--prefix',
                          str(tmp_path / 'nothing'), str(image)], capture_output=True, text=True)
    assert bad.returncode == 2 and 'nothing-symbol.json is missing' in bad.stderr
