"""Kill/resume soak of train_imagenet.py: a small 3-epoch run interrupted N times (default
20) at random moments with SIGKILL or SIGTERM, resumed after each, must end with the
parameters of an uninterrupted run, bit for bit, and one metrics line per epoch.

Not part of the test suite (it takes minutes); run it by hand::

    MXNET_MKLDNN_ENABLED=0 python tests/helpers/soak_resume.py --interrupts 20 --seed 1

It builds the digits RecordIO set of the tests (nothing downloaded) unless ``--data-dir``
names one. oneDNN is switched off in the training processes (bit-exact comparison, see
tests/test_train.py). Exit status 0 when the final parameters are identical.
"""
import argparse
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
sys.path.insert(0, REPO)


def make_data(root):
    """The 10-class digits RecordIO set of tests/conftest.py (16 train, 5 val per class)."""
    from gluon_tricks.data import make_digits_dataset, pack_class_folder
    info = make_digits_dataset(os.path.join(root, 'full'), image_size=40)
    for split, keep in (('train', 16), ('val', 5)):
        for cls in info.classes:
            files = sorted(glob.glob(os.path.join(root, 'full', split, cls, '*.png')))
            os.makedirs(os.path.join(root, 'small', split, cls))
            for f in files[:keep]:
                shutil.copy(f, os.path.join(root, 'small', split, cls))
    out = os.path.join(root, 'rec')
    os.makedirs(out)
    for split in ('train', 'val'):
        pack_class_folder(os.path.join(root, 'small', split), os.path.join(out, split),
                          shuffle=split == 'train', resize=0, encoding='.png', quality=3,
                          progress=False)
    return out


def flags(data_dir, save_dir, args):
    return ['--model', args.model, '--use-rec', '--data-dir', data_dir, '--input-size', '32',
            '--crop-ratio', '0.8', '--random-area-min', '0.5', '--no-mirror',
            '--batch-size', '16', '-j', '1', '--log-interval', '2', '--num-epochs', '3',
            '--warmup-epochs', '1', '--lr-mode', 'cosine', '--label-smoothing', '--mixup',
            '--last-gamma', '--no-wd', '--checkpoint-interval', str(args.checkpoint_interval),
            '--save-dir', save_dir]


# oneDNN off and one OpenMP thread count for every start: bit-identical arithmetic
ENV = dict(os.environ, MXNET_MKLDNN_ENABLED='0',
           OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))


def has_checkpoint(save_dir):
    return bool(glob.glob(os.path.join(save_dir, 'checkpoint-*')))


def params(path):
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--interrupts', type=int, default=20)
    p.add_argument('--seed', type=int, default=0, help='of the interruption times and kinds')
    p.add_argument('--data-dir', default=None, help='digits RecordIO (default: build one)')
    p.add_argument('--work-dir', default=None, help='default: a temporary directory')
    p.add_argument('--model', default='resnet18_v1b')
    p.add_argument('--checkpoint-interval', type=int, default=3)
    args = p.parse_args()
    rng = random.Random(args.seed)
    tic = time.time()
    work = args.work_dir or tempfile.mkdtemp(prefix='soak-')
    os.makedirs(work, exist_ok=True)
    data = args.data_dir or make_data(os.path.join(work, 'data'))

    ref = os.path.join(work, 'reference')
    shutil.rmtree(ref, ignore_errors=True)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, TRAIN] + flags(data, ref, args), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    startup = None
    for line in proc.stdout:           # the first log line of training: startup is over
        if startup is None and ' batch ' in line:
            startup = time.time() - t0
    if proc.wait() != 0:
        raise SystemExit('the reference run failed')
    duration = time.time() - t0
    startup = startup or 1.0
    print('reference run: %.0f s (%.1f s to the first training log line)'
          % (duration, startup), flush=True)

    soak = os.path.join(work, 'soak')
    shutil.rmtree(soak, ignore_errors=True)
    done, kinds, starts = 0, {'SIGKILL': 0, 'SIGTERM': 0}, 0
    # each start gets through its startup, usually, and then trains a random while: on
    # average 80 % of the training time divided among the interruptions, so the run is
    # still going at the last one
    mean_gap = 0.8 * (duration - startup) / max(args.interrupts, 1)
    while True:
        cmd = [sys.executable, TRAIN] + flags(data, soak, args)
        resume = has_checkpoint(soak)
        if resume:
            cmd.append('--resume')
        starts += 1
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        if done >= args.interrupts:
            out, _ = proc.communicate()
            if proc.returncode != 0:
                print(out[-3000:])
                raise SystemExit('the final resumed run failed (exit %d)' % proc.returncode)
            break
        delay = rng.uniform(0.5 * startup, startup + 2 * mean_gap)
        kind = rng.choice(['SIGKILL', 'SIGTERM'])
        try:
            out, _ = proc.communicate(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        if finished:
            if proc.returncode != 0:
                print(out[-3000:])
                raise SystemExit('run %d failed (exit %d)' % (starts, proc.returncode))
            print('run %d finished before its interruption' % starts, flush=True)
            break
        if kind == 'SIGKILL':
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            expected = (-signal.SIGKILL,)
        else:
            os.kill(proc.pid, signal.SIGTERM)
            out, _ = proc.communicate(timeout=300)
            expected = (128 + signal.SIGTERM, 0)   # 0: it finished in the meantime
            if ' training resnet' not in out and ' data: ' not in out:
                # still importing Python modules: the handlers are not installed yet and the
                # default action ends the process (nothing was trained, nothing is lost)
                expected += (-signal.SIGTERM,)
        if proc.returncode not in expected:
            print(out[-3000:])
            raise SystemExit('run %d: %s gave exit %d' % (starts, kind, proc.returncode))
        if 'Traceback' in out:
            print(out[-3000:])
            raise SystemExit('run %d: a traceback after %s' % (starts, kind))
        done += 1
        kinds[kind] += 1
        pointer = os.path.join(soak, 'checkpoint-latest.json')
        where = json.load(open(pointer)) if os.path.exists(pointer) else {}
        print('interruption %2d: %s after %.1f s (%s) -> latest checkpoint %s'
              % (done, kind, delay, 'resumed run' if resume else 'fresh run',
                 where.get('dir', 'none')), flush=True)
        if proc.returncode == 0:
            break

    from gluon_tricks.runlog import read_metrics
    rows = read_metrics(os.path.join(soak, 'metrics.jsonl'))
    assert [r['epoch'] for r in rows] == [1, 2, 3], rows
    ref_rows = read_metrics(os.path.join(ref, 'metrics.jsonl'))
    a = params(os.path.join(ref, 'checkpoint-epoch0003', 'net.params'))
    b = params(os.path.join(soak, 'checkpoint-epoch0003', 'net.params'))
    import numpy as np
    same = sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    same_top1 = [r['top1'] for r in rows] == [r['top1'] for r in ref_rows]
    print('%d interruptions (%d SIGKILL, %d SIGTERM), %d starts, %.0f s in all: final '
          'parameters %s, validation top-1 per epoch %s'
          % (done, kinds['SIGKILL'], kinds['SIGTERM'], starts, time.time() - tic,
             'IDENTICAL' if same else 'DIFFERENT', 'identical' if same_top1 else 'different'))
    return 0 if same and same_top1 and done >= args.interrupts else 1


if __name__ == '__main__':
    sys.exit(main())
