"""Errors the user can fix: bad flags, files, data or checkpoints.

:func:`run_main`, the entry point of every script, shows a :class:`UserError` as its message
alone (no traceback; ``GLUON_TRICKS_TRACEBACK=1`` shows it); any other exception is an internal
error and keeps its traceback. This module is the one error policy: it imports neither MXNet nor
Horovod.
"""
import logging
import os
import sys
import traceback

__all__ = ['UserError', 'DiskFullError', 'Preempted', 'ResumeConfigError',
           'NonFiniteLossError', 'DamagedFileError', 'ConfigError', 'mxnet_error_line',
           'run_main', 'current_rank']


class UserError(Exception):
    """Base class of every error whose message tells the user what to change."""


class DiskFullError(UserError, OSError):
    """Writing a checkpoint or a run file failed because the device is full."""


class Preempted(UserError):
    """The run stopped on SIGTERM/SIGINT after writing a resumable checkpoint.

    ``run_main`` ends the process with :attr:`exit_code` (128 + the signal number).
    """

    def __init__(self, message, signum):
        super(Preempted, self).__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


class ResumeConfigError(UserError, ValueError):
    """``--resume`` with flags that define the training differently from the checkpoint."""


class NonFiniteLossError(UserError, ArithmeticError):
    """The training loss became NaN or infinite (the message names the epoch, the batch and
    the last good checkpoint)."""


class ConfigError(UserError, ValueError):
    """A flag or file that cannot work, found once the run has started (devices that are not
    there, a schedule that does not fit the data, a model file of another network ...)."""


class DamagedFileError(UserError, ValueError):
    """A file of a checkpoint whose sha256 differs from the one recorded when it was saved."""


def mxnet_error_line(err):
    """The useful line of an ``MXNetError`` (its text carries a C++ stack): the last line
    that says what failed."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    said = [ln for ln in lines if 'Check failed' in ln or 'Error' in ln]
    return said[-1] if said else lines[-1] if lines else repr(err)


def current_rank():
    """``(rank, size)`` of this process as far as it can be known without side effects:
    Horovod's if it is initialized, else the launcher's environment, else ``(0, 1)``."""
    hvd = sys.modules.get('horovod.mxnet')
    if hvd is not None:
        try:
            if hvd.is_initialized():
                return hvd.rank(), hvd.size()
        except Exception:   # pragma: no cover - defensive, never let error reporting fail
            pass
    for r, s in (('HOROVOD_RANK', 'HOROVOD_SIZE'), ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'),
                 ('PMI_RANK', 'PMI_SIZE')):
        if r in os.environ:
            try:
                return int(os.environ[r]), int(os.environ.get(s, 0))
            except ValueError:
                pass
    return 0, 1


def run_main(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` as a program entry point that cannot leave a hung rank.

    On success returns ``fn``'s result.  On an exception (including ``KeyboardInterrupt`` and
    ``SystemExit`` with a non-zero code) it writes ``[gluon_tricks] rank R/N failed: <error>``
    and the traceback to stderr (and to the file handlers of the root logger), flushes, and
    ends the process with ``os._exit(code)`` (1, 130 for Ctrl-C, the ``SystemExit`` code, or
    the exception's ``exit_code``: 128 + signal for
    :class:`~gluon_tricks.errors.Preempted`): no thread joins and no ``atexit`` handlers
    that could block on a collective.  Under ``horovodrun`` the launcher then terminates the
    other ranks and exits non-zero.  User errors (:func:`_is_user_error`) are shown without
    their traceback.
    """
    try:
        return fn(*args, **kwargs)
    except SystemExit as e:
        if e.code in (None, 0):
            raise
        if e.code == 2:   # argparse's usage error: it has printed the message already
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(2)
        code = e.code if isinstance(e.code, int) else 1
        _report_failure(e, code)
    except KeyboardInterrupt as e:
        _report_failure(e, 130)
    except BaseException as e:   # noqa: B902 - anything must end the rank
        _report_failure(e, getattr(e, 'exit_code', 1))


def _is_user_error(exc):
    """Errors shown without a traceback: every :class:`~gluon_tricks.errors.UserError` (our
    checks of flags, files, data and checkpoints, NaN losses, preemption), ``SystemExit``,
    and the OS errors of a path the user gave (not found, no permission, a directory where a
    file was expected or the reverse: their message names the path). Any other exception,
    a ``ValueError`` or ``KeyError`` of our own code included, keeps its traceback: it is a
    bug to report."""
    return isinstance(exc, (UserError, SystemExit, FileNotFoundError, PermissionError,
                            IsADirectoryError, NotADirectoryError, FileExistsError))


def _report_failure(exc, code):
    try:
        rank, size = current_rank()
        head = '[gluon_tricks] rank %d/%d failed: %s: %s' % (rank, size, type(exc).__name__, exc)
        if isinstance(exc, Preempted):
            head = '[gluon_tricks] rank %d/%d stopped: %s' % (rank, size, exc)
        if isinstance(exc, KeyboardInterrupt):   # Ctrl-C twice: the user's decision
            head = ('[gluon_tricks] rank %d/%d interrupted (Ctrl-C): stopped at once; the last '
                    'complete checkpoint is intact, continue with --resume' % (rank, size))
        if (_is_user_error(exc) or isinstance(exc, KeyboardInterrupt)) and \
                not os.environ.get('GLUON_TRICKS_TRACEBACK'):
            # a mistake in the flags or the data: the message says what to do
            text = head + '\n(set GLUON_TRICKS_TRACEBACK=1 to see the traceback)\n'
        else:
            text = head + '\n' + traceback.format_exc()
        sys.stderr.write(text if text.endswith('\n') else text + '\n')
        handlers = logging.getLogger().handlers + logging.getLogger('gluon_tricks').handlers
        for h in handlers:
            if isinstance(h, logging.FileHandler):
                h.emit(logging.LogRecord('gluon_tricks', logging.CRITICAL, __file__, 0, text,
                                         None, None))
                h.flush()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:   # pragma: no cover
                pass
        os._exit(code)
