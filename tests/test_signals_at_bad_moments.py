"""Signals at bad moments: a second Ctrl-C while a checkpoint is being written."""
import os
import signal
import subprocess
import sys

import pytest

from gluon_tricks.runlog import _SignalFlag

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_second_ctrl_c_waits_for_the_checkpoint_being_written(tmp_path):
    flag = _SignalFlag()
    try:
        os.kill(os.getpid(), signal.SIGINT)          # the first Ctrl-C: stop at the next step
        assert flag.signum == signal.SIGINT
        path = tmp_path / 'checkpoint'
        with pytest.raises(KeyboardInterrupt):
            with flag.writing():
                with open(str(path), 'w') as f:
                    f.write('first half ')
                    os.kill(os.getpid(), signal.SIGINT)   # the second, in the middle
                    f.write('second half')
        assert path.read_text() == 'first half second half'   # finished before stopping
        with pytest.raises(KeyboardInterrupt):               # outside a write: at once
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        flag.uninstall()


@pytest.mark.subprocess
def test_ctrl_c_twice_ends_without_a_traceback(tmp_path):
    script = tmp_path / 'snippet.py'
    script.write_text('from gluon_tricks.errors import run_main\n'
                      'def main():\n    raise KeyboardInterrupt\nrun_main(main)\n')
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 130
    assert 'interrupted (Ctrl-C)' in proc.stderr and 'Traceback' not in proc.stderr
