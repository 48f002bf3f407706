"""One run at a time in a save directory (gluon_tricks.runlock): a second run is refused naming
the holder, a run killed by SIGKILL leaves no stale lock, and the lock file is no part of any
run (a fresh directory stays fresh, --overwrite leaves it in place).

The end-to-end tests start real training processes (scripts/classification/train_imagenet.py
on the test digits), each under a hard time limit.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from gluon_tricks import runlog
from gluon_tricks.errors import UserError
from gluon_tricks.runlock import LOCK_FILE, RunLock, SaveDirInUseError, release_run_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, 'scripts', 'classification', 'train_imagenet.py')
LIMIT = 300           # seconds for one training process (a few epochs take about 10 s)


def _holder(save_dir, fork_child=False):
    """A process that takes the lock, prints its pid (and a forked child's) and sleeps."""
    code = ('import os, sys, time\n'
            'from gluon_tricks.runlock import RunLock\n'
            'RunLock(%r).acquire(command="holder of the test")\n'
            'child = os.fork() if %r else 0\n'
            'if child == 0 and %r:\n'
            '    time.sleep(60); os._exit(0)\n'
            'print(os.getpid(), child, flush=True)\n'
            'time.sleep(60)\n' % (str(save_dir), fork_child, fork_child))
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True)
    pid, child = (int(v) for v in proc.stdout.readline().split())
    return proc, pid, child


@pytest.mark.subprocess
def test_a_held_lock_refuses_naming_the_holder_and_dies_with_it(tmp_path):
    save = tmp_path / 'run'
    proc, pid, child = _holder(save, fork_child=True)
    try:
        with pytest.raises(SaveDirInUseError) as err:
            RunLock(str(save)).acquire()
        msg = str(err.value)
        assert isinstance(err.value, UserError)
        for part in ('--save-dir %s is in use by another run' % save, 'pid %d' % pid,
                     'host %s' % socket.gethostname(), 'command: holder of the test',
                     'started 20', '--resume', 'another --save-dir'):
            assert part in msg, (part, msg)
        os.kill(pid, signal.SIGKILL)
        proc.wait(10)
        # the holder's forked child lives on, but a POSIX lock is not inherited by a fork
        os.kill(child, 0)
        lock = RunLock(str(save)).acquire()
        assert lock.held and lock.holder()['pid'] == os.getpid()
        lock.release()
        assert not lock.held and RunLock(str(save)).holder() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.subprocess
def test_this_process_takes_over_its_own_lock_and_releases_it(tmp_path):
    """A run of this process that ended by an exception does not block the next one."""
    first = RunLock(str(tmp_path)).acquire()
    second = RunLock(str(tmp_path)).acquire()
    assert second.held and not first.held
    first.release()                                    # no longer the owner: nothing happens
    assert second.held
    release_run_lock(str(tmp_path))
    assert not second.held
    proc, pid, _ = _holder(tmp_path)                   # really free: another process takes it
    try:
        with pytest.raises(SaveDirInUseError, match='pid %d' % pid):
            RunLock(str(tmp_path)).acquire()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def test_the_lock_file_is_no_part_of_a_run(tmp_path):
    save = tmp_path / 'run'
    lock = RunLock(str(save)).acquire()
    try:
        assert os.listdir(str(save)) == [LOCK_FILE]
        assert runlog.prepare_save_dir(str(save)) is None          # still a fresh directory
        (save / 'metrics.jsonl').write_text('{"epoch": 1}\n')
        with pytest.raises(UserError, match=r'holds an earlier run \(metrics\.jsonl\)'):
            runlog.prepare_save_dir(str(save))
        note = runlog.prepare_save_dir(str(save), overwrite=True)
        assert 'metrics.jsonl' in note and LOCK_FILE not in note
        aside = [d for d in os.listdir(str(save)) if d.startswith('replaced-')]
        assert sorted(os.listdir(str(save))) == sorted([LOCK_FILE] + aside)
        assert os.listdir(str(save / aside[0])) == ['metrics.jsonl']
        assert lock.held and lock.holder()['pid'] == os.getpid()
    finally:
        lock.release()
    assert LOCK_FILE not in os.listdir(str(save))               # a run leaves no trace
    fresh = tmp_path / 'fresh'
    RunLock(str(fresh)).acquire().release()
    assert not fresh.exists()                                   # not even the directory


def test_a_save_dir_that_is_a_file_is_a_clear_error(tmp_path):
    path = tmp_path / 'file'
    path.write_text('x')
    with pytest.raises(UserError, match='--save-dir .*file'):
        RunLock(str(path)).acquire()


# ------------------------------------------------------------------ real training processes
def _cmd(rec_dir, save, *extra):
    return [sys.executable, TRAIN, '--model', 'resnet18_v1d', '--use-rec', '--data-dir',
            rec_dir, '--input-size', '32', '--crop-ratio', '0.8', '--batch-size', '32',
            '-j', '1', '--log-interval', '1', '--save-dir', str(save)] + list(extra)


def _start(args):
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, start_new_session=True,
                            env=dict(os.environ, OMP_NUM_THREADS='1'))


def _finish(proc, limit=LIMIT):
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail('a training process did not end within %d s' % limit)
    return proc.returncode, out, err


def _epochs(save):
    with open(os.path.join(str(save), 'metrics.jsonl')) as f:
        return [json.loads(line)['epoch'] for line in f]


def _refused_by(err, pid):
    lines = [ln for ln in err.splitlines() if 'failed:' in ln]
    assert lines and 'SaveDirInUseError' in lines[-1], err[-2000:]
    assert 'pid %d on host %s' % (pid, socket.gethostname()) in lines[-1], lines[-1]
    assert 'train_imagenet.py' in lines[-1] and 'Traceback' not in err, err[-2000:]


@pytest.mark.subprocess
def test_two_runs_started_at_once_into_one_save_dir(rec_dir, tmp_path):
    save = tmp_path / 'run'
    procs = [_start(_cmd(rec_dir, save, '--num-epochs', '3')) for _ in range(2)]
    results = [_finish(p) for p in procs]
    codes = [r[0] for r in results]
    assert sorted(codes) == [0, 1], [r[2][-1500:] for r in results]
    winner, loser = (0, 1) if codes[0] == 0 else (1, 0)
    _refused_by(results[loser][2], procs[winner].pid)
    assert _epochs(save) == [1, 2, 3]
    assert results[loser][1] == ''                      # refused before it logged anything
    with open(str(save / 'train.log')) as f:
        assert f.read().count(' data: ') == 1


@pytest.mark.subprocess
def test_resume_while_the_run_trains_is_refused_and_after_sigkill_works(rec_dir, tmp_path):
    save = tmp_path / 'run'
    first = _start(_cmd(rec_dir, save, '--num-epochs', '50'))
    try:
        deadline, seen = time.time() + LIMIT, ''
        while 'checkpoint: ' not in seen:                 # epoch 1 saved: --resume has work
            line = first.stdout.readline()
            assert line and time.time() < deadline, seen[-2000:] + first.stderr.read()[-2000:]
            seen += line
        code, _, err = _finish(_start(_cmd(rec_dir, save, '--num-epochs', '2', '--resume')))
        assert code == 1
        _refused_by(err, first.pid)
        assert first.poll() is None                         # the run itself goes on
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert json.loads((save / LOCK_FILE).read_text())['pid'] == first.pid   # details stay ...
    code, out, err = _finish(_start(_cmd(rec_dir, save, '--num-epochs', '2', '--resume')))
    assert code == 0, err[-2000:]                           # ... but the lock died with it
    assert 'resumed from' in out and _epochs(save) == [1, 2]
