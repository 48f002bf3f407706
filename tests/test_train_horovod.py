"""train_imagenet.py --horovod under a real 2-rank horovodrun (Gloo, CPU): the same loop as one
process, with sharded data, global-batch lr, rank-0-only outputs and whole-set validation."""
import json
import os
import subprocess
import sys

import pytest

from conftest import PER_CLASS_TRAIN, PER_CLASS_VAL

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
HOROVODRUN = os.path.join(os.path.dirname(sys.executable), 'horovodrun')


def _flags(rec_dir, save_dir, batch):
    return ['--model', 'resnet18_v1b', '--use-rec', '--data-dir', rec_dir, '--input-size', '32',
            '--crop-ratio', '0.8', '--random-area-min', '0.5', '--no-mirror', '-j', '1',
            '--batch-size', str(batch), '--num-epochs', '2', '--warmup-epochs', '1',
            '--lr-mode', 'cosine', '--no-wd', '--last-gamma', '--label-smoothing',
            '--log-interval', '2', '--save-dir', str(save_dir)]


# oneDNN picks kernels by memory layout, so a network fresh from a file and the in-memory one
# of a training run can round differently; with near-tied logits that flips a top-5 hit.
# Without oneDNN both compute bit-identically, which is what the comparisons below need.
EXACT = dict(os.environ, MXNET_MKLDNN_ENABLED='0')


def _launch(cmd, timeout=400):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True, env=EXACT)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def two_rank_run(rec_dir, tmp_path_factory):
    save = tmp_path_factory.mktemp('hvd') / 'run'
    code, out = _launch([HOROVODRUN, '-np', '2', '--gloo', sys.executable, TRAIN, '--horovod']
                        + _flags(rec_dir, save, 8))
    assert code == 0, out[-3000:]
    return save, out


def _metrics(save_dir):
    with open(os.path.join(str(save_dir), 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


@pytest.mark.subprocess
def test_two_ranks_train_with_global_batch_lr(two_rank_run):
    save, out = two_rank_run
    log = open(os.path.join(str(save), 'train.log')).read()
    # lr from the global batch: 8 per device x 1 device x 2 workers = 16 (section 3.1)
    assert 'lr 0.00625 = 0.1 x 16 / 256' in log and '2 worker(s)' in log
    # each rank trains on its half: 80 images / 8 = 10 batches per epoch
    assert 'trains on 80 samples (10 batches of 8 per epoch)' in log
    rows = _metrics(save)
    assert [r['epoch'] for r in rows] == [1, 2]  # written once, by rank 0 only
    assert log.count('epoch 2 done') == 1
    assert os.path.isfile(os.path.join(str(save), 'checkpoint-best', 'net.params'))


@pytest.mark.subprocess
def test_distributed_validation_equals_one_process(two_rank_run, rec_dir):
    save, _ = two_rank_run
    last = _metrics(save)[-1]
    assert last['val_samples'] == 10 * PER_CLASS_VAL  # each image once across both ranks
    # one process scores each rank's shard the way that rank did (same batches) and sums the
    # counts: the ranks' allreduce must give exactly this
    script = """
import json, sys, argparse, mxnet as mx
from gluon_tricks import data as gdata
from gluon_tricks.engine import evaluate
from gluon_tricks.model_zoo.io import load_model
parser = argparse.ArgumentParser(); gdata.DataConfig.add_args(parser)
args = gdata.DataConfig.from_args(parser.parse_args(
    ['--use-rec', '--data-dir', sys.argv[1], '--input-size', '32', '--crop-ratio', '0.8',
     '-j', '1']))
net = load_model('resnet18_v1b', sys.argv[2])
out = []
for part in range(2):
    _, val = gdata.build_loaders(args, batch_size=8, num_parts=2, part_index=part, seed=0)
    out.append(evaluate(net, val, [mx.cpu()]))
_, whole = gdata.build_loaders(args, batch_size=8, seed=0)
out.append(evaluate(net, whole, [mx.cpu()]))
print(json.dumps(out))
"""
    code, out = _launch([sys.executable, '-c', script, rec_dir,
                         os.path.join(str(save), 'checkpoint-epoch0002', 'net.params')])
    assert code == 0, out
    parts = json.loads([line for line in out.splitlines() if line.startswith('[{')][0])
    total = parts[0]['total'] + parts[1]['total']
    assert total == last['val_samples'] == parts[2]['total']  # the shards cover the set
    assert (parts[0]['correct1'] + parts[1]['correct1']) / total == \
        pytest.approx(last['top1'], abs=1e-12)
    assert (parts[0]['correctk'] + parts[1]['correctk']) / total == \
        pytest.approx(last['top5'], abs=1e-12)


@pytest.mark.subprocess
def test_one_process_with_the_same_global_batch(rec_dir, tmp_path, two_rank_run):
    """The single-process run of the same global batch (16) runs the same schedule."""
    save = tmp_path / 'single'
    code, out = _launch([sys.executable, TRAIN] + _flags(rec_dir, save, 16))
    assert code == 0, out[-3000:]
    log = open(os.path.join(str(save), 'train.log')).read()
    assert 'lr 0.00625 = 0.1 x 16 / 256' in log and '1 worker(s)' in log
    assert '(%d batches of 16 per epoch)' % (10 * PER_CLASS_TRAIN // 16) in log
    single, dist = _metrics(save), _metrics(two_rank_run[0])
    assert [r['lr'] for r in single] == pytest.approx([r['lr'] for r in dist])


@pytest.mark.subprocess
def test_failing_rank_stops_the_job_with_its_error(rec_dir, tmp_path):
    code, out = _launch([HOROVODRUN, '-np', '2', '--gloo', sys.executable, TRAIN, '--horovod']
                        + _flags(rec_dir, tmp_path / 'x', 8) + ['--teacher-params', 'nope'],
                        timeout=200)
    assert code != 0
    assert '--teacher-params nope does not exist' in out
