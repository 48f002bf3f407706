"""One run at a time in a save directory: :class:`RunLock` on ``SAVE_DIR/.run.lock``.

Two processes writing one ``--save-dir`` destroy each other's results (interleaved
``metrics.jsonl`` lines, one run's pruning deleting the other's checkpoints), so the training
loop's rank 0 holds an exclusive lock on the directory for the whole run, taken before
anything is written there (before ``--overwrite`` moves an earlier run aside and before
``--resume`` repairs files). A second run into the directory is refused with
:class:`SaveDirInUseError` naming the holder (host, pid, start time, command).

The lock is a POSIX record lock (``fcntl.lockf``) on the lock file: the kernel releases it
when the holding process ends, however it ends (SIGKILL, a crash, a lost node of a network
file system whose lock manager notices), so no stale lock ever blocks ``--resume``. It is
not inherited by forked children (data workers), unlike ``flock``. The holder's details
written into the file only inform the refusal; the lock is what counts. The file is hidden,
belongs to no run (``--overwrite`` leaves it where it is) and is removed when the run ends
(one killed by SIGKILL leaves it, unlocked: the next run takes it).
"""
import errno
import json
import os
import shlex
import socket
import sys
import time

from .errors import UserError

__all__ = ['RunLock', 'SaveDirInUseError', 'SaveDirError', 'release_run_lock', 'LOCK_FILE']

#: The lock file in the save directory.
LOCK_FILE = '.run.lock'

# This process's locks by real path: a POSIX lock is per process, and closing any descriptor
# of the file drops it, so the file is opened once per process and a later run of this
# process into the same directory (an earlier one ended by an exception) takes it over.
_HELD = {}


class SaveDirInUseError(UserError):
    """Another process holds the run lock of the save directory."""


class SaveDirError(UserError, OSError):
    """The save directory cannot hold the run lock (not a directory, not writable)."""


def _describe(info):
    if not info:
        return 'another process (it is starting: no details written yet)'
    return 'pid %s on host %s, started %s, command: %s' % (
        info.get('pid', '?'), info.get('host', '?'), info.get('started', '?'),
        info.get('command', '?'))


class RunLock(object):
    """The exclusive lock of a save directory for one run.

    Parameters
    ----------
    save_dir : str
        Created if missing.

    Examples
    --------
    >>> lock = RunLock('runs/r50').acquire()      # doctest: +SKIP
    >>> ...                                        # the run writes runs/r50
    >>> lock.release()                             # doctest: +SKIP
    """

    def __init__(self, save_dir):
        self.save_dir = save_dir
        self.path = os.path.join(save_dir, LOCK_FILE)
        self.note = None            # set when the file system offers no locks
        self._key, self._created = None, False

    @property
    def held(self):
        """Whether this object holds the lock."""
        entry = _HELD.get(self._key)
        return entry is not None and entry[1] is self

    def acquire(self, command=None):
        """Take the lock (without waiting) and write this process's details into the file;
        returns ``self``.

        Raises
        ------
        SaveDirInUseError
            Another process holds it: the message names the holder and what to do.
        SaveDirError
            ``save_dir`` is not a directory or not writable.
        """
        created = not os.path.exists(self.save_dir)
        try:
            os.makedirs(self.save_dir, exist_ok=True)
        except OSError as err:
            raise SaveDirError('--save-dir %s cannot be created (%s): choose another --save-dir'
                               % (self.save_dir, err.strerror or err)) from None
        if not os.path.isdir(self.save_dir):
            raise SaveDirError('--save-dir %s is not a directory: choose another --save-dir'
                               % self.save_dir)
        key = os.path.realpath(self.path)
        if key in _HELD:            # this process: an earlier run that ended by an exception
            fd, created = _HELD[key][0], _HELD[key][1]._created
        else:
            fd = self._lock()
        _HELD[key], self._key, self._created = (fd, self), key, created
        _write_info(fd, command)
        return self

    def _lock(self):
        import fcntl
        for _ in range(100):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_CLOEXEC', 0),
                             0o644)
            except OSError as err:
                raise SaveDirError(
                    '--save-dir %s is not writable (cannot open its lock file %s: %s): choose '
                    'a writable --save-dir' % (self.save_dir, self.path, err.strerror or err)) \
                    from None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EACCES, errno.EAGAIN):
                    info = _read_info(fd)
                    os.close(fd)    # this process held no lock on the file: nothing dropped
                    raise SaveDirInUseError(
                        '--save-dir %s is in use by another run: %s (lock %s). Two runs in one '
                        'directory would overwrite each other\'s metrics and checkpoints. Wait '
                        'for that run to end (or stop it; then continue it with --resume), or '
                        'choose another --save-dir.' % (self.save_dir, _describe(info),
                                                        self.path)) from None
                # no lock support (ENOLCK, EOPNOTSUPP ...): run, but say so
                self.note = ('note: the file system of --save-dir %s offers no file locks (%s): '
                             'a second run started into it would not be refused'
                             % (self.save_dir, err.strerror or err))
                sys.stderr.write(self.note + '\n')
                return fd
            if _same_file(fd, self.path):
                return fd
            os.close(fd)            # its holder removed the file as we opened it: again
        raise SaveDirError('--save-dir %s: its lock file %s keeps being replaced; is another '
                           'program removing it?' % (self.save_dir, self.path))

    def release(self):
        """Give the lock back: remove the lock file (and ``save_dir`` if this lock created it
        and it is still empty); a no-op unless held. The file is removed while locked, and a
        process that locked it just before checks that it still exists, so two runs never hold
        two files of one name."""
        entry = _HELD.get(self._key)
        if entry is None or entry[1] is not self:
            return
        del _HELD[self._key]
        try:
            if _same_file(entry[0], self.path):
                os.unlink(self.path)
        except OSError:
            pass
        os.close(entry[0])          # drops the lock
        if self._created:
            try:
                os.rmdir(self.save_dir)
            except OSError:         # the run wrote there: it stays
                pass

    def holder(self):
        """The details the current holder wrote (a dict), or ``None``."""
        entry = _HELD.get(os.path.realpath(self.path))
        if entry is not None:       # never open a second descriptor: closing it would unlock
            return _read_info(entry[0])
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            return _read_info(fd)
        finally:
            os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def release_run_lock(save_dir):
    """Release this process's lock of ``save_dir`` if it holds one (the end of a run, also one
    that failed)."""
    entry = _HELD.get(os.path.realpath(os.path.join(save_dir, LOCK_FILE)))
    if entry is not None:
        entry[1].release()


def _same_file(fd, path):
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _write_info(fd, command=None):
    argv = [os.path.basename(sys.executable)] + list(sys.argv)
    command = command or ' '.join(shlex.quote(a) for a in argv)
    info = {'host': socket.gethostname(), 'pid': os.getpid(), 'time': time.time(),
            'started': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
            'command': command if len(command) <= 400 else command[:400] + ' ...'}
    data = (json.dumps(info, sort_keys=True) + '\n').encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    except OSError:
        pass                        # only informative (a full disk shows up elsewhere)


def _read_info(fd, tries=10):
    """The holder's details; a holder that has just taken the lock may not have written them
    yet: a few short waits."""
    for i in range(tries):
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            return None
        if data.strip():
            try:
                info = json.loads(data.decode('utf-8', 'replace'))
                return info if isinstance(info, dict) else None
            except ValueError:
                pass                # being written
        time.sleep(0.05)
    return None
