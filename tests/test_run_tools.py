"""The tools that read a training run (evaluate.py, export.py, predict.py) take the model and
its input settings from the run, and never use a damaged checkpoint.

One tiny run on the test digits at 32 px with crop ratio 0.8 (not the 224 px / 0.875
defaults): a tool that ignored the run's ``config.json`` would evaluate at the wrong size.
"""
import json
import os

import pytest

from helpers.scripts_runner import run_script  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')


def _script(name, *args, check=True):
    return run_script(name, *args, check=check)


@pytest.fixture(scope='module')
def run_dir(rec_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('tools') / 'run'
    _script('train_imagenet.py', '--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec',
            '--input-size', 32, '--crop-ratio', 0.8, '--batch-size', 16, '-j', 0,
            '--num-epochs', 2, '--warmup-epochs', 1, '--lr-mode', 'cosine', '--last-gamma',
            '--save-dir', out, '--progress', 'log')
    return out


def _evaluate(run, rec_dir, *flags, check=True):
    proc = _script('evaluate.py', run, '--rec-val', os.path.join(rec_dir, 'val.rec'), '-j', 0,
                   '--latency-runs', 0, '--json', str(run) + '.eval.json', *flags, check=check)
    if not check:
        return proc
    with open(str(run) + '.eval.json') as f:
        return json.load(f)


@pytest.mark.subprocess
def test_evaluate_a_run_directory_without_size_flags(run_dir, rec_dir):
    """The same top-1 as with the run's flags given, at the run's size (not 224 px)."""
    plain = _evaluate(run_dir, rec_dir)
    flagged = _evaluate(run_dir, rec_dir, '--input-size', 32, '--crop-ratio', 0.8)
    assert plain['input_size'] == 32 and plain['crop_ratio'] == pytest.approx(0.8)
    assert plain['model'] == 'resnet18_v1b'
    assert plain['top1'] == flagged['top1'] and plain['total'] == flagged['total'] == 50
    results = json.loads((run_dir / 'results.json').read_text())
    best = json.loads((run_dir / 'checkpoint-best' / 'state.json').read_text())['state']['best']
    assert plain['top1'] == pytest.approx(best, abs=1e-6)   # what training measured
    assert results['top1'] is not None


@pytest.mark.subprocess
def test_a_contradicting_flag_is_named_with_both_values(run_dir, rec_dir):
    proc = _evaluate(run_dir, rec_dir, '--input-size', 40, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '--input-size 40 differs from 32 recorded by the run' in proc.stderr


@pytest.mark.subprocess
def test_export_of_a_run_directory_uses_the_run_settings(run_dir, tmp_path):
    _script('export.py', '--params', run_dir, '--out', tmp_path / 'r18')
    meta = json.loads((tmp_path / 'r18-meta.json').read_text())
    assert meta['input_size'] == 32 and meta['crop_ratio'] == pytest.approx(0.8)
    assert meta['model'] == 'resnet18_v1b'


@pytest.mark.subprocess
def test_a_damaged_checkpoint_is_refused_by_every_reader(run_dir, rec_dir, tmp_path):
    """Flipped bytes in the best checkpoint's net.params: evaluate.py and export.py name the
    file and stop (no traceback), and say which intact checkpoint the run still holds."""
    import shutil
    copy = tmp_path / 'run'
    shutil.copytree(str(run_dir), str(copy), symlinks=True)
    best = json.loads((copy / 'checkpoint-best' / 'state.json').read_text())['epoch']
    params = copy / 'checkpoint-best' / 'net.params'
    data = bytearray(params.read_bytes())
    data[len(data) // 2] ^= 0xFF
    params.write_bytes(bytes(data))
    for proc in (_evaluate(copy, rec_dir, check=False),
                 _script('export.py', '--params', copy, '--out', tmp_path / 'x', check=False)):
        assert proc.returncode != 0
        assert 'net.params is damaged' in proc.stderr, proc.stderr[-2000:]
        assert 'Traceback' not in proc.stderr
        if best != 2:   # the latest (epoch 2) is another, intact checkpoint
            assert 'checkpoint-epoch0002' in proc.stderr
    assert not os.path.exists(str(tmp_path / 'x-symbol.json'))


def test_the_demo_shows_a_commands_stderr_without_mxnets_uninformative_lines(capfd):
    import subprocess
    import sys
    from helpers.scripts_runner import load_script
    demo = load_script('classification', 'demo')
    code = ('import sys; sys.stderr.write("[00:00:01] mkldnn_pooling.cc:58: %s\\nkept line\\n"); '
            'print("out")' % demo.UNINFORMATIVE[0])
    assert demo.run([sys.executable, '-c', code], quiet=True) == 'out\n'
    err = capfd.readouterr().err
    assert 'kept line' in err and demo.UNINFORMATIVE[0] not in err
    with pytest.raises(subprocess.CalledProcessError):
        demo.run([sys.executable, '-c', 'import sys; sys.exit(3)'])
