"""Typed configuration of a training run: one dataclass per concern, each field a flag.

The three training scripts parse their flags into a :class:`TrainConfig` (its sections:
``data``, ``model``, ``optim``, ``tricks``, ``run``) and hand it to
:func:`gluon_tricks.training.fit`; no ``argparse.Namespace`` goes further. Every field is
named like the argparse dest of its flag and declares it (:func:`~gluon_tricks.sections.flag`:
default, option strings, help; ``add_args`` builds the parser from them), so
``SAVE_DIR/config.json`` (written by the loop) reads like the command line::

    {"task": "classification", "script": "train_imagenet.py", "data": {...},
     "model": {"model": "resnet50_v1d", "last_gamma": true, ...}, "optim": {...},
     "tricks": {...}, "run": {...}, "derived": {"lr": 0.4, "global_batch": 1024, ...}}

The model and data sections of detection and segmentation live with their tasks
(:data:`TASK_MODULES`). Readers look fields up by name across sections
(:func:`gluon_tricks.resume.flatten`).
``--resume`` and ``--config FILE`` read a saved file back as the flags' defaults, and
``--resume`` compares it with this command's configuration (:mod:`gluon_tricks.resume`).
"""
import dataclasses
import importlib
import json
import os
from typing import Optional, Tuple

__all__ = ['Section', 'ClassifierConfig', 'OptimConfig', 'TricksConfig', 'RunConfig',
           'TrainConfig', 'CLASSIFICATION_DEFAULTS', 'TASK_MODULES', 'task_sections',
           'parse_config',
           'DataConfig', 'check_positive', 'flag', 'mode_flag']

from .classifier_config import ClassifierConfig, TricksConfig
from .data.options import DataConfig
from .sections import HelpFormatter, Section, check_positive, flag, mode_flag


def _lr_modes():
    from .lr_scheduler import MODES  # imports MXNet: only when a parser is built
    return list(MODES)


# ------------------------------------------------------------------------------ optimisation
@dataclasses.dataclass
class OptimConfig(Section):
    """Optimizer, batch and learning-rate schedule (sections 2.1, 3.1 and 5.1)."""

    title = 'optimization'

    optimizer: str = flag('nag', choices=['nag', 'sgd'],
                          help='nag: Nesterov momentum (paper section 2.1); sgd: momentum SGD')
    batch_size: int = flag(32, type=int, help='batch per device')
    num_gpus: int = flag(0, type=int, help='GPUs per process; 0 = CPU')
    num_epochs: int = flag(120, '--num-epochs', '--epochs', type=int, help='training epochs')
    lr: Optional[float] = flag(None, type=float,
                               help='learning rate; default: linear scaling base-lr x global '
                                    'batch / base-batch-size (section 3.1)')
    base_lr: float = flag(0.1, type=float, help='lr for --base-batch-size')
    base_batch_size: int = flag(256, type=int, help='global batch of --base-lr')
    lr_mode: str = flag('step', choices=_lr_modes,
                        help='step (section 2.1) or cosine (section 5.1, eq. 1), poly, linear, '
                             'constant')
    lr_decay: float = flag(0.1, type=float, help='step decay factor')
    lr_decay_epoch: Tuple[float, ...] = flag(
        (30.0, 60.0, 90.0), shown=lambda epochs: ','.join('%g' % e for e in epochs),
        help='epochs of step decay')
    power: float = flag(2.0, type=float, help='exponent of the poly decay')
    warmup_epochs: float = flag(0.0, type=float, help='linear warmup epochs (section 3.1: 5)')
    warmup_iters: Optional[int] = flag(None, '--warmup-iters', '--lr-warmup', type=int,
                                       help='linear warmup iterations; overrides '
                                            '--warmup-epochs')
    warmup_lr: Optional[float] = flag(None, type=float,
                                      help='lr at the start of warmup (default: '
                                           '--warmup-factor x lr)')
    warmup_factor: float = flag(0.0, '--warmup-factor', '--lr-warmup-factor', type=float,
                                help='warmup starts at this fraction of the lr (unless '
                                     '--warmup-lr)')
    target_lr: float = flag(0.0, type=float, help='final lr of cosine/poly/linear decay')
    momentum: float = flag(0.9, type=float, help='momentum')
    wd: float = flag(1e-4, '--wd', '--weight-decay', type=float, help='weight decay')
    no_wd: bool = flag(False, action='store_true',
                       help='no bias decay (section 3.1): biases and BN gamma/beta get no '
                            'weight decay, selected by layer role')

    def __post_init__(self):
        if isinstance(self.lr_decay_epoch, str):
            try:
                self.lr_decay_epoch = tuple(float(e) for e in self.lr_decay_epoch.split(',')
                                            if e.strip())
            except ValueError:
                raise ValueError('--lr-decay-epoch must be comma-separated epochs, got %r'
                                 % self.lr_decay_epoch) from None
        self.lr_decay_epoch = tuple(float(e) for e in self.lr_decay_epoch)

    def check(self):
        check_positive(self, 'batch_size', 'num_epochs', 'base_batch_size')
        if self.warmup_iters is not None and self.warmup_iters < 0:
            raise ValueError('--warmup-iters must be >= 0, got %d' % self.warmup_iters)

    def warmup_start(self, lr):
        """The lr before the first warmup step: ``--warmup-lr``, else factor x lr."""
        return self.warmup_lr if self.warmup_lr is not None else self.warmup_factor * lr


# ------------------------------------------------------------------------------ run
@dataclasses.dataclass
class RunConfig(Section):
    """Where the run writes, how often it logs, evaluates and checkpoints, how it is
    distributed, and its seed."""

    title = 'run'

    save_dir: str = flag('params', help='checkpoints, metrics and log')
    resume: bool = flag(False, action='store_true',
                        help='continue from the latest checkpoint in --save-dir')
    allow_pickled_states: bool = flag(
        False, action='store_true',
        help='--resume a checkpoint of an older gluon-tricks whose trainer.states is a Python '
             'pickle. UNSAFE: loading a pickle runs any code in the file; only for '
             'checkpoints you wrote yourself')
    overwrite: bool = flag(False, action='store_true',
                           help='start a new run in a --save-dir that holds an earlier run: its '
                                'checkpoints, metrics.jsonl, train.log and results.json are '
                                'moved to SAVE_DIR/replaced-<time>/ first')
    save_frequency: int = flag(1, '--save-frequency', '--save-interval', type=int,
                               help='write a checkpoint every N epochs (and after the last)')
    keep_checkpoints: int = flag(10, '--keep-checkpoints', '--checkpoint-hist', type=int,
                                 help='end-of-epoch checkpoints kept in SAVE_DIR: the newest N '
                                      '(older ones are deleted as new ones are written; '
                                      'checkpoint-best is always kept). Keep several to '
                                      'average them '
                                      '(scripts/classification/average_checkpoints.py)')
    checkpoint_interval: int = flag(0, type=int,
                                    help='also checkpoint every N batches inside an epoch '
                                         '(resumable at that batch); 0: at the end of epochs '
                                         'only. SIGTERM/SIGINT always checkpoint the current '
                                         'position and exit with 128+signal')
    val_interval: int = flag(1, type=int, help='evaluate every N epochs (and after the last)')
    log_interval: int = flag(50, type=int, help='batches between log lines')
    logging_file: Optional[str] = flag(None, help='log file (default: SAVE_DIR/train.log)')
    seed: int = flag(0, type=int, help='seed of every random choice')
    horovod: bool = flag(False, action='store_true',
                         help='Horovod data parallelism (launch with horovodrun)')
    kvstore: Optional[str] = flag(None, help='kvstore for several local devices (default: '
                                             'device; not with --horovod)')
    progress: str = flag('auto', choices=['auto', 'bar', 'log'],
                         help='tqdm bar (auto: when stderr is a terminal) or log lines only')
    tensorboard: Optional[str] = flag(None, metavar='DIR',
                                      help='also write the metrics.jsonl scalars as '
                                           'TensorBoard event files in DIR (rank 0; needs '
                                           'tensorboardX, the [tensorboard] extra)')
    save_predictions: Optional[str] = flag(None, tasks=('detection',),
                                           help='write the final test predictions of this '
                                                'rank (pickle) to this file')
    verbose: bool = flag(False, action='store_true', tasks=('detection',),
                         help='log the trained parameters')

    def check(self):
        for name, unit in (('log_interval', 'batches'), ('save_frequency', 'epochs'),
                           ('val_interval', 'epochs')):
            if getattr(self, name) < 1:
                raise ValueError('--%s must be a positive number of %s, got %d'
                                 % (name.replace('_', '-'), unit, getattr(self, name)))
        if self.keep_checkpoints < 1:
            raise ValueError('--keep-checkpoints must be at least 1 (the latest checkpoint is '
                             'what --resume continues from), got %d' % self.keep_checkpoints)
        if self.checkpoint_interval < 0:
            raise ValueError('--checkpoint-interval must be >= 0 batches (0: only at the end '
                             'of epochs), got %d' % self.checkpoint_interval)
        if self.resume and self.overwrite:
            raise ValueError('--resume continues the run in --save-dir, --overwrite replaces '
                             'it: choose one')
        if self.kvstore is not None and str(self.kvstore).startswith('dist'):
            raise ValueError(
                '--kvstore %s: distributed kvstores (a parameter server launched with '
                'tools/launch.py) are not supported; train on several hosts with --horovod '
                'under horovodrun (scripts/classification/horovod_launch.sh) instead'
                % self.kvstore)
        if self.allow_pickled_states and not self.resume:
            raise ValueError('--allow-pickled-states only applies to --resume')
        if self.horovod and self.kvstore is not None:
            raise ValueError('--kvstore %s has no effect with --horovod (Horovod all-reduces '
                             'the gradients itself): drop --kvstore' % self.kvstore)
        if self.kvstore is None and not self.horovod:
            self.kvstore = 'device'


# ------------------------------------------------------------------------------ the whole run
#: The defaults of the shared flags for classification: the fields' own (the other tasks:
#: their ``DEFAULTS``, ``{'optim': {field: default}, 'run': {...}}``).
CLASSIFICATION_DEFAULTS = {}

#: The modules of the tasks trained from a backbone (GluonCV's VOC and ADE20K recipes); each
#: defines ``MODEL_CONFIG``, ``DATA_CONFIG`` and ``DEFAULTS``, imported when its task is parsed.
TASK_MODULES = {'detection': 'gluon_tricks.training.detection',
                'segmentation': 'gluon_tricks.training.segmentation'}


def task_sections(task):
    """``(model section, data section, defaults of the shared flags)`` of ``task``."""
    if task == 'classification':
        return ClassifierConfig, DataConfig, CLASSIFICATION_DEFAULTS
    module = importlib.import_module(TASK_MODULES[task])
    return module.MODEL_CONFIG, module.DATA_CONFIG, module.DEFAULTS


@dataclasses.dataclass
class TrainConfig(object):
    """The resolved configuration of one training run (what ``config.json`` holds)."""

    task: str
    data: object
    model: object
    optim: OptimConfig
    tricks: TricksConfig = dataclasses.field(default_factory=TricksConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    script: str = ''

    @staticmethod
    def add_args(parser, task):
        """Every flag of ``task``'s training script, with the task's defaults."""
        model_cls, data_cls, defaults = task_sections(task)
        data_cls.add_args(parser, task=task)
        model_cls.add_args(parser, task=task)
        OptimConfig.add_args(parser, defaults.get('optim'), task)
        if task == 'classification':
            TricksConfig.add_args(parser, task=task)
        RunConfig.add_args(parser, defaults.get('run'), task)

    @classmethod
    def from_args(cls, args, task, script=''):
        model_cls, data_cls, _ = task_sections(task)
        return cls(task=task, data=data_cls.from_args(args),
                   model=model_cls.from_args(args), optim=OptimConfig.from_args(args),
                   tricks=TricksConfig.from_args(args), run=RunConfig.from_args(args),
                   script=script)

    def check(self):
        """Every section's checks and those across sections (``ValueError``)."""
        for section in (self.data, self.model, self.optim, self.tricks, self.run):
            if hasattr(section, 'check'):
                section.check()
        self.model.check_with(self)
        return self

    def to_dict(self, **derived):
        """The ``config.json`` form; ``derived`` are values the loop resolved (lr, batches)."""
        out = {'task': self.task, 'script': self.script, 'data': self.data.to_dict(),
               'model': self.model.to_dict(), 'optim': self.optim.to_dict(),
               'tricks': self.tricks.to_dict() if self.task == 'classification' else {},
               'run': self.run.to_dict()}
        if derived:
            out['derived'] = json.loads(json.dumps(derived))
        return out

    @classmethod
    def from_dict(cls, values):
        model_cls, data_cls, _ = task_sections(values['task'])
        return cls(task=values['task'], script=values.get('script', ''),
                   data=data_cls.from_dict(values['data']),
                   model=model_cls.from_dict(values['model']),
                   optim=OptimConfig.from_dict(values['optim']),
                   tricks=TricksConfig.from_dict(values.get('tricks') or {}),
                   run=RunConfig.from_dict(values['run']))


def parse_config(task, argv=None, script='', description=None):
    """The flags of ``task``'s training script (:meth:`TrainConfig.add_args`) parsed from
    ``argv`` into a checked :class:`TrainConfig`; a value that cannot work ends with
    ``parser.error`` (exit status 2, the message naming the flag)."""
    import argparse
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=HelpFormatter)
    TrainConfig.add_args(parser, task)
    parser.add_argument('--config', default=None, metavar='FILE',
                        help="start from a run's config.json: its settings become the "
                             'defaults, flags given on top change them (--resume reads '
                             'SAVE_DIR/config.json this way by itself)')
    first, _ = parser.parse_known_args(argv)
    source = first.config or (os.path.join(first.save_dir, 'config.json') if first.resume
                              else None)
    if first.config and not os.path.isfile(first.config):
        parser.error('--config %s does not exist' % first.config)
    if source and os.path.isfile(source):
        from .resume import saved_defaults
        parser.set_defaults(**saved_defaults(parser, source, task))
    args = parser.parse_args(argv)
    try:
        return TrainConfig.from_args(args, task, os.path.basename(script)).check()
    except ValueError as err:
        parser.error(str(err))
