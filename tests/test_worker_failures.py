"""Data worker processes never hang a run: a bad image in a class folder ends training with the
error that names the file (the message of -j 0), a worker that dies or gets stuck is reported
within a bound, the workers end with their loader and with their process, and SIGTERM to the
whole process group still ends in a checkpoint.

Every training run is a real subprocess in a session of its own under a hard time limit: when
the limit passes, the whole session is killed and the test fails (it never hangs the suite).
"""
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from gluon_tricks.data import ShardBatchSampler, list_class_folder, make_digits_dataset
from gluon_tricks.data.workers import DataWorkerError, WorkerLoader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
LIMIT = 150           # seconds: a run here takes 5-15 s; the old hang never ended
CLASSES = ('0', '1', '2')


def _run(args, limit=LIMIT, env=None):
    """Run ``args`` in a new session; on the time limit kill the session and fail."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1', **(env or {})))
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail('no exit within %d s (hung); killed. stderr tail:\n%s' % (limit, err[-2000:]))
    return proc.returncode, out, err


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    """Class folders of real digits as 2560 x 2560 JPEGs (a worker takes a while per batch,
    as with photos): 3 classes, 47 training images (one bad file makes 12 batches of 4) and
    2 validation images each."""
    root = tmp_path_factory.mktemp('wf')
    info = make_digits_dataset(str(root / 'full'), image_size=32)
    for split, keep in (('train', 16), ('val', 2)):
        for cls in CLASSES:
            os.makedirs(str(root / 'data' / split / cls))
            src = os.path.join(info.train_dir if split == 'train' else info.val_dir, cls)
            names = sorted(os.listdir(src))[:keep - (split == 'train' and cls == '2')]
            for name in names:
                img = cv2.resize(cv2.imread(os.path.join(src, name)), (2560, 2560))
                cv2.imwrite(str(root / 'data' / split / cls / (name[:-4] + '.jpg')), img)
    return root


def _with_bad_file(digits, kind):
    """A copy of the data with one bad file in class folder 1, and a seed whose first epoch
    reads it in its second batch (the workers still have batches to decode after it)."""
    data = digits / ('data-' + kind)
    bad = data / 'train' / '1' / ('bad-%s.jpg' % kind)
    if not data.exists():
        for split in ('train', 'val'):
            for cls in CLASSES:
                os.makedirs(str(data / split / cls))
                for name in os.listdir(str(digits / 'data' / split / cls)):
                    os.link(str(digits / 'data' / split / cls / name),
                            str(data / split / cls / name))
        if kind == 'truncated':
            img = np.random.RandomState(0).randint(0, 255, (32, 32, 3)).astype(np.uint8)
            jpg = cv2.imencode('.jpg', img)[1].tobytes()
            bad.write_bytes(jpg[:len(jpg) // 2])
        elif kind == 'empty':
            bad.write_bytes(b'')
        else:
            os.symlink(bad.name, str(bad))          # a link to itself
    items = [os.path.join(str(data / 'train'), path)
             for path, _ in list_class_folder(str(data / 'train'))[0]]
    index = items.index(str(bad))
    seed = next(s for s in range(1000) if index in
                [k[0] for k in ShardBatchSampler(len(items), 4, True, seed=s).batches(0)[1]])
    return data, bad, seed


def _train(data, save, workers, *extra):
    return [sys.executable, TRAIN, '--model', 'resnet18_v1d', '--data-dir', str(data),
            '--input-size', '32', '--batch-size', '4', '-j', str(workers), '--num-epochs', '1',
            '--log-interval', '1', '--save-dir', str(save)] + list(extra)


def _error_line(err):
    lines = [ln for ln in err.splitlines() if 'failed:' in ln]
    return lines[-1] if lines else None


@pytest.mark.subprocess
@pytest.mark.parametrize('kind,reason', [('truncated', 'truncated JPEG'),
                                         ('empty', 'empty file'),
                                         ('selflink', 'symbolic links')])
@pytest.mark.parametrize('workers', [1, 4])
def test_bad_image_in_a_class_folder_ends_the_run_naming_the_file(digits, tmp_path, kind,
                                                                  reason, workers):
    data, bad, seed = _with_bad_file(digits, kind)
    code, out, err = _run(_train(data, tmp_path / 'run', workers, '--seed', str(seed)))
    assert code == 1, (code, err[-2000:])
    line = _error_line(err)
    assert line is not None, err[-2000:]
    assert 'CorruptImageError' in line and str(bad) in line and reason in line, line
    assert 'Traceback' not in err, err[-2000:]


@pytest.mark.subprocess
def test_the_error_from_a_worker_is_the_error_without_workers(digits, tmp_path):
    data, bad, seed = _with_bad_file(digits, 'truncated')
    lines = []
    for workers in (0, 2):
        code, out, err = _run(_train(data, tmp_path / ('run%d' % workers), workers, '--seed',
                                     str(seed)))
        assert code == 1, err[-2000:]
        lines.append(_error_line(err))
    assert lines[0] is not None and str(bad) in lines[0]
    assert lines[1] == lines[0]


@pytest.mark.subprocess
def test_sigterm_to_the_process_group_still_ends_in_a_checkpoint(digits, tmp_path):
    """Preemption signals every process of the group, the data workers too: they keep
    serving, the training process finishes its step, writes the checkpoint of that position
    and exits 143 (128 + SIGTERM)."""
    save = tmp_path / 'run'
    proc = subprocess.Popen(_train(digits / 'data', save, 2, '--num-epochs', '20'),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=REPO, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        deadline = time.time() + LIMIT
        seen = ''
        while 'epoch 2 batch 1/' not in seen:
            line = proc.stdout.readline()
            assert line and time.time() < deadline, seen[-2000:]
            seen += line
        os.killpg(proc.pid, signal.SIGTERM)
        rest, _ = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail('no exit within %d s after SIGTERM' % LIMIT)
    assert proc.returncode == 128 + signal.SIGTERM, (seen + rest)[-2000:]
    assert 'SIGTERM: stopped' in rest and 'Continue with --resume' in rest, rest[-2000:]
    assert 'Traceback' not in rest and 'DataWorkerError' not in rest, rest[-2000:]
    assert (save / 'checkpoint-latest.json').exists()


# --------------------------------------------------------------- the worker loader on its own
class _Data(object):
    """``data[i]`` is ``(pid of the process that decoded it, i)``; misbehaves on one key."""

    def __init__(self, n, bad=None, how=None):
        self.n, self.bad, self.how = n, bad, how

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.bad:
            if self.how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.how == 'stuck':
                time.sleep(3600)
            elif self.how == 'raise':
                raise DataWorkerError('sample %d is bad: see the file' % i)
        return np.array([os.getpid(), i], dtype=np.int64)


def _batches(n, size):
    return [list(range(b, min(b + size, n))) for b in range(0, n, size)]


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().split(')')[-1].split()[0] != 'Z'
    except OSError:
        return False


def _wait_gone(pids, seconds=10):
    deadline = time.time() + seconds
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def test_batches_are_the_same_with_any_number_of_workers_and_after_an_early_stop():
    expected = [list(range(b, min(b + 3, 20))) for b in range(0, 20, 3)]
    for workers in (0, 1, 3):
        loader = WorkerLoader(_Data(20), _batches(20, 3), num_workers=workers)
        for _ in range(2):                              # a pass left early, then whole ones
            first = next(iter(loader))
            assert first.asnumpy()[:, 1].tolist() == expected[0]
            got = [b.asnumpy() for b in loader]
            assert [b[:, 1].tolist() for b in got] == expected
        pids = {int(p) for b in got for p in b[:, 0]}
        assert (pids == {os.getpid()}) == (workers == 0)
        if workers:
            assert len(pids) == workers
            loader.close()
            assert _wait_gone(pids, 5) == []


def test_an_exception_in_a_worker_is_raised_as_itself():
    for workers in (0, 2):
        loader = WorkerLoader(_Data(12, bad=7, how='raise'), _batches(12, 2),
                              num_workers=workers)
        with pytest.raises(DataWorkerError, match=r'^sample 7 is bad: see the file$'):
            list(loader)


@pytest.mark.parametrize('how,expected', [('kill', r'killed by SIGKILL.*batch 4 .*\[6, 7\]'),
                                          ('stuck', r'no batch in 2 s.*batch 4 .*\[6, 7\]')])
def test_a_dead_or_stuck_worker_is_an_error_within_a_bound(how, expected):
    before = {p.pid for p in multiprocessing.active_children()}
    loader = WorkerLoader(_Data(12, bad=7, how=how), _batches(12, 2), num_workers=3,
                          name='test data', timeout=2)
    pids, tic = {p.pid for p in multiprocessing.active_children()} - before, time.time()
    assert len(pids) == 3
    with pytest.raises(DataWorkerError, match=expected):
        list(loader)
    assert time.time() - tic < 30
    assert _wait_gone(pids, 5) == []                   # the other workers were ended too
    assert [b.asnumpy()[0, 1] for b in WorkerLoader(_Data(4), _batches(4, 2), num_workers=2)] \
        == [0, 2]


@pytest.mark.subprocess
def test_workers_die_with_their_process_even_by_sigkill(tmp_path):
    """A process with a loader's workers killed by SIGKILL leaves no worker behind."""
    code = ('import os, signal, sys\n'
            'sys.path.insert(0, %r)\n'
            'from test_worker_failures import _Data, _batches\n'
            'from gluon_tricks.data.workers import WorkerLoader\n'
            'loader = WorkerLoader(_Data(8), _batches(8, 2), num_workers=3)\n'
            'it = iter(loader); batch = next(it)\n'
            'print(sorted({int(p) for b in [batch] + [next(it), next(it)] '
            'for p in b.asnumpy()[:, 0]}), flush=True)\n'
            'os.kill(os.getpid(), signal.SIGKILL)\n' % os.path.dirname(os.path.abspath(__file__)))
    status, out, err = _run([sys.executable, '-c', code], limit=60)
    assert status == -signal.SIGKILL, err[-2000:]
    pids = [int(p) for p in out.strip().strip('[]').split(',')]
    assert len(pids) == 3 and os.getpid() not in pids
    assert _wait_gone(pids) == []


# ------------------------------------------------- the table runner never waits forever on a row
def _fake_python(tmp_path, body):
    """A stand-in for the runner's PYTHON: a shell script that records its pids in PIDS."""
    script = tmp_path / 'fake-python'
    script.write_text('#!/bin/sh\necho "fake row $$"\necho $$ >> %s\n%s\n'
                      % (tmp_path / 'PIDS', body))
    script.chmod(0o755)
    return str(script)


def _runner(monkeypatch, tmp_path, fake, rows, *flags):
    from tools.experiments import run
    monkeypatch.setenv('PYTHON', fake)
    monkeypatch.setattr(run, 'STOP_GRACE', 2.0)
    tic = time.time()
    code = run.main(['table6', '--rows', rows, '--runs-dir', str(tmp_path / 'runs'),
                     '--no-report'] + list(flags))
    return code, time.time() - tic


def test_a_row_past_its_time_limit_is_killed_with_its_group_and_the_table_goes_on(
        monkeypatch, tmp_path, capfd):
    # ignores SIGTERM, like a hung process; its child sleeps on
    fake = _fake_python(tmp_path, "trap '' TERM\nsleep 600 &\necho $! >> %s\nwait\nwait"
                        % (tmp_path / 'PIDS'))
    code, seconds = _runner(monkeypatch, tmp_path, fake,
                            'r50d-efficient,teacher-r152d-cos-ls,r50d-distill,r50d-mixup',
                            '--row-timeout', '2')
    err = capfd.readouterr().err
    assert code == 1 and seconds < 60, (code, seconds, err)
    for row in ('r50d-efficient', 'teacher-r152d-cos-ls', 'r50d-mixup'):   # each one tried
        line = next(ln for ln in err.splitlines() if ('] %s: FAILED' % row) in ln)
        assert 'ran longer than its limit of 2 s (--row-timeout, ROW_TIMEOUT)' in line, line
        assert 'SIGTERM and, 2 s later, SIGKILL' in line and 'console.log' in line, line
        assert 'fake row' in (tmp_path / 'runs' / row / 'console.log').read_text()
    assert '[table6] r50d-distill: skipped, it needs row teacher-r152d-cos-ls, which failed' \
        in err
    assert not (tmp_path / 'runs' / 'r50d-distill').exists()
    assert '4 row(s) failed or skipped' in err
    pids = [int(p) for p in (tmp_path / 'PIDS').read_text().split()]
    assert len(pids) == 6 and _wait_gone(pids, 5) == []


def test_a_silent_row_is_stopped_and_a_talking_one_is_not(monkeypatch, tmp_path, capfd):
    fake = _fake_python(tmp_path, 'for i in 1 2 3 4 5 6; do echo step $i; sleep 0.5; done\n'
                                  'sleep 600')
    monkeypatch.setenv('ROW_SILENCE', '2')
    code, seconds = _runner(monkeypatch, tmp_path, fake, 'r50d-efficient')
    err = capfd.readouterr().err
    assert code == 1 and seconds < 60, (code, seconds, err)
    line = next(ln for ln in err.splitlines() if '] r50d-efficient: FAILED' in ln)
    assert 'wrote no output for 2 s (--row-silence, ROW_SILENCE): hung?' in line, line
    assert 'with SIGTERM (exit status' in line, line         # SIGTERM was enough
    log = (tmp_path / 'runs' / 'r50d-efficient' / 'console.log').read_text()
    assert 'step 6' in log                                    # 3 s of output, never 2 silent
    assert _wait_gone([int(p) for p in (tmp_path / 'PIDS').read_text().split()], 5) == []


def test_the_default_row_limit_cannot_cut_a_row_that_trains():
    from tools.experiments import scale as S
    from tools.experiments.estimate import row_seconds
    from tools.experiments.run import plan, row_time_limit
    from tools.experiments.tables import FIGURES, TABLES
    rows = plan(list(TABLES) + list(FIGURES), 'proxy', S.PROXY)
    assert len(rows) > 50
    for _, exp in rows:
        limit = row_time_limit(exp, 'proxy', S.PROXY)
        assert limit >= max(1800, 10 * row_seconds(exp, S.PROXY)), exp.name
    exp = plan(['table2'], 'full')[0][1]
    assert row_time_limit(exp, 'full', S.PROXY) == 0          # no estimate: silence only
    assert row_time_limit(exp, 'full', S.PROXY, 5) == 5


def test_a_fifo_in_a_class_folder_is_named_not_waited_on(tmp_path):
    """A named pipe called like an image: reading it would block forever even with -j 0."""
    from gluon_tricks.data import CorruptImageError
    from gluon_tricks.data.folder import FolderSource
    os.makedirs(str(tmp_path / 'a'))
    fifo = str(tmp_path / 'a' / 'pipe.jpg')
    os.mkfifo(fifo)
    with pytest.raises(CorruptImageError, match='pipe.jpg.*not a regular file'):
        FolderSource([(fifo, 0)]).read(0)
