"""Fine-tuning (--initial-checkpoint, --freeze-backbone, --backbone-lr-mult) and the number of
kept checkpoints (--keep-checkpoints), from the command line on the test digits."""
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.finetune import FineTuneError, load_initial
from gluon_tricks.model_zoo import get_model

from helpers.scripts_runner import run_script  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
COMMON = ['--model', 'resnet18_v1b', '--input-size', 32, '--crop-ratio', 0.8,
          '--batch-size', 16, '-j', 0, '--lr-mode', 'cosine', '--progress', 'log']


def _train(*args, check=True):
    return run_script(TRAIN, *args, check=check)


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.fixture(scope='module')
def trained(rec_dir, tmp_path_factory):
    """A 10-class run of 4 epochs that keeps 3 checkpoints."""
    out = tmp_path_factory.mktemp('ft') / 'run10'
    _train(*COMMON, '--data-dir', rec_dir, '--use-rec', '--num-epochs', 4,
           '--warmup-epochs', 1, '--keep-checkpoints', 3, '--save-dir', out)
    return out


@pytest.mark.subprocess
def test_keep_checkpoints_keeps_the_newest_n(trained):
    kept = sorted(e for e in os.listdir(str(trained)) if e.startswith('checkpoint-epoch'))
    assert kept == ['checkpoint-epoch0002', 'checkpoint-epoch0003', 'checkpoint-epoch0004']
    for name in kept:
        assert os.path.isfile(str(trained / name / 'net.params'))


@pytest.fixture(scope='module')
def five_classes(rec_dir, tmp_path_factory):
    """Class folders of digits 0-4 (train/ and val/)."""
    src = os.path.join(os.path.dirname(rec_dir), 'small')
    out = tmp_path_factory.mktemp('five')
    for split in ('train', 'val'):
        for cls in sorted(os.listdir(os.path.join(src, split)))[:5]:
            shutil.copytree(os.path.join(src, split, cls), str(out / split / cls))
    return out


@pytest.mark.subprocess
def test_fine_tune_10_to_5_classes_with_a_frozen_backbone(trained, five_classes, tmp_path):
    out = tmp_path / 'run5'
    proc = _train(*COMMON, '--data-dir', five_classes, '--num-epochs', 1,
                  '--initial-checkpoint', trained, '--freeze-backbone', '--save-dir', out)
    assert 'the classifier was re-initialised (10 classes in the file, 5 now)' in proc.stdout
    assert 'frozen: the classifier trains alone' in proc.stdout
    assert 'update 0' not in proc.stdout and 'resumed' not in proc.stdout   # not a resume
    start = _params(trained / 'checkpoint-best' / 'net.params')
    end = _params(out / 'checkpoint-epoch0001' / 'net.params')
    assert end['fc.weight'].shape == (5, 512)
    frozen = [k for k in start if not k.startswith('fc.') and not k.endswith(
        ('running_mean', 'running_var'))]
    assert frozen
    for key in frozen:      # the backbone trained nothing
        np.testing.assert_array_equal(end[key], start[key], err_msg=key)
    assert not np.array_equal(end['fc.bias'], np.zeros(5, np.float32))   # the head trained


@pytest.mark.subprocess
def test_fine_tune_same_classes_loads_everything(trained, rec_dir, tmp_path):
    out = tmp_path / 'again'
    proc = _train(*COMMON, '--data-dir', rec_dir, '--use-rec', '--num-epochs', 1,
                  '--initial-checkpoint', trained / 'checkpoint-epoch0004' / 'net.params',
                  '--backbone-lr-mult', 0.1, '--save-dir', out)
    assert 'every parameter loaded' in proc.stdout and 'at lr x 0.1' in proc.stdout


def test_gluoncv_file_and_mismatches(tmp_path):
    """A GluonCV file of the same model loads (head re-initialised for another class count);
    a file of another model is refused naming what differs."""
    import gluoncv
    ref = gluoncv.model_zoo.get_model('resnet18_v1b', pretrained=False, classes=1000)
    ref.initialize(mx.init.Xavier())
    ref(mx.nd.zeros((1, 3, 32, 32)))
    ref.save_parameters(str(tmp_path / 'gcv.params'))
    net = get_model('resnet18_v1b', classes=7)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    logs = []
    load_initial(net, str(tmp_path / 'gcv.params'), [mx.cpu()], mx.init.Xavier(), logs.append)
    assert '1000 classes in the file, 7 now' in logs[0]
    np.testing.assert_array_equal(net.conv1.weight.data().asnumpy(),
                                  ref.conv1.weight.data().asnumpy())
    other = get_model('resnet34_v1b', classes=7)
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    with pytest.raises(FineTuneError, match='does not fit --model'):
        load_initial(other, str(tmp_path / 'gcv.params'), [mx.cpu()], mx.init.Xavier(),
                     logs.append)


@pytest.mark.subprocess
def test_freeze_without_initial_checkpoint_is_refused(rec_dir, tmp_path):
    proc = _train(*COMMON, '--data-dir', rec_dir, '--use-rec', '--freeze-backbone',
                  '--save-dir', tmp_path / 'x', check=False)
    assert proc.returncode == 2 and '--initial-checkpoint' in proc.stderr
