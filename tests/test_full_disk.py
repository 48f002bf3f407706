"""A full disk while the run writes its files: one clear line, nothing half-written."""
import errno
import logging
import os

import pytest

from gluon_tricks import fsutil
from gluon_tricks.errors import DiskFullError
from gluon_tricks.runlog import _LogFile


def test_a_full_log_file_is_reported_once_without_tracebacks(capsys):
    logger = logging.getLogger('gluon_tricks.test_full_disk')
    handler = _LogFile('/dev/full')        # every write to /dev/full fails with ENOSPC
    logger.addHandler(handler)
    try:
        for i in range(5):
            logger.error('line %d', i)
    finally:
        logger.removeHandler(handler)
        try:
            handler.close()
        except OSError:
            pass
    err = capsys.readouterr().err
    assert 'Logging error' not in err and 'Traceback' not in err
    assert err.count('cannot write /dev/full') == 1
    assert 'No space left' in err


def test_write_atomic_on_a_full_disk_leaves_the_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / 'metrics.jsonl'
    path.write_text('old\n')

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'fsync', full)
    with pytest.raises(DiskFullError, match='no space left on the device holding %s' % tmp_path):
        fsutil.write_atomic(str(path), 'new\n')
    monkeypatch.undo()
    assert path.read_text() == 'old\n'
    assert sorted(os.listdir(str(tmp_path))) == ['metrics.jsonl']
