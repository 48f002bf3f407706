"""Atomic checkpoints: a crash or kill at any moment leaves the previous checkpoint intact
and loadable, never a half-written one.

Layout of ``save_dir`` (``prefix='checkpoint'``)::

    checkpoint-latest.json          pointer: {"dir": "checkpoint-epoch0007", "epoch": 7, ...}
    checkpoint-epoch0007/           the latest checkpoint (after 7 epochs)
    checkpoint-epoch0007-batch000120/   a mid-epoch checkpoint: 7 epochs and 120 batches of
                                    the 8th (SIGTERM/SIGINT, --checkpoint-interval)
        net.params                  the parameters (first device's copy), structural names,
                                    GluonCV-compatible: a plain Gluon params file
        optimizer.params            momentum and float32 master weights as named arrays
                                    (``mx.nd.save``, :mod:`gluon_tricks.optstate`)
        state.json                  epoch, batch, the caller's state (best metric, partial
                                    sums, the loss scaler ...), the optimizer's update counts
                                    and every file's sha256
    checkpoint-best -> .checkpoint-best-epoch0005   symlink swapped atomically
    .checkpoint-best-epoch0005/     hard links (or copies) of the best epoch's files

Nothing in a checkpoint runs code when it is read (:mod:`gluon_tricks.checkpoint_files`,
which also reads one checkpoint: :class:`Checkpoint`).

The save protocol (temporary directory, fsync, rename, pointer, best link, then pruning) and
what a crash at each step leaves are described in docs/design.md ("Checkpoints"). A full disk
ends ``save`` with :class:`~gluon_tricks.errors.DiskFullError` and the previous checkpoint in
place. Under data parallelism only rank 0 saves and reads (``resume.resume_run`` broadcasts
what it read).
"""
import json
import os
import re
import shutil
import time

import mxnet as mx

from .checkpoint_files import (FORMAT_VERSION, OPTIMIZER_FILE, PARAMS_FILE, STATE_FILE,
                               Checkpoint, CheckpointError, _read_json)
from .fsutil import (disk_full_error, fsync_dir, fsync_file, is_disk_full, pid_alive, sha256,
                     write_atomic)
from .model_zoo.io import save_params
from .optstate import collect_state

__all__ = ['CheckpointError', 'Checkpoint', 'CheckpointManager']


class CheckpointManager(object):
    """Atomic checkpoints of a training run (see the module docstring for the protocol).

    Parameters
    ----------
    save_dir : str
        Created if missing.
    prefix : str
        Name prefix of every file and directory, e.g. the model name.
    keep_last : int
        How many end-of-epoch directories to keep: the latest and the ``keep_last - 1``
        before it (``--keep-checkpoints``). Mid-epoch directories other than the latest, and
        epoch directories beyond the latest (left by a run that was restarted from an earlier
        epoch), are removed.
    """

    def __init__(self, save_dir, prefix='checkpoint', keep_last=1):
        if not prefix or os.sep in prefix or prefix.startswith('.'):
            raise ValueError('invalid checkpoint prefix %r' % (prefix,))
        if int(keep_last) < 1:
            raise ValueError('keep_last must be >= 1, got %r' % (keep_last,))
        self.save_dir = save_dir
        self.prefix = prefix
        self.keep_last = int(keep_last)
        self._epoch_re = re.compile(r'^%s-epoch(\d+)(?:-batch(\d+))?(?:\.(\d+))?$'
                                    % re.escape(prefix))
        self._best_re = re.compile(r'^\.%s-best-epoch\d+(?:\.\d+)?$' % re.escape(prefix))
        self._tmp_re = re.compile(r'^\.tmp-%s-(?:best-)?-?\d+-(\d+)$' % re.escape(prefix))
        self._tmp_file_re = re.compile(r'^%s-(?:latest\.json|best)\.tmp-(\d+)$'
                                       % re.escape(prefix))

    # -- paths ------------------------------------------------------------------------------
    @property
    def latest_path(self):
        """The pointer file ``<prefix>-latest.json``."""
        return os.path.join(self.save_dir, '%s-latest.json' % self.prefix)

    @property
    def best_path(self):
        """The ``<prefix>-best`` symlink (a directory for readers)."""
        return os.path.join(self.save_dir, '%s-best' % self.prefix)

    def _latest_dir_name(self):
        if not os.path.exists(self.latest_path):
            return None
        pointer = _read_json(self.latest_path, 'checkpoint pointer')
        if not isinstance(pointer, dict) or not isinstance(pointer.get('dir'), str):
            raise CheckpointError('checkpoint pointer %s is corrupt (no "dir" entry)'
                                  % self.latest_path)
        return pointer['dir']

    def _best_dir_name(self):
        if os.path.islink(self.best_path):
            return os.path.basename(os.readlink(self.best_path))
        return None

    # -- saving -----------------------------------------------------------------------------
    def save(self, epoch, net, trainer=None, state=None, is_best=False, batch=0, stateful=None):
        """Save a checkpoint atomically and return its directory.

        Parameters
        ----------
        epoch : int
            Epochs completed (names the directory ``<prefix>-epoch%04d``).
        net : mxnet.gluon.Block
        trainer : mxnet.gluon.Trainer or None
        state : dict or None
            JSON-serialisable: best metric, partial sums, anything needed to resume.
        is_best : bool
            Also make this checkpoint ``<prefix>-best``.
        batch : int
            Batches completed of epoch ``epoch + 1`` (a mid-epoch checkpoint,
            ``<prefix>-epoch%04d-batch%06d``); 0 at the end of an epoch.
        stateful : dict, optional
            ``{name: obj}``: ``obj.state_dict()`` is saved under ``state['stateful'][name]``
            and given back by :meth:`Checkpoint.restore` (e.g. the loss scaler).

        Raises
        ------
        gluon_tricks.errors.DiskFullError
            The device holding ``save_dir`` is full; nothing of this checkpoint remains and
            the previous one is still the latest.
        """
        epoch, batch = int(epoch), int(batch)
        if stateful:
            state = dict(state or {}, stateful={k: v.state_dict() for k, v in stateful.items()})
        meta = {'format': FORMAT_VERSION, 'epoch': epoch, 'batch': batch, 'time': time.time(),
                'mxnet_version': mx.__version__, 'model': type(net).__name__,
                'files': {'params': PARAMS_FILE,
                          'optimizer': OPTIMIZER_FILE if trainer is not None else None},
                'state': {} if state is None else state}
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as err:
            raise TypeError('checkpoint state must be JSON-serialisable: %s' % err)

        what = 'the checkpoint of epoch %d%s' % (epoch, ', batch %d' % batch if batch else '')
        tmp = os.path.join(self.save_dir, '.tmp-%s-%d-%d' % (self.prefix, epoch, os.getpid()))
        try:
            os.makedirs(self.save_dir, exist_ok=True)
            self._remove_stale_tmp()
            if os.path.exists(tmp):
                shutil.rmtree(tmp)
            os.makedirs(tmp)
            try:
                params_path = os.path.join(tmp, PARAMS_FILE)
                save_params(net, params_path)
                fsync_file(params_path)
                written = [PARAMS_FILE]
                if trainer is not None:
                    states_path = os.path.join(tmp, OPTIMIZER_FILE)
                    arrays, meta['optimizer'] = collect_state(trainer, net)
                    mx.nd.save(states_path, arrays)
                    fsync_file(states_path)
                    written.append(OPTIMIZER_FILE)
                for name, obj in (stateful or {}).items():
                    if hasattr(obj, 'state_arrays'):
                        fname = getattr(obj, 'FILE', '%s.params' % name)
                        mx.nd.save(os.path.join(tmp, fname), obj.state_arrays())
                        fsync_file(os.path.join(tmp, fname))
                        meta['files'].setdefault('stateful', {})[name] = fname
                        written.append(fname)
                meta['sha256'] = {f: sha256(os.path.join(tmp, f)) for f in written}
                with open(os.path.join(tmp, STATE_FILE), 'w') as f:
                    f.write(json.dumps(meta, indent=1, sort_keys=True))
                    f.flush()
                    os.fsync(f.fileno())
                fsync_dir(tmp)

                referenced = {self._latest_dir_name(), self._best_dir_name()}
                name = self._free_epoch_name(epoch, referenced, batch)
                final = os.path.join(self.save_dir, name)
                os.rename(tmp, final)
                fsync_dir(self.save_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._write_pointer(name, epoch, batch)
            if is_best:
                self._make_best(name, epoch)
            self._prune()
        except (OSError, mx.base.MXNetError) as err:
            if not is_disk_full(err):
                raise
            try:
                previous = self._latest_dir_name()
            except CheckpointError:
                previous = None
            raise disk_full_error(self.save_dir, what,
                                  os.path.join(self.save_dir, previous) if previous else None) \
                from None
        return final

    def _free_epoch_name(self, epoch, referenced, batch=0):
        base = '%s-epoch%04d' % (self.prefix, epoch)
        if batch:
            base += '-batch%06d' % batch
        name, i = base, 0
        while os.path.lexists(os.path.join(self.save_dir, name)):
            if name not in referenced:  # orphan of a crashed save: not reachable, remove
                shutil.rmtree(os.path.join(self.save_dir, name))
                break
            i += 1
            name = '%s.%d' % (base, i)
        return name

    def _write_pointer(self, name, epoch, batch=0):
        write_atomic(self.latest_path, json.dumps(
            {'format': FORMAT_VERSION, 'dir': name, 'epoch': epoch, 'batch': batch,
             'time': time.time()}, indent=1, sort_keys=True))

    def _make_best(self, name, epoch):
        src = os.path.join(self.save_dir, name)
        best_name = '.%s-best-epoch%04d' % (self.prefix, epoch)
        i = 0
        while os.path.lexists(os.path.join(self.save_dir, best_name)):
            i += 1
            best_name = '.%s-best-epoch%04d.%d' % (self.prefix, epoch, i)
        tmp = os.path.join(self.save_dir, '.tmp-%s-best-%d-%d' % (self.prefix, epoch,
                                                                   os.getpid()))
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        try:
            for fname in os.listdir(src):
                try:
                    os.link(os.path.join(src, fname), os.path.join(tmp, fname))
                except OSError:
                    shutil.copy2(os.path.join(src, fname), os.path.join(tmp, fname))
                    fsync_file(os.path.join(tmp, fname))
            fsync_dir(tmp)
            os.rename(tmp, os.path.join(self.save_dir, best_name))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        link_tmp = '%s.tmp-%d' % (self.best_path, os.getpid())
        if os.path.lexists(link_tmp):
            os.remove(link_tmp)
        if os.path.lexists(self.best_path) and not os.path.islink(self.best_path):
            raise CheckpointError('%s exists and is not a symlink made by CheckpointManager'
                                  % self.best_path)
        os.symlink(best_name, link_tmp)          # relative: the save_dir can be moved
        os.replace(link_tmp, self.best_path)     # atomic swap of the symlink
        fsync_dir(self.save_dir)

    def _remove_stale_tmp(self):
        for entry in os.listdir(self.save_dir):
            path = os.path.join(self.save_dir, entry)
            m = self._tmp_re.match(entry)
            if m and not pid_alive(int(m.group(1))):
                shutil.rmtree(path, ignore_errors=True)
            m = self._tmp_file_re.match(entry)
            if m and not pid_alive(int(m.group(1))):
                os.remove(path)

    def _prune(self):
        latest = self._latest_dir_name()
        best = self._best_dir_name()
        epochs = []
        for entry in os.listdir(self.save_dir):
            m = self._epoch_re.match(entry)
            if m:
                epochs.append((self._key(m), entry))
            elif self._best_re.match(entry) and entry != best:
                shutil.rmtree(os.path.join(self.save_dir, entry), ignore_errors=True)
        epochs.sort()
        # keep the latest and the keep_last - 1 end-of-epoch directories before it; mid-epoch
        # directories other than the latest are superseded by it; directories of a higher
        # epoch than the latest belong to an abandoned run (training restarted from an
        # earlier epoch) and go as well
        keys = [key for key, entry in epochs if entry == latest]
        older = [entry for key, entry in epochs
                 if (not keys or key < keys[0]) and key[1] == 0 and entry != latest]
        keep = set(older[max(0, len(older) - (self.keep_last - 1)):] if self.keep_last > 1
                   else [])
        keep.add(latest)
        for _, entry in epochs:
            if entry not in keep:
                shutil.rmtree(os.path.join(self.save_dir, entry), ignore_errors=True)

    @staticmethod
    def _key(match):
        """Order of epoch directories: (epoch, batch, repeat suffix)."""
        return tuple(int(match.group(i) or 0) for i in (1, 2, 3))

    # -- loading ----------------------------------------------------------------------------
    def scan(self):
        """Every complete checkpoint directory of ``save_dir`` (epoch directories and the best
        copies; readable ``state.json``, every file present), newest first, without consulting
        the pointer; damaged ones are skipped."""
        if not os.path.isdir(self.save_dir):
            return []
        found = []
        for entry in os.listdir(self.save_dir):
            m = self._epoch_re.match(entry) or self._best_re.match(entry)
            if not m:
                continue
            try:
                ckpt = Checkpoint(os.path.join(self.save_dir, entry))
            except CheckpointError:
                continue
            repeat = self._key(m)[2:] if m.re is self._epoch_re else (-1,)   # epoch dir first
            found.append(((ckpt.epoch, ckpt.batch) + repeat, ckpt))
        return [ckpt for _, ckpt in sorted(found, key=lambda kv: kv[0], reverse=True)]

    def load_latest(self, scan=True):
        """The latest checkpoint, or ``None`` if nothing was saved yet.

        The pointer names it. When the pointer is missing, corrupt, or names a missing or
        incomplete directory and ``scan`` is true, the newest complete directory found by
        :meth:`scan` is returned instead, with :attr:`Checkpoint.recovered` saying why (the
        caller should log it and :meth:`repair_pointer`). Raises :class:`CheckpointError` when
        the pointer is damaged and no complete checkpoint exists (or ``scan`` is false).
        """
        problem = None
        try:
            name = self._latest_dir_name()
        except CheckpointError as err:
            name, problem = None, str(err)
        if name is not None:
            directory = os.path.join(self.save_dir, name)
            if not os.path.isdir(directory):
                problem = ('checkpoint pointer %s refers to a missing directory %s'
                           % (self.latest_path, directory))
            else:
                try:
                    return Checkpoint(directory)
                except CheckpointError as err:
                    problem = str(err)
        elif problem is None:
            problem = 'checkpoint pointer %s is missing' % self.latest_path
        found = self.scan() if scan else []
        if found:
            found[0].recovered = problem
            return found[0]
        if name is None and not os.path.exists(self.latest_path):
            return None  # nothing saved yet
        raise CheckpointError('%s, and %s holds no other complete checkpoint'
                              % (problem, self.save_dir))

    def repair_pointer(self, checkpoint):
        """Point ``<prefix>-latest.json`` at ``checkpoint`` (one found by :meth:`scan`)."""
        self._write_pointer(os.path.basename(checkpoint.directory), checkpoint.epoch,
                            checkpoint.batch)

    def mark_best(self, checkpoint):
        """Make ``checkpoint`` (a directory of this manager) ``<prefix>-best``, atomically, e.g.
        to repair a best link left stale by a kill between the pointer and the best update."""
        self._make_best(os.path.basename(checkpoint.directory), checkpoint.epoch)
        self._prune()

    def load_best(self):
        """The ``<prefix>-best`` checkpoint, or ``None`` if none was marked best."""
        if not os.path.lexists(self.best_path):
            return None
        if not os.path.isdir(self.best_path):
            raise CheckpointError('best checkpoint link %s refers to a missing directory %s'
                                  % (self.best_path, os.readlink(self.best_path)))
        return Checkpoint(self.best_path)
