"""What every training script shares around its loop: flags and their checks, the save
directory (never a new run over a finished one), the log and the per-epoch metrics file,
resume (with repairs), checkpoints in the middle of an epoch, and SIGTERM/SIGINT.

The three training scripts (classification, detection, segmentation) use it the same way::

    add_run_args(group)                       # --overwrite, --checkpoint-interval
    check_run_args(parser, args)              # shared flag checks, at parse time
    dist, devices, local_batch, global_batch = start_run(args)   # save dir, log, signals
    ...
    ckpt = CheckpointManager(args.save_dir)
    run = TrainingRun(args, dist, ckpt, net, trainer, iters_per_epoch, state_fn, config)
    if args.resume:
        state = resume_run(args.save_dir, net, trainer, devices, dist, config, best_key)
        run.resume_from(state)
    for epoch in range(run.start_epoch, epochs):
        start = run.start_batch(epoch)        # the loader starts there
        for i, batch in enumerate(loader, start):
            ...step...
            run.after_batch(epoch, i)         # periodic checkpoint, stop on a signal
        ...validate, append the metrics line...
        run.end_epoch(epoch, is_best, due)    # epoch checkpoint, stop on a signal
    run.close()
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

from .errors import DiskFullError, Preempted, ResumeConfigError, UserError

__all__ = ['make_logger', 'append_jsonl', 'read_metrics', 'start_run', 'resume_run',
           'add_run_args', 'check_run_args', 'run_config', 'prepare_save_dir', 'TrainingRun',
           'MetricsError', 'RESUME_MAY_CHANGE', 'RESUME_APPLIED', 'STOP_CHECK_BATCHES']

#: Flags that may differ between a run and its ``--resume``: where things are read and written,
#: how often to log, evaluate and checkpoint, and how many processes/devices compute the same
#: global batch. Every other flag defines the training and must stay the same.
RESUME_MAY_CHANGE = frozenset((
    'resume', 'overwrite', 'save_dir', 'logging_file', 'log_interval', 'save_frequency',
    'save_interval', 'val_interval', 'checkpoint_interval', 'num_workers', 'progress',
    'data_dir', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'save_predictions',
    'verbose', 'tensorboard', 'kvstore', 'num_gpus', 'horovod', 'mode',
    'disable_hybridization', 'teacher_params', 'backbone_params'))

#: Flags of the learning-rate schedule and the optimizer's hyper-parameters: a ``--resume``
#: may change them; they are then applied (the schedule rebuilt from this command's flags,
#: continuing at the checkpoint's iteration) and the change is logged.
RESUME_APPLIED = frozenset((
    'lr', 'base_lr', 'base_batch_size', 'lr_mode', 'lr_decay', 'lr_decay_epoch',
    'warmup_epochs', 'warmup_lr', 'target_lr', 'num_epochs', 'epochs', 'power', 'lr_warmup',
    'lr_warmup_factor', 'momentum', 'wd', 'weight_decay'))

#: Under Horovod the ranks agree whether to stop (a signal reached some rank) every this many
#: batches: one tiny allreduce (a host synchronisation) per STOP_CHECK_BATCHES steps instead
#: of one per step. A single process checks its flag after every step (no cost).
STOP_CHECK_BATCHES = 10


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
                        logging.FileHandler(logging_file or os.path.join(save_dir, 'train.log'))):
            handler.setFormatter(fmt)
            logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    return logger


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


def _repair_metrics(path, epochs, log):
    """Keep the lines of epochs 1..``epochs`` (the last line of each), in order; drop the
    rest (epochs after the checkpoint, torn lines); rewrite atomically. Returns the
    records kept."""
    if not os.path.exists(path):
        return []
    by_epoch, dropped = {}, 0
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                epoch = int(rec['epoch'])
            except (ValueError, TypeError, KeyError):
                dropped += 1
                continue
            if 1 <= epoch <= epochs:
                dropped += epoch in by_epoch
                by_epoch[epoch] = rec
            else:
                dropped += 1
    kept = [by_epoch[e] for e in sorted(by_epoch)]
    if dropped:
        from .checkpoint import _write_atomic
        _write_atomic(path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in kept))
        log('%s: dropped %d line(s) of epochs after the checkpoint (epoch %d), repeated or '
            'torn; one line per epoch is kept' % (path, dropped, epochs))
    return kept


def add_run_args(group):
    """The flags every training script shares for its save directory and preemption:
    ``--overwrite`` and ``--checkpoint-interval``."""
    group.add_argument('--overwrite', action='store_true',
                       help='start a new run in a --save-dir that holds an earlier run: its '
                            'checkpoints, metrics.jsonl, train.log and results.json are moved '
                            'to SAVE_DIR/replaced-<time>/ first (delete that folder to free '
                            'the space)')
    group.add_argument('--checkpoint-interval', type=int, default=0,
                       help='also checkpoint every N batches inside an epoch (resumable at '
                            'that batch); 0: at the end of epochs only. SIGTERM/SIGINT always '
                            'checkpoint the current position and exit with 128+signal')


def check_run_args(parser, args):
    """Checks of the flags the training scripts share, at parse time (``parser.error``):
    positive intervals, ``--resume`` xor ``--overwrite``, ``--kvstore`` not with
    ``--horovod``, ``--dtype float16`` only with GPUs (naming bfloat16 where this CPU runs
    it)."""
    for flag in ('log_interval', 'save_frequency', 'save_interval', 'val_interval'):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            parser.error('--%s must be a positive number of %s, got %d'
                         % (flag.replace('_', '-'),
                            'batches' if flag == 'log_interval' else 'epochs', value))
    if getattr(args, 'checkpoint_interval', 0) < 0:
        parser.error('--checkpoint-interval must be >= 0 batches (0: only at the end of '
                     'epochs), got %d' % args.checkpoint_interval)
    if getattr(args, 'resume', False) and getattr(args, 'overwrite', False):
        parser.error('--resume continues the run in --save-dir, --overwrite replaces it: '
                     'choose one')
    if hasattr(args, 'kvstore'):
        if args.horovod and args.kvstore is not None:
            parser.error('--kvstore %s has no effect with --horovod (Horovod all-reduces the '
                         'gradients itself): drop --kvstore' % args.kvstore)
        if args.kvstore is None:
            args.kvstore = 'device'
    if getattr(args, 'dtype', None) == 'float16' and getattr(args, 'num_gpus', 0) == 0:
        from .precision import bfloat16_supported
        ok, reason = bfloat16_supported()
        parser.error('--dtype float16 needs GPUs (--num-gpus N): MXNet has no float16 matrix '
                     'multiply on CPU. %s' % (
                         'On this CPU use --dtype bfloat16 (or float32).' if ok else
                         'Use --dtype float32 (this CPU cannot train in bfloat16 either: %s).'
                         % reason))


def run_config(args, **derived):
    """The configuration a resumed run must share with the run it continues: every flag
    except :data:`RESUME_MAY_CHANGE`, plus ``derived`` values (resolved lr, global batch,
    batches per epoch ...), as JSON values."""
    config = {k: v for k, v in vars(args).items()
              if k not in RESUME_MAY_CHANGE and not k.startswith('_')}
    config.update(derived)
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def _check_config(saved, current, directory):
    """Compare the checkpoint's configuration with this command's: raise
    ``ResumeConfigError`` listing the flags that differ and cannot be applied to a resumed
    run; return the differences of :data:`RESUME_APPLIED` flags (to apply and log)."""
    if saved is None or current is None:
        return []
    refused, applied = [], []
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            text = '--%s: %s in the checkpoint, %s now' % (
                key.replace('_', '-'), json.dumps(saved.get(key)), json.dumps(current.get(key)))
            (applied if key in RESUME_APPLIED else refused).append(text)
    if refused:
        raise ResumeConfigError(
            '--resume would continue the run of %s with other settings: %s. These define the '
            'model, the data, the batches or the random choices the checkpoint was trained with '
            'and cannot change in the middle of a run. Resume with the flags of the original '
            'run, or start a new run (a fresh --save-dir, or --overwrite) to train with the new '
            'ones. (The learning-rate schedule flags, --momentum and the weight decay may '
            'change: they are applied.)' % (directory, '; '.join(refused)))
    return applied


_RUN_FILES = ('metrics.jsonl', 'train.log', 'results.json')


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
    """Item 1 of the reliability rules: a new run never starts over an earlier one.

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
    ``KeyboardInterrupt`` (Ctrl-C twice: stop now, without a checkpoint). Forked data
    workers ignore both (the main process stops them); once the flag is gone (the run is
    over), the handlers that were there before take over again."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum = None
        pid = os.getpid()
        previous = {}
        ref = weakref.ref(self)

        def handler(signum, frame):
            if os.getpid() != pid:
                return None          # a forked data worker: the main process decides
            flag = ref()
            if flag is None:         # the run is over: behave as before it started
                old = previous.get(signum, signal.SIG_DFL)
                if callable(old):
                    return old(signum, frame)
                signal.signal(signum, signal.SIG_DFL if old is None else old)
                os.kill(os.getpid(), signum)
                return None
            if signum == signal.SIGINT and flag.signum == signal.SIGINT:
                raise KeyboardInterrupt
            flag.signum = signum

        self._handler, self._previous = handler, previous
        try:
            for sig in self.SIGNALS:
                previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave the handlers alone
            previous.clear()

    def uninstall(self):
        """Put the previous handlers back."""
        for sig, old in list(self._previous.items()):
            if signal.getsignal(sig) is self._handler:
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._previous.clear()


def start_run(args):
    """The common start of every training script (one device, several, or Horovod).

    Creates the :class:`~gluon_tricks.distributed.DistContext` (``args.horovod``), refuses a
    save directory that holds an earlier run unless ``args.resume`` or ``args.overwrite``
    (:func:`prepare_save_dir`, before anything is written), creates the logger (master rank
    only, ``args.save_dir``/``args.logging_file``), installs the SIGTERM/SIGINT handlers
    (``dist.signals``, read by :class:`TrainingRun`) and the devices (``args.num_gpus``), and
    derives the batch sizes from ``args.batch_size`` (per device).

    Returns
    -------
    (DistContext, list of mxnet.Context, int, int)
        The context, the devices, this process's batch (per device x devices) and the global
        batch (x ranks), which sets the learning rate by linear scaling.
    """
    from .distributed import DistContext
    dist = DistContext(horovod=args.horovod)
    note = prepare_save_dir(args.save_dir, getattr(args, 'resume', False),
                            getattr(args, 'overwrite', False), dist.is_master)
    dist.logger = make_logger('gluon_tricks', args.save_dir, dist.is_master,
                              args.logging_file)
    if note:
        dist.log(note)
    from .threads import configure_threads
    dist.log(configure_threads())    # what the script's first lines chose, before MXNet
    dist.signals = _SignalFlag()
    devices = dist.devices(args.num_gpus)
    return (dist, devices, args.batch_size * len(devices),
            dist.global_batch_size(args.batch_size, len(devices)))


def resume_run(save_dir, net, trainer, devices, dist, config=None, best_key=None,
               rebuild=None):
    """``--resume``: restore the latest checkpoint of ``save_dir`` into ``net`` and ``trainer``
    (parameters, momentum, master weights, optimizer and schedule position), broadcast the
    parameters from rank 0, and return the state saved with it (epoch, best metric ...) with
    ``state['batch']``, the batches done of the next epoch (mid-epoch checkpoints).

    On the way (rank 0; the other ranks load the directory rank 0 chose):

    * the latest checkpoint is found by scanning when ``checkpoint-latest.json`` is missing
      or damaged, and the pointer is rewritten;
    * ``config`` (:func:`run_config`) must equal the one saved in the checkpoint
      (``ResumeConfigError`` listing the differences otherwise), except for the flags of
      :data:`RESUME_APPLIED`: their changes are logged and applied through ``rebuild``, a
      dict of optimizer attributes set after the restore (``lr_scheduler`` built from this
      command's flags, ``momentum``, ``wd``) -- the schedule is a function of the update
      count, so the rebuilt one continues at the checkpoint's iteration;
    * every file is checked against its recorded sha256 (``CheckpointError`` naming it);
    * ``metrics.jsonl`` is cut to one line per epoch up to the checkpoint;
    * ``checkpoint-best`` is repaired when the recorded metrics (``best_key``, higher is
      better) name another epoch whose checkpoint still exists.
    """
    from .checkpoint import Checkpoint, CheckpointManager
    manager = CheckpointManager(save_dir)
    directory = None
    if dist.is_master:
        latest = manager.load_latest()
        if latest is None:
            raise FileNotFoundError(
                '--resume: no checkpoint in %s (%s)' % (save_dir, (
                    'it holds %s of a run that saved no checkpoint: start a new run there with '
                    '--overwrite instead of --resume' % ', '.join(_previous_run(save_dir)))
                    if _previous_run(save_dir) else 'drop --resume to start a new run there'))
        if latest.recovered:
            dist.log('%s; resuming from the newest complete checkpoint, %s (pointer rewritten)'
                     % (latest.recovered, latest.directory))
            manager.repair_pointer(latest)
        applied = _check_config(latest.state.get('config'), config, latest.directory)
        latest.verify()
        directory = latest.directory
    directory = dist.broadcast_object(directory, name='gluon_tricks.resume_dir')
    latest = Checkpoint(directory)
    applied = _check_config(latest.state.get('config'), config, latest.directory)
    state = dict(latest.restore(net, trainer, devices))
    for key, value in (rebuild or {}).items():
        setattr(trainer.optimizer, key, value)
    if applied:
        dist.log('--resume applies this command\'s %s; the learning-rate schedule is rebuilt '
                 'from its flags and continues at update %d (lr %.6g)'
                 % ('; '.join(applied), trainer.optimizer.num_update, trainer.learning_rate))
    state.setdefault('epoch', latest.epoch)
    state['batch'] = latest.batch
    state['checkpoint_dir'] = latest.directory
    dist.broadcast_parameters(net.collect_params())
    if dist.is_master:
        records = _repair_metrics(os.path.join(save_dir, 'metrics.jsonl'), latest.epoch,
                                  dist.log)
        if best_key:
            _repair_best(manager, records, best_key, dist.log)
    dist.log('resumed from %s at epoch %d%s' % (
        latest.directory, state['epoch'],
        ', batch %d of epoch %d' % (latest.batch, state['epoch'] + 1) if latest.batch else ''))
    return state


def _repair_best(manager, records, key, log):
    """Point ``checkpoint-best`` at the epoch the metrics say is best, if its checkpoint
    exists (a kill between the pointer update and the best update leaves it stale)."""
    from .checkpoint import CheckpointError
    scored = [r for r in records if isinstance(r.get(key), (int, float))]
    if not scored:
        return
    best = scored[0]
    for r in scored[1:]:
        if r[key] > best[key]:  # the first epoch reaching the maximum, as the loop decides
            best = r
    try:
        current = manager.load_best()
    except CheckpointError:
        current = None
    if current is not None and current.epoch == best['epoch']:
        return
    candidates = [c for c in manager.scan() if c.epoch == best['epoch'] and c.batch == 0]
    if not candidates:
        log('note: metrics.jsonl names epoch %d as the best (%s %.6g) but its checkpoint no '
            'longer exists; %s stays at %s' % (best['epoch'], key, best[key], manager.best_path,
                                               'epoch %d' % current.epoch if current else
                                               'nothing'))
        return
    manager.mark_best(candidates[0])
    log('repaired %s: it pointed at %s, the metrics name epoch %d (%s %.6g) as the best'
        % (manager.best_path, 'epoch %d' % current.epoch if current else 'nothing',
           best['epoch'], key, best[key]))


class TrainingRun(object):
    """Checkpoints and stops of one training loop (shared by the three scripts).

    Parameters
    ----------
    args : argparse.Namespace
        ``checkpoint_interval`` (batches, 0: off) and ``save_dir``.
    dist : DistContext
        From :func:`start_run` (its ``signals``).
    ckpt : CheckpointManager or None
        Rank 0's manager (``None`` on the other ranks).
    net, trainer
        What a checkpoint saves.
    iters_per_epoch : int
    state_fn : callable
        ``state_fn(epochs_done, batch) -> dict``: the JSON state of a checkpoint after
        ``epochs_done`` epochs and ``batch`` batches of the next one (best metric, loss
        scaler, partial sums of the running epoch ...). ``config`` is added to it.
    config : dict, optional
        :func:`run_config`; saved in every checkpoint and compared on ``--resume``.

    Notes
    -----
    Signals: the handlers (installed by :func:`start_run`) only set a flag. A single
    process reads it after every step; Horovod ranks agree on it (an allreduce of the flag)
    every :data:`STOP_CHECK_BATCHES` batches and at the end of every epoch, so all ranks
    stop after the same step; rank 0 writes the checkpoint of that exact position, all ranks
    wait for it (barrier) and end with :class:`~gluon_tricks.errors.Preempted` (exit status
    128 + signal through ``run_main``). ``horovodrun`` forwards SIGTERM/SIGINT to the ranks
    but kills them 5 s later (``GRACEFUL_TERMINATION_TIME_S``); on a preemption notice,
    signal the training processes themselves to leave them the time of a checkpoint.
    """

    def __init__(self, args, dist, ckpt, net, trainer, iters_per_epoch, state_fn, config=None):
        self.dist = dist
        self.ckpt = ckpt
        self.net, self.trainer = net, trainer
        self.iters_per_epoch = int(iters_per_epoch)
        self.interval = int(getattr(args, 'checkpoint_interval', 0) or 0)
        self.state_fn = state_fn
        self.config = config
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
        if self.ckpt is None:
            return None
        state = dict(self.state_fn(epochs_done, batch))
        state.setdefault('epoch', epochs_done)
        if self.config is not None:
            state['config'] = self.config
        path = self.ckpt.save(epochs_done, self.net, self.trainer, state, is_best=is_best,
                              batch=batch)
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
        """Restore the signal handlers of before :func:`start_run` (end of ``main``)."""
        self.signals.uninstall()
