"""What a run directory holds, read for the report.

A run directory (``RUNS_DIR/<row>``) has ``metrics.jsonl`` (one line per epoch),
``config.json`` (the resolved configuration, written by the training loop), checkpoints and,
for Faster-RCNN and FCN, ``results.json``. Fields of ``config.json`` are looked up by name
across its sections (:func:`flatten`), so sections may be refined without touching the report.
A run written before ``config.json`` existed is read from the configuration its latest
checkpoint carries (``checkpoint-epochN/state.json``, key ``config``).
"""
import glob
import json
import os
import re

from gluon_tricks.runlog import MetricsError, read_metrics

__all__ = ['RunInfo', 'read_run', 'flatten', 'seed_runs', 'percent']

_SECTIONS = ('data', 'model', 'optim', 'tricks', 'run', 'derived')


def flatten(config):
    """``{field: value}`` over every section of a ``config.json`` dict (``derived`` last)."""
    flat = {k: v for k, v in config.items() if not isinstance(v, dict)}
    for name in _SECTIONS:
        flat.update(config.get(name) or {})
    for name, value in config.items():          # sections the report does not know yet
        if isinstance(value, dict) and name not in _SECTIONS:
            for k, v in value.items():
                flat.setdefault(k, v)
    return flat


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _checkpoint_config(path):
    """The flat configuration in the latest checkpoint of ``path`` ({} when none)."""
    pointer = _read_json(os.path.join(path, 'checkpoint-latest.json')) or {}
    dirs = [os.path.join(path, pointer['dir'])] if isinstance(pointer.get('dir'), str) else []
    dirs += sorted(glob.glob(os.path.join(path, 'checkpoint-epoch*')), reverse=True)
    for d in dirs:
        state = _read_json(os.path.join(d, 'state.json'))
        if isinstance(state, dict):
            config = (state.get('state') or {}).get('config')
            if isinstance(config, dict):
                return flatten(config)
    return {}


def percent(value):
    """A fraction as percent (values above 1 are taken as percent already)."""
    if value is None:
        return None
    value = float(value)
    return value * 100 if value <= 1.0 else value


class RunInfo(object):
    """A run directory: ``metrics`` (list of dict), ``config`` (flat dict), ``results``."""

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.exists = os.path.isdir(path)
        self.metrics, self.config, self.results = [], {}, {}
        #: why the run's metrics cannot be read (a torn or repeated line), or None
        self.problem = None
        if not self.exists:
            return
        try:
            self.metrics = read_metrics(os.path.join(path, 'metrics.jsonl'))
        except MetricsError as err:     # this row says so; the rest of the report goes on
            self.problem = str(err)
        config = _read_json(os.path.join(path, 'config.json'))
        self.config = flatten(config) if isinstance(config, dict) else \
            _checkpoint_config(path)
        self.results = _read_json(os.path.join(path, 'results.json')) or {}

    def get(self, *names):
        """The first of the configuration fields ``names`` the run has (None otherwise)."""
        for n in names:
            if self.config.get(n) is not None:
                return self.config[n]
        return None

    @property
    def model(self):
        """The trained network (the backbone of a detector / FCN run)."""
        return self.get('backbone', 'model')

    @property
    def epochs_done(self):
        return int(self.metrics[-1].get('epoch', len(self.metrics))) if self.metrics else 0

    @property
    def epochs_total(self):
        value = self.get('num_epochs', 'epochs')
        return int(value) if value is not None else None

    @property
    def finished(self):
        total = self.epochs_total
        return bool(self.metrics) and (total is None or self.epochs_done >= total)

    @property
    def status(self):
        """``'not run'``, ``'k/N epochs'`` (unfinished), ``'finished'``, or ``'metrics.jsonl
        damaged'`` (:attr:`problem` says where and how to repair it)."""
        if self.problem:
            return 'metrics.jsonl damaged (resume the run to repair it)'
        if not self.metrics:
            return 'not run'
        if self.finished:
            return 'finished'
        return '%d/%s epochs' % (self.epochs_done, self.epochs_total or '?')

    @property
    def params_file(self):
        path = os.path.join(self.path, 'checkpoint-best', 'net.params')
        return path if os.path.isfile(path) else None

    def describe(self):
        """What was trained: ``resnet18_v1, 32 px, batch 32, float32, 2 ep``."""
        if not self.config:
            return ''
        parts = [self.model or '?']
        if self.get('task') in (None, 'classification') and self.get('input_size'):
            parts.append('%s px' % self.get('input_size'))
        if self.get('global_batch'):
            parts.append('batch %s' % self.get('global_batch'))
        if self.get('dtype'):
            parts.append(self.get('dtype'))
        if self.epochs_total:
            parts.append('%d ep' % self.epochs_total)
        return ', '.join(parts)

    def last(self, *keys):
        """The last value of any of ``keys`` in results.json, else in metrics.jsonl."""
        for k in keys:
            if self.results.get(k) is not None:
                return self.results[k]
        for rec in reversed(self.metrics):
            for k in keys:
                if rec.get(k) is not None:
                    return rec[k]
        return None


def read_run(runs_dir, name):
    """:class:`RunInfo` of ``runs_dir/name``."""
    return RunInfo(name, os.path.join(runs_dir, name))


def seed_runs(runs_dir, name):
    """The runs of row ``name``: the row itself and its repeats with other seeds
    (``NAME-seedS``, see ``tools.experiments.scale.seed_copies``) that have metrics."""
    runs = [read_run(runs_dir, name)]
    pattern = re.compile(re.escape(name) + r'-seed\d+$')
    for path in sorted(glob.glob(os.path.join(runs_dir, name + '-seed*'))):
        if pattern.match(os.path.basename(path)):
            run = read_run(runs_dir, os.path.basename(path))
            if run.metrics:
                runs.append(run)
    return runs
