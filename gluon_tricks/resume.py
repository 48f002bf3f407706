"""``--resume``: the run's saved configuration read back and compared with this command's,
the latest checkpoint restored (rank 0 reads, every rank receives) and the run's files
repaired.

:func:`saved_defaults` turns a ``config.json`` into the defaults of the flags (``--resume``
and ``--config FILE`` need nothing retyped); :func:`resume_changes` compares it with this
command's: the fields of :data:`RESUME_MAY_CHANGE` may differ, those of
:data:`RESUME_APPLIED` are applied and logged, any other difference is refused.
"""
import json
import os

from .checkpoint import CheckpointManager
from .checkpoint_files import CheckpointError, _read_json, restore_stateful
from .errors import ResumeConfigError
from .fsutil import write_atomic
from .optstate import OptimizerStateError, apply_trainer_payload
from .runlog import CONFIG_FILE, _previous_run

__all__ = ['RESUME_MAY_CHANGE', 'RESUME_APPLIED', 'flatten', 'saved_defaults', 'resume_changes',
           'resume_run']


def flatten(config):
    """``{field: value}`` over every section of a ``config.json`` dict (``derived`` last, so
    its resolved ``lr`` replaces the flag's)."""
    flat = {k: v for k, v in config.items() if not isinstance(v, dict)}
    for name in ('data', 'model', 'optim', 'tricks', 'run', 'derived'):
        flat.update(config.get(name) or {})
    return flat


#: Fields that may differ between a run and its ``--resume``: where things are read and
#: written, how often to log, evaluate and checkpoint, how many processes/devices compute the
#: same global batch, and how the network is executed.
RESUME_MAY_CHANGE = frozenset((
    'script', 'resume', 'overwrite', 'save_dir', 'logging_file', 'log_interval',
    'save_frequency', 'val_interval', 'checkpoint_interval', 'num_workers', 'progress',
    'data_dir', 'rec_train', 'rec_train_idx', 'rec_val', 'rec_val_idx', 'save_predictions',
    'verbose', 'tensorboard', 'kvstore', 'num_gpus', 'horovod', 'mode', 'teacher_params',
    'backbone_params', 'test_batch_size', 'allow_pickled_states', 'keep_checkpoints'))

#: The learning-rate schedule and the optimizer's hyper-parameters: a ``--resume`` may change
#: them; the schedule is rebuilt from this command's flags and continues at the checkpoint's
#: update count, and the change is logged.
RESUME_APPLIED = frozenset((
    'lr', 'base_lr', 'base_batch_size', 'lr_mode', 'lr_decay', 'lr_decay_epoch',
    'warmup_epochs', 'warmup_iters', 'warmup_lr', 'warmup_factor', 'target_lr', 'num_epochs',
    'power', 'momentum', 'wd'))


#: Fields of a saved configuration that say where and how a run was started, not what it
#: trains: never taken from ``--config`` or the resumed run's ``config.json``.
_NOT_CARRIED = frozenset(('resume', 'overwrite', 'save_dir', 'logging_file',
                          'allow_pickled_states'))


def saved_defaults(parser, path, task):
    """The values of a saved ``config.json`` for the dests of ``parser`` (argparse defaults):
    what a run trained with, so ``--resume`` or ``--config FILE`` need no flag retyped."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as err:
        parser.error('cannot read the run configuration %s: %s' % (path, err))
    if not isinstance(saved, dict) or saved.get('task', task) != task:
        parser.error('%s is the configuration of a %s run, not %s'
                     % (path, saved.get('task') if isinstance(saved, dict) else '?', task))
    values = {k: v for k, v in flatten(dict(saved, derived={})).items()
              if k not in _NOT_CARRIED}
    dests = {a.dest for a in parser._actions}
    return {k: v for k, v in values.items() if k in dests}


#: How a resume refusal names the values the loop derives (they are no flags).
_DERIVED_NAMES = {'global_batch': 'the global batch (--batch-size x devices x Horovod ranks)',
                  'iters_per_epoch': 'the iterations per epoch (training images / global batch)'}


def resume_changes(saved, current, where):
    """Compare the ``config.json`` of a run (``saved``) with this command's (``current``).

    Returns the differences of :data:`RESUME_APPLIED` fields as readable lines (to apply and
    log); raises :class:`~gluon_tricks.errors.ResumeConfigError` listing every other
    difference outside :data:`RESUME_MAY_CHANGE`. ``where`` names the saved file.
    """
    if saved is None or current is None:
        return []
    saved, current = flatten(saved), flatten(current)
    refused, applied = [], []
    for key in sorted(set(saved) | set(current)):
        if key in RESUME_MAY_CHANGE or saved.get(key) == current.get(key):
            continue
        text = '%s: %s in %s, %s now' % (_DERIVED_NAMES.get(key, '--' + key.replace('_', '-')),
                                         json.dumps(saved.get(key)), where,
                                         json.dumps(current.get(key)))
        (applied if key in RESUME_APPLIED else refused).append(text)
    if refused:
        raise ResumeConfigError(
            '--resume would continue the run with other settings: %s. These define the model, '
            'the data, the batches or the random choices the checkpoint was trained with and '
            'cannot change in the middle of a run. Resume with the flags of the original run, '
            'or start a new run (a fresh --save-dir, or --overwrite) to train with the new '
            'ones. (The learning-rate schedule flags, --momentum and the weight decay may '
            'change: they are applied.)' % '; '.join(refused))
    return applied
def resume_run(save_dir, net, trainer, devices, dist, config=None, best_key=None, hyper=None,
               stateful=None, allow_pickle=False):
    """``--resume``: restore the latest checkpoint of ``save_dir`` and return its state (epoch,
    best metric ...) with ``state['batch']``, the batches done of the next epoch.

    The checkpoint restores everything a step depends on: parameters, momentum and master
    weights, the optimizer's update count (the schedule position) on every device id,
    ``hyper`` (this command's ``lr_scheduler``, ``momentum``, ``wd``) and every ``stateful``
    object (e.g. the loss scaler). The random streams are functions of the position
    (:mod:`gluon_tricks.training`). Only rank 0 reads the save directory (it need not be on a
    file system the other hosts see): it broadcasts the state and optimizer arrays, then the
    parameters. On the way, rank 0:

    * finds the latest checkpoint by scanning when ``checkpoint-latest.json`` is missing or
      damaged, and rewrites the pointer;
    * compares ``config`` (this command's ``config.json`` dict) with ``SAVE_DIR/config.json``
      (:func:`resume_changes`): changes of the schedule and optimizer
      flags are logged and applied, others refused;
    * checks every file against its recorded sha256 (``CheckpointError`` naming it);
    * cuts ``metrics.jsonl`` to one line per epoch up to the checkpoint;
    * repairs ``checkpoint-best`` when the recorded metrics (``best_key``, higher is better)
      name another epoch whose checkpoint still exists.
    """
    manager = CheckpointManager(save_dir)
    payload = None
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
        path = os.path.join(save_dir, CONFIG_FILE)
        saved = _read_json(path, 'run configuration') if os.path.exists(path) else None
        if saved is None and latest.state.get('config'):   # config.json lost: the checkpoint's
            saved, path = latest.state['config'], latest.state_path
        if saved is None:
            _check_recorded(latest, config)
        applied = resume_changes(saved, config, path)
        latest.verify()
        latest.load_net(net, devices)
        optimizer = latest.trainer_payload(allow_pickle)
        if dist.is_distributed and 'arrays' in optimizer:
            optimizer['arrays'] = {k: v.asnumpy() for k, v in optimizer['arrays'].items()}
        extra = latest.stateful_arrays()
        if dist.is_distributed:
            extra = {n: {k: v.asnumpy() for k, v in a.items()} for n, a in extra.items()}
        payload = {'directory': latest.directory, 'epoch': latest.epoch, 'arrays': extra,
                   'batch': latest.batch, 'state': latest.state, 'applied': applied,
                   'optimizer': optimizer}
    payload = dist.broadcast_object(payload, name='gluon_tricks.resume')
    try:
        apply_trainer_payload(trainer, payload['optimizer'], hyper, payload['directory'], net)
    except OptimizerStateError as err:
        raise CheckpointError(str(err))
    state = dict(payload['state'])
    restore_stateful(state, stateful, payload['arrays'])
    if payload['applied']:
        dist.log('--resume applies this command\'s %s; the learning-rate schedule is rebuilt '
                 'from its flags and continues at update %d (lr %.6g)'
                 % ('; '.join(payload['applied']), trainer.optimizer.num_update,
                    trainer.learning_rate))
    state.setdefault('epoch', payload['epoch'])
    state['batch'] = payload['batch']
    state['checkpoint_dir'] = payload['directory']
    dist.broadcast_parameters(net.collect_params())
    if dist.is_master:
        records = _repair_metrics(os.path.join(save_dir, 'metrics.jsonl'), payload['epoch'],
                                  dist.log)
        if best_key:
            _repair_best(manager, records, best_key, dist.log)
    dist.log('resumed from %s at epoch %d%s' % (
        payload['directory'], state['epoch'],
        ', batch %d of epoch %d' % (payload['batch'], state['epoch'] + 1)
        if payload['batch'] else ''))
    return state


def _check_recorded(checkpoint, config):
    """A checkpoint of an older version without any configuration: refuse what its state
    records differently (the model, the classes, the seed)."""
    current = flatten(config or {})
    recorded = {'model': checkpoint.state.get('model'), 'seed': checkpoint.state.get('seed'),
                'num_classes': checkpoint.state.get('classes')}
    differ = ['--%s: %s in %s, %s now' % (k.replace('_', '-'), v, checkpoint.state_path,
                                         current.get(k))
              for k, v in sorted(recorded.items())
              if v is not None and current.get(k) is not None and current.get(k) != v]
    if differ:
        raise ResumeConfigError('--resume would continue the run with other settings: %s. '
                                'Resume with the flags of the original run, or start a new run.'
                                % '; '.join(differ))


def _repair_best(manager, records, key, log):
    """Point ``checkpoint-best`` at the epoch the metrics say is best, if its checkpoint
    exists (a kill between the pointer update and the best update leaves it stale)."""
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
        write_atomic(path, ''.join(json.dumps(r, sort_keys=True) + '\n' for r in kept))
        log('%s: dropped %d line(s) of epochs after the checkpoint (epoch %d), repeated or '
            'torn; one line per epoch is kept' % (path, dropped, epochs))
    return kept
