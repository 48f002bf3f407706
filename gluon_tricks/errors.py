"""Errors the user can fix: bad flags, files, data or checkpoints.

:func:`gluon_tricks.distributed.run_main` shows a :class:`UserError` as its message alone
(no traceback; ``GLUON_TRICKS_TRACEBACK=1`` shows it); any other exception is an internal
error and keeps its traceback.
"""

__all__ = ['UserError', 'DiskFullError', 'Preempted', 'ResumeConfigError',
           'NonFiniteLossError', 'DamagedFileError', 'ConfigError', 'mxnet_error_line']


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
