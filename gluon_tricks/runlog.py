"""The files and signals of a training run around :func:`gluon_tricks.training.fit`: the log
and the per-epoch ``metrics.jsonl``, the save directory (never a new run over a finished one),
``--resume`` (with repairs), checkpoints in the middle of an epoch, and SIGTERM/SIGINT
(:class:`TrainingRun`).
"""
import errno
import json
import logging
import os
import signal
import sys
import time
import weakref

import numpy as np

from .errors import DiskFullError, Preempted, UserError
from .fsutil import write_atomic

__all__ = ['make_logger', 'append_jsonl', 'read_metrics', 'prepare_save_dir',
           'TrainingRun', 'MetricsError', 'STOP_CHECK_BATCHES', 'write_config',
           'CONFIG_FILE']

#: Under Horovod the ranks agree whether to stop (a signal reached some rank) every this many
#: batches: one tiny allreduce (a host synchronisation) per STOP_CHECK_BATCHES steps instead
#: of one per step. A single process checks its flag after every step (no cost).
STOP_CHECK_BATCHES = 10

#: The resolved configuration of a run, in its save directory.
CONFIG_FILE = 'config.json'


class MetricsError(UserError, ValueError):
    """``metrics.jsonl`` does not hold exactly one line per epoch, in order."""


def make_logger(name, save_dir, is_master, logging_file=None):
    """A logger writing to stdout and ``SAVE_DIR/train.log`` on the master rank only.

    Parameters
    ----------
    name : str
        Logger name.
    save_dir : str
        Created on the master rank.
    is_master : bool
        Other ranks get a logger that discards everything.
    logging_file : str, optional
        Log file (default ``SAVE_DIR/train.log``).

    Returns
    -------
    logging.Logger
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = False
    if is_master:
        os.makedirs(save_dir, exist_ok=True)
        fmt = logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%d %H:%M:%S')
        for handler in (logging.StreamHandler(sys.stdout),
                        _LogFile(logging_file or os.path.join(save_dir, 'train.log'))):
            handler.setFormatter(fmt)
            logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    return logger


class _LogFile(logging.FileHandler):
    """``train.log``: a write that fails (a full disk) is reported once, in one line, instead
    of logging's ``--- Logging error ---`` traceback for every line; the lines still reach
    stdout."""

    _warned = False

    def handleError(self, record):
        if not self._warned:
            self._warned = True
            err = sys.exc_info()[1]
            sys.stderr.write('[gluon_tricks] cannot write %s (%s): log lines go to stdout only '
                             'until it can\n' % (self.baseFilename, err))


def append_jsonl(path, record):
    """Append one JSON line to ``path`` (e.g. ``SAVE_DIR/metrics.jsonl``) in one write.

    Parameters
    ----------
    path : str
    record : dict
        JSON-serialisable (numpy scalars are converted).

    Raises
    ------
    gluon_tricks.errors.DiskFullError
        The device is full (the file is left as it was).
    """
    line = json.dumps(record, sort_keys=True, default=_json_default) + '\n'
    size = os.path.getsize(path) if os.path.exists(path) else 0
    try:
        with open(path, 'a') as f:
            f.write(line)
            f.flush()
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        try:
            os.truncate(path, size)   # no half line
        except OSError:
            pass
        raise DiskFullError('no space left on the device holding %s: the metrics line of epoch '
                            '%s was not written to %s. Free space there and continue with '
                            '--resume.' % (os.path.abspath(os.path.dirname(path) or '.'),
                                           record.get('epoch'), path)) from None


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError('%r is not JSON serialisable' % (value,))


def read_metrics(path):
    """The records of ``metrics.jsonl``: exactly one per epoch, consecutive epochs in order.

    Anything else (a duplicate, a gap, a line that is not JSON) raises :class:`MetricsError`
    naming the file and the line: ``--resume`` rewrites the file to one line per epoch up to
    its checkpoint. A missing file gives ``[]``.
    """
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise MetricsError('%s line %d is not a JSON record (cut by a crash?); continue '
                                   'the run with --resume to repair the file' % (path, number))
            epoch = rec.get('epoch') if isinstance(rec, dict) else None
            expected = records[-1]['epoch'] + 1 if records else None
            if not isinstance(epoch, int) or epoch < 1 or \
                    (expected is not None and epoch != expected):
                raise MetricsError('%s line %d holds epoch %r where epoch %s was expected (one '
                                   'line per epoch, in order); continue the run with --resume '
                                   'to repair the file' % (path, number, epoch,
                                                           expected or '>= 1'))
            records.append(rec)
    return records


_RUN_FILES = ('metrics.jsonl', 'train.log', 'results.json', CONFIG_FILE)


def _previous_run(save_dir, prefix='checkpoint'):
    """The entries of ``save_dir`` that belong to an earlier run: checkpoints (pointer,
    epoch directories, best link and copies) and ``metrics.jsonl``."""
    if not os.path.isdir(save_dir):
        return []
    found = []
    for entry in sorted(os.listdir(save_dir)):
        if entry.startswith(prefix + '-') or entry.startswith('.%s-best' % prefix) or \
                entry == 'metrics.jsonl':
            found.append(entry)
    return found


def prepare_save_dir(save_dir, resume=False, overwrite=False, is_master=True):
    """A new run never starts over an earlier one.

    Without ``resume``, a ``save_dir`` holding checkpoints or ``metrics.jsonl`` is refused
    (:class:`~gluon_tricks.errors.UserError` offering ``--resume``, ``--overwrite`` or a
    fresh directory) before anything is written. With ``overwrite``, the master moves the
    earlier run (checkpoints, ``metrics.jsonl``, ``train.log``, ``results.json``) into
    ``save_dir/replaced-<time>/`` and returns a sentence saying so (else ``None``).
    """
    if resume:
        return None
    previous = _previous_run(save_dir)
    if not previous:
        return None
    if not overwrite:
        raise UserError(
            '--save-dir %s holds an earlier run (%s). Continue it with --resume, replace it with '
            '--overwrite (its files are moved to %s/replaced-<time>/), or choose a fresh '
            '--save-dir.' % (save_dir, ', '.join(previous[:6]) + (' ...' if len(previous) > 6
                                                                  else ''), save_dir))
    if not is_master:
        return None
    aside = os.path.join(save_dir, 'replaced-%s' % time.strftime('%Y%m%d-%H%M%S'))
    i = 0
    while os.path.exists(aside):
        i += 1
        aside = os.path.join(save_dir, 'replaced-%s.%d' % (time.strftime('%Y%m%d-%H%M%S'), i))
    os.makedirs(aside)
    moved = previous + [f for f in _RUN_FILES if f not in previous and
                        os.path.exists(os.path.join(save_dir, f))]
    for entry in moved:
        os.rename(os.path.join(save_dir, entry), os.path.join(aside, entry))
    return ('--overwrite: the earlier run of %s (%s) was moved to %s; delete that folder to free '
            'its space' % (save_dir, ', '.join(moved), aside))


class _SignalFlag(object):
    """SIGTERM/SIGINT handlers that only record the signal; the training loop stops at the
    next step boundary. A second SIGINT while a first one is pending raises
    ``KeyboardInterrupt`` (Ctrl-C twice: stop now, without a checkpoint), except while a
    checkpoint is being written (:meth:`writing`): then it takes effect once the checkpoint is
    complete, so it never loses or damages the one being written. Forked data
    workers inherit the handler: they ignore SIGINT (Ctrl-C reaches the whole process group;
    the main process decides) but die on SIGTERM, which is how a worker pool is ended
    (``Pool.terminate``); a worker that ignored it would hang the pool's join forever. Once
    the flag is gone (the run is over), the handlers that were there before take over."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        self._writing, self._interrupted = False, False
        pid = os.getpid()
        previous = {}
        ref = weakref.ref(self)

        def handler(signum, frame):
            if os.getpid() != pid:   # a forked data worker
                if signum == signal.SIGTERM:
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    os.kill(os.getpid(), signal.SIGTERM)
                return None          # SIGINT: the main process decides
            flag = ref()
            if flag is None:         # the run is over: behave as before it started
                old = previous.get(signum, signal.SIG_DFL)
                if callable(old):
                    return old(signum, frame)
                signal.signal(signum, signal.SIG_DFL if old is None else old)
                os.kill(os.getpid(), signum)
                return None
            if signum == signal.SIGINT and flag.signum == signal.SIGINT:
                if flag._writing:
                    flag._interrupted = True
                    return None
                raise KeyboardInterrupt
            flag.signum = signum

        self._handler, self._previous = handler, previous
        try:
            for sig in self.SIGNALS:
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave the handlers alone
            previous.clear()

    def writing(self):
        """A context in which a second Ctrl-C waits for the end of the block (a checkpoint
        write), then raises ``KeyboardInterrupt``."""
        import contextlib

        @contextlib.contextmanager
        def block():
            self._writing = True
            try:
                yield
            finally:
                self._writing = False
            if self._interrupted:
                self._interrupted = False
                raise KeyboardInterrupt
        return block()

    def uninstall(self):
        """Put the previous handlers back."""
        for sig, old in list(self._previous.items()):
            if signal.getsignal(sig) is self._handler:
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._previous.clear()


def write_config(save_dir, config):
    """Write ``SAVE_DIR/config.json`` (atomically): the resolved configuration of the run."""
    write_atomic(os.path.join(save_dir, CONFIG_FILE),
                  json.dumps(config, indent=1, sort_keys=True) + '\n')


class TrainingRun(object):
    """Checkpoints and stops of the training loop.

    Parameters
    ----------
    dist : DistContext
        With ``signals`` (the SIGTERM/SIGINT flag installed by the loop).
    ckpt : CheckpointManager or None
        Rank 0's manager (``None`` on the other ranks).
    net, trainer
        What a checkpoint saves.
    iters_per_epoch : int
    state_fn : callable
        ``state_fn(epochs_done, batch) -> dict``: the JSON state of a checkpoint after
        ``epochs_done`` epochs and ``batch`` batches of the next one (best metric, partial
        sums of the running epoch ...). It may raise to refuse the save (a non-finite loss).
    checkpoint_interval : int
        Also checkpoint every N batches (0: off).
    stateful : dict, optional
        ``{name: object with state_dict()}`` saved with every checkpoint (the loss scaler).

    Signals: the handlers only set a flag. A single process reads it after every step;
    Horovod ranks agree on it (an allreduce of the flag) every :data:`STOP_CHECK_BATCHES`
    batches and at the end of every epoch, so all ranks stop after the same step; rank 0
    writes the checkpoint of that exact position, all ranks wait for it (barrier) and end
    with :class:`~gluon_tricks.errors.Preempted` (exit status 128 + signal through
    ``run_main``). ``horovodrun`` forwards SIGTERM/SIGINT to the ranks but kills them 5 s
    later; on a preemption notice, signal the training processes themselves.
    """

    def __init__(self, dist, ckpt, net, trainer, iters_per_epoch, state_fn,
                 checkpoint_interval=0, stateful=None):
        self.dist = dist
        self.ckpt = ckpt
        self.net, self.trainer = net, trainer
        self.iters_per_epoch = int(iters_per_epoch)
        self.interval = int(checkpoint_interval or 0)
        self.state_fn = state_fn
        self.stateful = stateful
        self.signals = getattr(dist, 'signals', None) or _SignalFlag()
        self.start_epoch, self._start_batch = 0, 0
        self.last_saved = None         # directory of the newest checkpoint of this run
        self._dirty = False            # trained since last_saved

    # -- resume ---------------------------------------------------------------------------
    def resume_from(self, state):
        """Start at the position of a checkpoint state (``resume_run``'s return value)."""
        self.start_epoch = int(state['epoch'])
        self._start_batch = int(state.get('batch', 0))
        self.last_saved = state.get('checkpoint_dir')

    def start_batch(self, epoch):
        """The first batch to train in ``epoch``: the checkpoint's batch in the epoch it was
        taken in, 0 otherwise."""
        return self._start_batch if epoch == self.start_epoch else 0

    # -- saving ---------------------------------------------------------------------------
    def save(self, epochs_done, batch=0, is_best=False):
        """Rank 0 writes a checkpoint after ``epochs_done`` epochs and ``batch`` batches;
        returns its directory (``None`` on the other ranks)."""
        self._dirty = False
        state = dict(self.state_fn(epochs_done, batch))   # every rank: it may check the loss
        if self.ckpt is None:
            return None
        state.setdefault('epoch', epochs_done)
        with self.signals.writing():
            path = self.ckpt.save(epochs_done, self.net, self.trainer, state, is_best=is_best,
                                  batch=batch, stateful=self.stateful)
        self.last_saved = path
        self.dist.log('checkpoint: %s' % path)
        return path

    # -- the loop ---------------------------------------------------------------------------
    def _stop_requested(self, agree):
        local = self.signals.signum or 0
        if not self.dist.is_distributed:
            return local
        if not agree:
            return 0
        # the largest signal number any rank received (SIGTERM 15 > SIGINT 2)
        votes = self.dist.allreduce_sum(np.eye(1, 16, local, dtype=np.int64)[0]
                                        if local else np.zeros(16, np.int64))
        hit = np.flatnonzero(votes)
        return int(hit[-1]) if hit.size else 0

    def after_batch(self, epoch, batch):
        """Call after the step of batch ``batch`` (0-based) of ``epoch`` (0-based): writes the
        periodic mid-epoch checkpoint and stops (checkpoint, then ``Preempted``) when a
        signal arrived."""
        self._dirty = True
        done = batch + 1
        last = done >= self.iters_per_epoch
        periodic = bool(self.interval) and done % self.interval == 0
        if periodic and not last:
            self.save(epoch, done)
        # after the last batch too: a stop then saves before the validation, not after it
        # (horovodrun leaves the ranks 5 s); the resumed run validates the epoch
        signum = self._stop_requested(last or periodic or done % STOP_CHECK_BATCHES == 0)
        if signum:
            self._stop(signum, epoch, done)

    def end_epoch(self, epoch, is_best=False, due=True):
        """Call after the epoch's validation and metrics line: writes the epoch checkpoint if
        ``due`` or ``is_best`` (or a signal asks to stop), then stops if a signal arrived."""
        signum = self._stop_requested(True)
        if due or is_best or (signum and self._dirty):
            self.save(epoch + 1, 0, is_best=is_best)
        if signum:
            self._stop(signum, epoch + 1, 0, saved=True)

    def _stop(self, signum, epochs_done, batch, saved=False):
        if not saved and self._dirty:
            self.save(epochs_done, batch)
        self.dist.barrier()   # every rank waits for rank 0's checkpoint
        name = signal.Signals(signum).name
        where = ('after %d batches of epoch %d%s' % (
            batch, epochs_done + 1, ' (before its validation)'
            if batch >= self.iters_per_epoch else '') if batch else 'after epoch %d'
            % epochs_done)
        message = ('%s: stopped %s; checkpoint %s. Continue with --resume.'
                   % (name, where, self.last_saved or '(none: nothing trained since the start)'))
        self.dist.log(message)
        self.close()
        raise Preempted(message, signum)

    def close(self):
        """Restore the signal handlers of before the run."""
        self.signals.uninstall()
