"""The one training loop of classification, Faster-RCNN and FCN: ``fit(task, cfg)``.

The task (:class:`~gluon_tricks.training.task.Task`) supplies data, model, step and
evaluation; the loop owns everything around them, for one device, several, or Horovod:
devices and batch sizes, the learning rate (linear scaling) and its schedule, the trainer,
seeding, meters and log lines, the NaN policy, evaluation cadence, ``metrics.jsonl``,
checkpoints and exact resume, SIGTERM/SIGINT, ``config.json`` and ``results.json``.

Random streams. Every random choice is drawn from a named stream of
:data:`gluon_tricks.streams.STREAMS` seeded by ``(--seed, stream, position)``, so a run resumed
at any batch repeats exactly what the uninterrupted run did: the initial weights from
``init`` (the same on every rank), and before every step MXNet's generator from
``step_mxnet``, numpy's global generator and the step's own ``RandomState`` (the mixup
lambdas) from ``step_numpy``, Python's ``random`` from ``step_python``, each at
``(epoch, rank, batch)``.

NaN policy. A step returns its loss sums as device arrays; the loop keeps one small row per
batch on the device and reads them once per log interval (no per-batch host
synchronisation). A non-finite value found there ends the run with
:class:`~gluon_tricks.errors.NonFiniteLossError` naming the epoch, the batch and the last
good checkpoint. The updates after the bad batch are never applied to anything that
outlives the process: every checkpoint (epoch, periodic, or on a signal) first reads the
meters, and under Horovod the ranks agree (one allreduce per read), so no checkpoint,
``metrics.jsonl`` line or ``results.json`` ever holds a state trained on a non-finite loss;
``--resume`` (with a lower ``--lr`` or more warmup) continues from the last good one. (A
float16 overflow is another matter: the loss scaler skips that step, see
:class:`~gluon_tricks.precision.LossScaler`.)
"""
import json
import os
import random
import sys
import time

import mxnet as mx
import numpy as np

from ..checkpoint import CheckpointManager
from ..streams import stream_seed
from ..distributed import DistContext
from ..errors import ConfigError, NonFiniteLossError
from ..lr_scheduler import LRScheduler, resolve_lr
from ..optim import apply_no_bias_decay, optimizer_params
from ..resume import resume_run
from ..runlock import RunLock, release_run_lock
from ..runlog import (TrainingRun, _SignalFlag, append_jsonl, make_logger, prepare_save_dir,
                      write_config)
from .task import Run

__all__ = ['fit', 'seed_step', 'make_scheduler', 'Meter']



def seed_step(seed, epoch, rank, batch):
    """Seed MXNet, numpy and ``random`` for one step; returns the step's own numpy
    ``RandomState`` (stream ``step_numpy``, e.g. the mixup lambdas)."""
    mx.random.seed(stream_seed(seed, 'step_mxnet', epoch, rank, batch))
    numpy_seed = stream_seed(seed, 'step_numpy', epoch, rank, batch)
    np.random.seed(numpy_seed)
    random.seed(stream_seed(seed, 'step_python', epoch, rank, batch))
    return np.random.RandomState(numpy_seed)


def make_scheduler(optim, lr, iters_per_epoch, log):
    """The :class:`~gluon_tricks.lr_scheduler.LRScheduler` of an
    :class:`~gluon_tricks.config.OptimConfig` at ``lr``; ``--warmup-iters`` overrides
    ``--warmup-epochs``, step epochs at or beyond the end are dropped (logged)."""
    steps = [e for e in optim.lr_decay_epoch if e < optim.num_epochs]
    if optim.lr_mode == 'step' and len(steps) < len(optim.lr_decay_epoch):
        log('note: --lr-decay-epoch %s at or beyond --num-epochs %d are never reached'
            % ([e for e in optim.lr_decay_epoch if e >= optim.num_epochs], optim.num_epochs))
    warmup = optim.warmup_epochs
    if optim.warmup_iters is not None:
        warmup = optim.warmup_iters / iters_per_epoch
    try:
        return LRScheduler(optim.lr_mode, lr, iters_per_epoch, optim.num_epochs,
                           warmup_epochs=warmup, warmup_lr=optim.warmup_start(lr),
                           step_epochs=steps, step_factor=optim.lr_decay, power=optim.power,
                           target_lr=optim.target_lr)
    except ValueError as err:
        raise ConfigError('%s (%d iterations per epoch; check --warmup-epochs/--warmup-iters, '
                         '--warmup-lr and --lr-decay-epoch)' % (err, iters_per_epoch))


class Meter(object):
    """Per-batch sums kept on the device (one row per batch) and read at log points only.

    Parameters
    ----------
    ctx : mxnet.Context
        Where the rows are gathered.
    """

    FOLD = 256   # rows concatenated into one array (still on the device) beyond this

    def __init__(self, ctx):
        self.ctx = ctx
        self.reset()

    def reset(self):
        self._rows, self.samples, self.batches, self._first = [], 0, 0, 0

    def add(self, sums, samples, batch):
        """Add the sums of batch ``batch``: NDArrays (of one or more elements), one row."""
        if not self._rows:
            self._first = batch
        self._rows.append(mx.nd.concat(*[s.reshape((1, -1)).astype('float32', copy=False)
                                         .as_in_context(self.ctx) for s in sums], dim=1))
        if len(self._rows) >= self.FOLD:
            self._rows = [mx.nd.concat(*self._rows, dim=0)]
        self.samples += int(samples)
        self.batches += 1

    def read(self):
        """``(sums, samples, first_bad_batch)`` since the last read, then reset: float64 sums
        per column, and the index of the first batch with a NaN/inf (-1: none). The one host
        synchronisation of a log interval."""
        sums, first_bad = None, -1
        if self._rows:
            rows = mx.nd.concat(*self._rows, dim=0).asnumpy().astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(rows).all(axis=1))
            first_bad = self._first + int(bad[0]) if bad.size else -1
            sums = rows.sum(axis=0)
        out = (sums, self.samples, first_bad)
        self.reset()
        return out


def fit(task, cfg):
    """Train ``task`` with the configuration ``cfg`` (:class:`~gluon_tricks.config.TrainConfig`);
    returns the fields of ``results.json`` (also written to SAVE_DIR by rank 0)."""
    try:
        return _Loop(task, cfg).fit()
    finally:   # also on failure: the save directory's lock (rank 0)
        release_run_lock(cfg.run.save_dir)


class _Loop(object):
    def __init__(self, task, cfg):
        self.task, self.cfg = task, cfg
        dist = DistContext(horovod=cfg.run.horovod)
        # one run at a time in the save directory, before anything is written there
        self.lock = RunLock(cfg.run.save_dir).acquire() if dist.is_master else None
        note = prepare_save_dir(cfg.run.save_dir, cfg.run.resume, cfg.run.overwrite,
                                dist.is_master)
        dist.logger = make_logger('gluon_tricks', cfg.run.save_dir, dist.is_master,
                                  cfg.run.logging_file)
        if note:
            dist.log(note)
        from ..threads import configure_threads
        dist.log(configure_threads())    # what the script's first lines chose, before MXNet
        dist.signals = _SignalFlag()
        devices = dist.devices(cfg.optim.num_gpus)
        self.dist, self.log = dist, dist.log
        self.run = Run(cfg, dist, devices, cfg.optim.batch_size * len(devices),
                       dist.global_batch_size(cfg.optim.batch_size, len(devices)))
        self.meter = Meter(devices[0])
        self.best, self.record, self.totals = None, None, None

    # -- building ---------------------------------------------------------------------------
    def _build(self):
        task, run, cfg, o = self.task, self.run, self.cfg, self.cfg.optim
        task.setup(run)
        self.train_loader, _ = task.build_data(run)
        run.iters_per_epoch = len(self.train_loader)
        lr, how = resolve_lr(o.lr, run.global_batch, o.base_lr, o.base_batch_size,
                             batch_description='%d per device x %d device(s) x %d worker(s)'
                             % (o.batch_size, len(run.devices), self.dist.size))
        self.log(how)
        run.scheduler = make_scheduler(o, lr, run.iters_per_epoch, self.log)
        run.derived.update(lr=lr, global_batch=run.global_batch,
                           iters_per_epoch=run.iters_per_epoch)
        # the same initial weights for the same --seed (Horovod then broadcasts rank 0's)
        init = stream_seed(cfg.run.seed, 'init')
        mx.random.seed(init)
        np.random.seed(init % 2 ** 32)
        run.net = task.build_model(run)
        if o.no_wd:
            self.log('no bias decay: %s' % apply_no_bias_decay(run.net).summary())
        self.dist.broadcast_parameters(run.net.collect_params())
        run.trainer = self.dist.make_trainer(
            task.trainable_params(run), o.optimizer,
            optimizer_params(run.scheduler, momentum=o.momentum, wd=o.wd,
                             multi_precision=task.multi_precision),
            kvstore=cfg.run.kvstore)
        task.prepare(run)

    def _resume(self):
        cfg, run, dist = self.cfg, self.run, self.dist
        self.ckpt = CheckpointManager(cfg.run.save_dir, keep_last=cfg.run.keep_checkpoints) \
            if dist.is_master else None
        self.training = TrainingRun(dist, self.ckpt, run.net, run.trainer, run.iters_per_epoch,
                                    self._checkpoint_state, cfg.run.checkpoint_interval,
                                    self.task.stateful())
        self.config = config = cfg.to_dict(**run.derived)
        self.partial = None
        if cfg.run.resume:
            state = resume_run(cfg.run.save_dir, run.net, run.trainer, run.devices, dist,
                               config, self.task.best_key,
                               hyper={'lr_scheduler': run.scheduler,
                                      'momentum': cfg.optim.momentum, 'wd': cfg.optim.wd},
                               stateful=self.task.stateful(),
                               allow_pickle=cfg.run.allow_pickled_states)
            self.best, self.record = state.get('best'), state.get('metrics')
            self.partial = state.get('partial')
            self.training.resume_from(state)
        if dist.is_master:
            write_config(cfg.run.save_dir, config)
        o, d = cfg.optim, run.derived
        tricks = [name for name, on in (('no bias decay', o.no_wd),
                                        ('label smoothing', getattr(cfg.tricks, 'label_smoothing',
                                                                    False)),
                                        ('mixup', getattr(cfg.tricks, 'mixup', False)),
                                        ('distillation from %s (%s)' % (
                                            getattr(cfg.tricks, 'teacher', None),
                                            getattr(cfg.tricks, 'teacher_params', None)),
                                         getattr(cfg.tricks, 'teacher', None)),
                                        ('model EMA', getattr(cfg.tricks, 'model_ema', False)))
                  if on]
        self.log('training %s %s for %d epochs: global batch %d, lr %.4g (%s%s)%s; every '
                 'setting is in %s' % (
                     self.task.name, getattr(cfg.model, 'model', ''), o.num_epochs,
                     d['global_batch'], d['lr'], o.lr_mode, ', warmup %g epochs'
                     % o.warmup_epochs if o.warmup_epochs else '',
                     ', ' + ', '.join(tricks) if tricks else '',
                     os.path.join(cfg.run.save_dir, 'config.json')))

    # -- meters, the NaN policy and checkpoint states ---------------------------------------
    def _read_window(self):
        """Fold the meters into the epoch totals (summed over the ranks: one allreduce per
        read, i.e. per log interval and checkpoint); stop on a non-finite value (all ranks
        agree). Every rank reads at the same batches."""
        sums, samples, first_bad = self.meter.read()
        bad = first_bad >= 0
        if self.dist.is_distributed:
            width = len(self.task.meters)
            local = np.concatenate([np.zeros(width) if sums is None else sums,
                                    [samples, bad]])
            total = self.dist.allreduce_sum(local)
            sums = total[:width] if total[width] else None
            samples, bad = int(total[width]), bool(total[width + 1])
        if bad:
            where = ('batch %d' % (first_bad + 1)) if first_bad >= 0 else 'a batch of another rank'
            raise NonFiniteLossError(
                'the training loss became NaN/inf at epoch %d, %s (lr %.5g); nothing trained '
                'after it was saved, the last good checkpoint is %s. Lower --lr, add warmup '
                '(--warmup-epochs) or check the data, then continue with --resume.'
                % (self.epoch + 1, where, self.run.trainer.learning_rate,
                   self.training.last_saved or 'none'))
        if sums is not None:
            self.totals['sums'] = (np.asarray(self.totals['sums']) + sums).tolist()
        self.totals['samples'] += samples
        return sums, samples

    def _checkpoint_state(self, epochs_done, batch):
        self._read_window()
        state = dict(self.task.checkpoint_info(), epoch=epochs_done, best=self.best,
                     best_key=self.task.best_key, seed=self.cfg.run.seed, metrics=self.record,
                     config=self.config)
        if batch:   # mid-epoch: the sums of the running epoch, for its metrics line
            state['partial'] = dict(self.totals, time=self.totals['time'] + time.time() -
                                    self.tic)
        return state

    def _finished(self, metrics_path):
        """``--resume`` of a run that already trained its ``--num-epochs``: nothing to train,
        nothing rewritten; its results.json (or the last epoch's metrics) is returned."""
        self.training.close()
        path = os.path.join(self.cfg.run.save_dir, 'results.json')
        self.log('the run in %s already finished its %d epochs: nothing to train (to train '
                 'longer, resume with a larger --num-epochs)' % (self.cfg.run.save_dir,
                                                                 self.cfg.optim.num_epochs))
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)
        return self.task.results(self.run, self.record, self.best)

    # -- the loop ---------------------------------------------------------------------------
    def fit(self):
        self._build()
        self._resume()
        task, run, cfg, dist = self.task, self.run, self.cfg, self.dist
        metrics_path = os.path.join(cfg.run.save_dir, 'metrics.jsonl')
        board = None
        if cfg.run.tensorboard and dist.is_master:
            from ..curves import TensorBoardWriter
            board = TensorBoardWriter(cfg.run.tensorboard)
        show_bar = dist.is_master and (cfg.run.progress == 'bar' or (
            cfg.run.progress == 'auto' and sys.stderr.isatty()))
        last_eval, ipe, epochs = None, run.iters_per_epoch, cfg.optim.num_epochs
        if self.training.start_epoch >= epochs:     # --resume of a finished run
            return self._finished(metrics_path)
        for epoch in range(self.training.start_epoch, epochs):
            self.epoch = epoch
            start = self.training.start_batch(epoch)
            self.train_loader.set_epoch(epoch, start_batch=start)
            task.start_epoch(run, epoch)
            self.totals = dict(self.partial) if start and self.partial else \
                {'sums': [0.0] * len(task.meters), 'samples': 0, 'time': 0.0}
            self.tic = window_tic = time.time()
            batches = iter(self.train_loader)
            if show_bar:
                from tqdm import tqdm
                batches = tqdm(batches, total=ipe, initial=start, desc='epoch %d' % (epoch + 1),
                               leave=False)
            for i, batch in enumerate(batches, start):
                rng = seed_step(cfg.run.seed, epoch, dist.rank, i)
                sums, samples = task.train_step(run, batch, epoch, i, rng)
                self.meter.add(sums, samples, i)
                if (i + 1) % cfg.run.log_interval == 0 or i + 1 == ipe:
                    sums, samples = self._read_window()
                    speed = samples / max(time.time() - window_tic, 1e-9)
                    values = task.summarize(sums, samples) if samples else {}
                    self.log('epoch %d batch %d/%d: %.1f samples/s  lr %.5g  %s%s' % (
                        epoch + 1, i + 1, ipe, speed, run.trainer.learning_rate,
                        '  '.join('%s %.4f' % kv for kv in values.items()), task.log_extra()))
                    window_tic = time.time()
                self.training.after_batch(epoch, i)
            self._read_window()
            train_time = self.totals['time'] + time.time() - self.tic
            samples = self.totals['samples']
            record = dict({'epoch': epoch + 1}, **task.summarize(self.totals['sums'], samples))
            record.update(lr=run.trainer.learning_rate, epoch_time=train_time,
                          samples_per_sec=samples / max(train_time, 1e-9),
                          **task.epoch_fields())
            if (epoch + 1) % cfg.run.val_interval == 0 or epoch + 1 == epochs:
                dist.broadcast_statistics(run.net)      # rank 0's BN statistics: the saved model
                last_eval = task.evaluate(run, epoch)
                record.update(last_eval)
            self.log('epoch %d done in %.1f s, %.1f samples/s'
                     % (epoch + 1, train_time, record['samples_per_sec']))
            value = record.get(task.best_key)
            is_best = value is not None and (self.best is None or value > self.best)
            if is_best:
                self.best = value
            self.record = record
            if dist.is_master:
                append_jsonl(metrics_path, record)
                if board is not None:
                    board.write(record)
            self.training.end_epoch(epoch, is_best, due=(epoch + 1) % cfg.run.save_frequency == 0
                                    or epoch + 1 == epochs)
        self.training.close()
        if board is not None:
            board.close()
        results = task.results(run, last_eval, self.best)
        if results is not None and dist.is_master:
            with open(os.path.join(cfg.run.save_dir, 'results.json'), 'w') as f:
                json.dump(results, f, indent=1, sort_keys=True)
        return results
