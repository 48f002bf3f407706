"""One checkpoint directory as its readers see it: the files, their recorded sha256, and
loading them into a network, a trainer and the run's stateful objects (:class:`Checkpoint`).
Writing, pruning and finding checkpoints is :mod:`gluon_tricks.checkpoint`'s.

Nothing in a checkpoint runs code when it is read: arrays and JSON only. Checkpoints of
older versions hold ``trainer.states``, a pickle of MXNet's ``Trainer.save_states``; they
resume only with ``allow_pickle`` (``--allow-pickled-states``), because unpickling a file runs
whatever code it contains.
"""
import json
import os

import mxnet as mx

from .errors import UserError, mxnet_error_line
from .fsutil import sha256
from .model_zoo.io import describe_mismatch, load_params
from .optstate import OptimizerStateError, apply_trainer_payload

__all__ = ['CheckpointError', 'Checkpoint', 'restore_stateful', 'FORMAT_VERSION',
           'PARAMS_FILE', 'OPTIMIZER_FILE', 'STATES_FILE', 'STATE_FILE']

FORMAT_VERSION = 2
PARAMS_FILE = 'net.params'
OPTIMIZER_FILE = 'optimizer.params'
STATES_FILE = 'trainer.states'     # older versions: a pickle
STATE_FILE = 'state.json'


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot be used (missing, corrupt or not matching the model).

    A user error: ``run_main`` shows its message without a traceback."""


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as err:
        raise CheckpointError('%s %s is corrupt (not valid JSON: %s)' % (what, path, err))
    except OSError as err:
        raise CheckpointError('cannot read %s %s: %s' % (what, path, err))


def _mismatch(params_path, net):
    """A readable diff between a ``.params`` file and the structural names of ``net``."""
    try:
        saved = mx.nd.load(params_path)
    except mx.base.MXNetError as err:
        return 'the file cannot be read (%s); ' % mxnet_error_line(err)
    if not isinstance(saved, dict):
        return 'the file holds no named parameters; '
    text = describe_mismatch(net, saved)
    return (text + '. MXNet: ') if text else ''


class Checkpoint(object):
    """One saved checkpoint, as found by :meth:`CheckpointManager.load_latest` or
    :meth:`CheckpointManager.load_best`.

    Attributes: ``directory``, ``epoch``, ``batch``, ``params_path``, ``states_path`` (the
    optimizer arrays, or an older version's pickled ``trainer.states``; ``None`` when saved
    without a trainer), ``state_path``, ``state`` (the caller's state as passed to ``save``)
    and ``meta`` (the whole ``state.json``).
    """

    def __init__(self, directory):
        self.directory = directory
        self.state_path = os.path.join(directory, STATE_FILE)
        if not os.path.isdir(directory):
            raise CheckpointError('checkpoint directory %s does not exist' % directory)
        meta = _read_json(self.state_path, 'checkpoint state')
        if not isinstance(meta, dict) or 'epoch' not in meta or 'state' not in meta:
            raise CheckpointError('checkpoint state %s is corrupt (no epoch/state entries)'
                                  % self.state_path)
        self.meta = meta
        self.epoch = meta['epoch']
        self.batch = int(meta.get('batch', 0) or 0)
        self.state = meta['state']
        #: why this checkpoint was found by scanning instead of through the pointer, or None
        self.recovered = None
        files = meta.get('files', {})
        self.params_path = os.path.join(directory, files.get('params', PARAMS_FILE))
        states = files.get('optimizer', files.get('trainer_states', STATES_FILE))
        self.states_path = os.path.join(directory, states) if states else None
        #: True for an older version's pickled ``trainer.states``
        self.pickled = 'optimizer' not in files and states is not None
        for path in (self.params_path, self.states_path):
            if path is not None and not os.path.isfile(path):
                raise CheckpointError('checkpoint %s is incomplete: %s is missing'
                                      % (directory, path))

    def verify(self):
        """Check every file against the sha256 recorded in ``state.json`` when it was saved
        (checkpoints of older versions have none); :class:`CheckpointError` naming the file
        on a mismatch."""
        for fname, expected in sorted(self.meta.get('sha256', {}).items()):
            path = os.path.join(self.directory, fname)
            try:
                actual = sha256(path)
            except OSError as err:
                raise CheckpointError('cannot read checkpoint file %s: %s' % (path, err))
            if actual != expected:
                inode = os.stat(path).st_ino   # the best copy may hard-link the same file
                run = os.path.dirname(os.path.abspath(self.directory))
                from .checkpoint import CheckpointManager
                intact = [c for c in CheckpointManager(run).scan()
                          if os.path.isfile(os.path.join(c.directory, fname)) and
                          os.stat(os.path.join(c.directory, fname)).st_ino != inode]
                advice = ('Restore the file from a copy, or move the directory %s out of %s: '
                          '--resume then continues from %s (epoch %d), evaluate.py and export.py '
                          'can read that one.' % (self.directory, run, intact[0].directory,
                                                  intact[0].epoch)) if intact else (
                    'Restore the file from a copy; the run holds no other intact checkpoint.')
                raise CheckpointError(
                    'checkpoint file %s is damaged: its sha256 %s differs from %s recorded when '
                    'it was saved. %s' % (path, actual[:16] + '...', expected[:16] + '...',
                                          advice))

    def load_net(self, net, ctx=None, allow_missing=False, ignore_extra=False):
        """Load the parameters into ``net`` (cast to its dtypes; :meth:`verify` first)."""
        try:
            load_params(net, self.params_path, ctx=ctx, allow_missing=allow_missing,
                        ignore_extra=ignore_extra)
        except (AssertionError, ValueError, KeyError, RuntimeError, mx.base.MXNetError) as err:
            raise CheckpointError('parameters %s do not fit the model %s (%s): %s%s'
                                  % (self.params_path, type(net).__name__, net.name,
                                     _mismatch(self.params_path, net), str(err).strip()))

    def trainer_payload(self, allow_pickle=False):
        """What :func:`apply_trainer_payload` gives a trainer: ``{'arrays', 'info'}`` (CPU
        arrays and the JSON of :mod:`gluon_tricks.optstate`), or ``{'pickle': bytes}`` for an
        older checkpoint, only with ``allow_pickle``."""
        if self.states_path is None:
            raise CheckpointError('checkpoint %s has no trainer states (saved without a '
                                  'trainer)' % self.directory)
        if self.pickled:
            if not allow_pickle:
                raise CheckpointError(
                    'checkpoint %s was written by an older gluon-tricks: its optimizer state %s '
                    'is a Python pickle, and loading a pickle runs any code it contains. If you '
                    'made this checkpoint yourself, resume it once with --allow-pickled-states '
                    '(its next checkpoint is written in the safe format); never use that flag '
                    'for a file from elsewhere.' % (self.directory, self.states_path))
            with open(self.states_path, 'rb') as f:
                return {'pickle': f.read()}
        try:
            arrays = mx.nd.load(self.states_path)
        except mx.base.MXNetError as err:
            raise CheckpointError('optimizer states %s cannot be read: %s'
                                  % (self.states_path, mxnet_error_line(err)))
        if 'optimizer' not in self.meta:
            raise CheckpointError('checkpoint state %s has no "optimizer" entry' % self.state_path)
        return {'arrays': arrays if isinstance(arrays, dict) else {},
                'info': self.meta['optimizer']}

    def stateful_arrays(self):
        """``{name: {key: NDArray}}`` of the stateful objects that saved arrays (e.g. the
        model EMA's ``net-ema.params``)."""
        out = {}
        for name, fname in (self.meta.get('files', {}).get('stateful') or {}).items():
            try:
                out[name] = mx.nd.load(os.path.join(self.directory, fname))
            except mx.base.MXNetError as err:
                raise CheckpointError('%s cannot be read: %s'
                                      % (os.path.join(self.directory, fname),
                                         mxnet_error_line(err)))
        return out

    def restore(self, net, trainer=None, ctx=None, allow_missing=False, ignore_extra=False,
                hyper=None, stateful=None, allow_pickle=False):
        """Verify the files (:meth:`verify`), load the parameters into ``net`` and, if given,
        the optimizer states into ``trainer`` (:func:`apply_trainer_payload`); every
        ``stateful`` object (``{name: obj}``, e.g. the loss scaler) gets ``load_state_dict``
        of what :meth:`CheckpointManager.save` stored for ``name``; return :attr:`state`."""
        self.verify()
        self.load_net(net, ctx, allow_missing, ignore_extra)
        if trainer is not None:
            try:
                apply_trainer_payload(trainer, self.trainer_payload(allow_pickle), hyper,
                                      self.states_path, net)
            except OptimizerStateError as err:
                raise CheckpointError(str(err))
        restore_stateful(self.state, stateful, self.stateful_arrays())
        return self.state

    def __repr__(self):
        return 'Checkpoint(epoch=%r, batch=%r, directory=%r)' % (self.epoch, self.batch,
                                                                 self.directory)


def restore_stateful(state, stateful, arrays=None):
    """Give every ``stateful`` object (``{name: obj}``) the ``state_dict`` saved for it, and
    its named arrays (``arrays[name]``, from :meth:`Checkpoint.stateful_arrays`) to those that
    keep some (``load_state_arrays``)."""
    saved = state.get('stateful') or {}
    for name, obj in (stateful or {}).items():
        obj.load_state_dict(saved.get(name) or {})
        if hasattr(obj, 'load_state_arrays'):
            obj.load_state_arrays((arrays or {}).get(name) or {}, 'the checkpoint')
