"""Average the parameters of several checkpoints into one Gluon ``.params`` file (timm's
``avg_checkpoints.py``).

The average of the last few epochs of a run (or of its best-validated ones) is often a
little better than any single one of them. The result is a plain params file with the keys
of the inputs (``mx.nd.save``), so it loads wherever a checkpoint's ``net.params`` does:
``get_model(name).load_parameters``, GluonCV's same-named model, ``evaluate.py``,
``export.py``, ``predict.py``, ``--initial-checkpoint``.

* Every array is averaged, BatchNorm running means and variances included (the average of
  running statistics approximates the statistics of the averaged weights; re-estimating
  them on training data is not done here). The sum is taken in float64 and each array is
  written in its own dtype, so averaging identical files gives the file back bit for bit.
* Inputs must hold the same keys, shapes and dtypes (one model, one precision); a file of a
  checkpoint directory is first checked against the sha256 its ``state.json`` recorded.
* :func:`select_checkpoints` picks the end-of-epoch checkpoints of a run directory: the
  newest ``n`` (``last``) or the ``n`` with the highest validation metric (``best``; the
  value recorded in the checkpoint's ``state.json``, else the run's ``metrics.jsonl``).
"""
import json
import os
import re

import numpy as np

from .errors import UserError

__all__ = ['AveragingError', 'CheckpointEntry', 'list_checkpoints', 'select_checkpoints',
           'entry_of', 'average_params', 'write_params']

_EPOCH_DIR = re.compile(r'^checkpoint-epoch(\d+)(-batch\d+)?(?:\.(\d+))?$')
_BEST_COPY = re.compile(r'^\.checkpoint-best-epoch(\d+)(?:\.(\d+))?$')
_PARAMS = 'net.params'


class AveragingError(UserError, ValueError):
    """Inputs that cannot be averaged (too few, another model, damaged); the message names
    the files and what to do."""


class CheckpointEntry(object):
    """One input: ``params`` (the file), ``directory`` (its checkpoint directory or None),
    ``epoch``, ``batch`` (0 at the end of an epoch), ``metric`` (validation value or None),
    ``metric_key`` (``'top1'`` for classification) and ``kind`` (``'epoch'``, ``'mid-epoch'``,
    ``'best'`` or ``'file'``)."""

    def __init__(self, params, directory=None, epoch=None, batch=0, metric=None,
                 metric_key='top1', kind='file'):
        self.params, self.directory, self.epoch, self.batch = params, directory, epoch, batch
        self.metric, self.metric_key, self.kind = metric, metric_key, kind
        self.shown = None

    @property
    def name(self):
        """The directory (or file) as the user knows it (``RUN/checkpoint-best`` for the best
        copy)."""
        return self.shown or self.directory or self.params

    def __repr__(self):
        return 'CheckpointEntry(%r, epoch=%r, %s=%r)' % (self.name, self.epoch, self.metric_key,
                                                         self.metric)


def _read_state(directory):
    path = os.path.join(directory, 'state.json')
    try:
        with open(path) as f:
            meta = json.load(f)
    except OSError:
        return None
    except ValueError as err:
        raise AveragingError('checkpoint state %s is corrupt (%s): move the directory %s out '
                             'of the way, or name the checkpoints to average as arguments'
                             % (path, err, directory))
    return meta if isinstance(meta, dict) else None


def _metrics_lines(run_dir):
    """``{epoch: record}`` of a run's ``metrics.jsonl`` (the last line of each epoch)."""
    out = {}
    path = os.path.join(run_dir, 'metrics.jsonl')
    if not os.path.isfile(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
                out[int(record['epoch'])] = record
            except (ValueError, KeyError, TypeError):
                continue   # a line cut by a kill
    return out


def entry_of(path, kind=None, metrics=None):
    """The :class:`CheckpointEntry` of a checkpoint directory or a ``.params`` file (epoch
    and validation metric from the ``state.json`` beside it, else from ``metrics``, the
    run's ``metrics.jsonl`` as ``{epoch: record}``)."""
    if os.path.isdir(path):
        directory, params = path, os.path.join(path, _PARAMS)
        if not os.path.isfile(params):
            raise AveragingError('%s holds no %s: give checkpoint directories '
                                 '(checkpoint-epochNNNN), .params files, or a run directory '
                                 'with --run' % (path, _PARAMS))
    elif os.path.isfile(path):
        params, parent = path, os.path.dirname(path) or '.'
        directory = parent if os.path.isfile(os.path.join(parent, 'state.json')) else None
    else:
        raise AveragingError('%s does not exist' % path)
    entry = CheckpointEntry(params, directory, kind=kind or 'file')
    meta = _read_state(directory) if directory else None
    if meta is None:
        return entry
    state = meta.get('state') if isinstance(meta.get('state'), dict) else {}
    entry.epoch = meta.get('epoch')
    entry.batch = int(meta.get('batch') or 0)
    entry.metric_key = state.get('best_key') or 'top1'
    record = state.get('metrics') if isinstance(state.get('metrics'), dict) else {}
    if record.get('epoch') not in (None, entry.epoch) or entry.batch:
        record = {}      # a mid-epoch checkpoint carries the previous epoch's line
    if record.get(entry.metric_key) is None and metrics and not entry.batch:
        record = metrics.get(entry.epoch, {})
    value = record.get(entry.metric_key)
    if isinstance(value, (int, float)) and os.path.basename(params) == _PARAMS:
        entry.metric = float(value)      # (net-ema.params has its own, top1_ema)
    if kind is None:
        entry.kind = 'mid-epoch' if entry.batch else 'epoch'
    return entry


def list_checkpoints(run_dir):
    """Every checkpoint directory of a training run, as :class:`CheckpointEntry`: the
    end-of-epoch ones (``checkpoint-epochNNNN``), the mid-epoch ones and the best copy
    (``checkpoint-best``), oldest first. A directory whose ``state.json`` cannot be read is
    an :class:`AveragingError` naming it."""
    if not os.path.isdir(run_dir):
        raise AveragingError('--run %s is not a directory' % run_dir)
    metrics = _metrics_lines(run_dir)
    found = []
    for name in os.listdir(run_dir):
        m = _EPOCH_DIR.match(name)
        kind = ('mid-epoch' if m.group(2) else 'epoch') if m else None
        if not m:
            m = _BEST_COPY.match(name)
            kind = 'best' if m else None
        path = os.path.join(run_dir, name)
        if not kind or not os.path.isfile(os.path.join(path, _PARAMS)):
            continue
        entry = entry_of(path, kind, metrics)
        if entry.epoch is None:
            raise AveragingError('%s has no readable state.json (an incomplete checkpoint): '
                                 'move it out of %s, or name the checkpoints to average as '
                                 'arguments' % (path, run_dir))
        if kind == 'best':
            entry.shown = os.path.join(run_dir, 'checkpoint-best')
        found.append((entry.epoch, entry.batch, int(m.groups()[-1] or 0), entry))
    return [e for *_, e in sorted(found, key=lambda t: t[:3])]


def _describe(entries, run_dir):
    if not entries:
        return '%s holds no checkpoint' % run_dir
    parts = []
    for e in entries:
        what = {'best': 'checkpoint-best, epoch %s' % e.epoch,
                'mid-epoch': '%s (mid-epoch)' % os.path.basename(e.directory)}.get(
            e.kind, os.path.basename(e.directory))
        if e.kind != 'mid-epoch':
            what += ' (%s %s)' % (e.metric_key, 'not measured' if e.metric is None
                                  else '%.4f' % e.metric)
        parts.append(what)
    return '%s holds %s' % (run_dir, ', '.join(parts))


def select_checkpoints(run_dir, last=None, best=None):
    """The end-of-epoch checkpoints of ``run_dir`` to average: the ``last`` newest, or the
    ``best`` with the highest validation metric (ties: the newer). ``best`` may take the
    ``checkpoint-best`` copy when its epoch directory was pruned already. Fewer than asked
    (but at least 2) are returned as they are; fewer than 2 is an :class:`AveragingError`
    saying what the run holds.

    Returns
    -------
    (list of CheckpointEntry, str)
        The checkpoints, oldest first, and a note when fewer than asked were found ('').
    """
    if (last is None) == (best is None):
        raise ValueError('give one of last and best')
    n = int(last if last is not None else best)
    if n < 2:
        raise AveragingError('--%s %d: averaging needs at least 2 checkpoints'
                             % ('last' if last is not None else 'best', n))
    entries = list_checkpoints(run_dir)
    epochs = {}
    for e in entries:
        if e.kind == 'epoch':
            epochs[e.epoch] = e        # the newest repeat of an epoch wins
    pool = sorted(epochs.values(), key=lambda e: e.epoch)
    if last is not None:
        chosen, what = pool[-n:], 'end-of-epoch checkpoint'
    else:
        bests = [e for e in entries if e.kind == 'best' and e.epoch not in epochs]
        rated = [e for e in pool + bests[-1:] if e.metric is not None]
        rated.sort(key=lambda e: (e.metric, e.epoch), reverse=True)
        chosen = sorted(rated[:n], key=lambda e: e.epoch)
        what = 'checkpoint with a validation %s' % (entries[0].metric_key if entries
                                                    else 'top1')
    flag = '--last %d' % n if last is not None else '--best %d' % n
    if len(chosen) < 2:
        raise AveragingError(
            '%s: found %d %s, at least 2 are needed; %s. Train with --keep-checkpoints N (it '
            'keeps the newest N epochs), or name checkpoint directories or .params files as '
            'arguments' % (flag, len(chosen), what, _describe(entries, run_dir)))
    note = '' if len(chosen) == n else ('%s: the run holds only %d %ss, averaging those'
                                        % (flag, len(chosen), what))
    return chosen, note


def _load(path):
    import mxnet as mx
    from .errors import mxnet_error_line
    try:
        arrays = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise AveragingError('%s is not a readable MXNet .params file (%s)'
                             % (path, mxnet_error_line(err)))
    if not isinstance(arrays, dict) or not arrays:
        raise AveragingError('%s holds no named parameters (not a params file of '
                             'save_parameters or of a checkpoint)' % path)
    return arrays


def _difference(first, path0, arrays, path, limit=5):
    only0 = sorted(set(first) - set(arrays))
    only1 = sorted(set(arrays) - set(first))
    parts = []
    if only0:
        parts.append('%d key(s) only in %s (%s)' % (len(only0), path0, ', '.join(only0[:limit])))
    if only1:
        parts.append('%d key(s) only in %s (%s)' % (len(only1), path, ', '.join(only1[:limit])))
    shapes = ['%s: %s vs %s' % (k, first[k][0], arrays[k].shape)
              for k in first if k in arrays and first[k][0] != arrays[k].shape]
    if shapes:
        parts.append('%d shape(s) differ (%s)' % (len(shapes), '; '.join(shapes[:limit])))
    dtypes = ['%s: %s vs %s' % (k, first[k][1].__name__, np.dtype(arrays[k].dtype).name)
              for k in first if k in arrays and first[k][0] == arrays[k].shape and
              np.dtype(first[k][1]) != np.dtype(arrays[k].dtype)]
    if dtypes:
        parts.append('%d dtype(s) differ (%s)' % (len(dtypes), '; '.join(dtypes[:limit])))
    return '; '.join(parts)


def average_params(paths):
    """The mean of the arrays of ``paths`` (``.params`` files), key by key.

    Each file of a checkpoint directory is checked against its recorded sha256 first
    (:class:`~gluon_tricks.errors.DamagedFileError` naming it). The sums are float64; the
    result has each array's dtype (integer arrays are rounded).

    Returns
    -------
    dict of str to mxnet.nd.NDArray
        In the key order of the first file, on the CPU.
    """
    import mxnet as mx
    from .model_zoo.io import check_recorded_digest
    if len(paths) < 2:
        raise AveragingError('averaging needs at least 2 files, got %d: %s'
                             % (len(paths), ', '.join(paths) or 'none'))
    sums, first = None, None
    for path in paths:
        check_recorded_digest(path)
        arrays = _load(path)
        if sums is None:
            first = {k: (v.shape, np.dtype(v.dtype).type) for k, v in arrays.items()}
            sums = {k: v.asnumpy().astype(np.float64) for k, v in arrays.items()}
            continue
        problem = _difference(first, paths[0], arrays, path)
        if problem:
            raise AveragingError('cannot average %s with %s: %s. Average checkpoints of one '
                                 'model trained in one precision (one run)'
                                 % (path, paths[0], problem))
        for k, v in arrays.items():
            sums[k] += v.asnumpy()
    out = {}
    for k, total in sums.items():
        mean = total / len(paths)
        dtype = first[k][1]
        if np.issubdtype(dtype, np.integer):
            mean = np.rint(mean)
        out[k] = mx.nd.array(mean.astype(dtype), dtype=dtype, ctx=mx.cpu())
    return out


def write_params(arrays, path):
    """``mx.nd.save`` to ``path`` through a temporary file in the same directory: ``path``
    appears complete or not at all."""
    import mxnet as mx
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, '.%s.tmp-%d' % (os.path.basename(path), os.getpid()))
    try:
        mx.nd.save(tmp, arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
