"""Durable file writes shared by checkpoints and run files: fsync, atomic replace, sha256,
and the error of a full disk."""
import errno
import hashlib
import os

import mxnet as mx

from .errors import DiskFullError

__all__ = ['file_digest', 'sha256', 'is_disk_full', 'disk_full_error', 'fsync_dir', 'fsync_file',
           'write_atomic', 'pid_alive']


def file_digest(path, algorithm='sha256', chunk=1 << 22):
    """The hex digest of a file's bytes (``hashlib`` algorithm name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def sha256(path, chunk=1 << 22):
    """The checksum recorded for every checkpoint file."""
    return file_digest(path, 'sha256', chunk)


def is_disk_full(err):
    """Whether ``err`` (OSError or MXNetError) means the device (or the quota) is full."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return isinstance(err, mx.base.MXNetError) and (
        'Write incomplete' in text or 'No space left' in text)


def disk_full_error(save_dir, what, previous=None):
    """The :class:`~gluon_tricks.errors.DiskFullError` for a write into ``save_dir`` that
    found the device full."""
    return DiskFullError(
        'no space left on the device holding %s: %s was not written%s. Free space there (or '
        'use another --save-dir) and continue with --resume.'
        % (os.path.abspath(save_dir), what,
           '; the previous checkpoint %s is kept' % previous if previous else ''))


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_file(path):
    with open(path, 'rb+') as f:
        os.fsync(f.fileno())


def write_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file, fsync and ``os.replace``. On any
    failure the temporary file is removed and ``path`` is as it was; a full device raises
    :class:`~gluon_tricks.errors.DiskFullError` naming ``path``."""
    tmp = '%s.tmp-%d' % (path, os.getpid())
    try:
        with open(tmp, 'w') as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(err, OSError) and is_disk_full(err):
            raise DiskFullError('no space left on the device holding %s: %s was not '
                                'rewritten (it is unchanged). Free space there and run the '
                                'command again.' % (os.path.abspath(os.path.dirname(path)
                                                                    or '.'), path)) from None
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM
    return True
