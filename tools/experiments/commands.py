"""From an :class:`~tools.experiments.rows.Experiment` to a command line, and the state of its
run directory.

:class:`Env` holds what the machine adds to a row (folders, devices, launcher), read from the
environment variables the table scripts have always used. :func:`command` builds the training
command; the global batch becomes ``--batch-size`` per device and the training script derives
the learning rate from it (linear scaling lives in the trainer, not here).
"""
import glob
import json
import os
import shlex
from dataclasses import dataclass, field

__all__ = ['Env', 'SCRIPTS', 'command', 'training_argv', 'flag_name', 'status', 'last_epoch',
           'quote', 'data_steps', 'DATA_FOLDERS']

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = {'classification': 'scripts/classification/train_imagenet.py',
           'detection': 'scripts/detection/train_faster_rcnn.py',
           'segmentation': 'scripts/segmentation/train_fcn.py'}
#: env variable of each data set's folder, and its default
DATA_FOLDERS = {'imagenet': ('DATA_DIR', '~/.mxnet/datasets/imagenet/rec'),
                'places365': ('PLACES_DIR', '~/.mxnet/datasets/places365/rec'),
                'voc': ('VOC_DIR', '~/.mxnet/datasets/voc'),
                'ade20k': ('ADE_DIR', '~/.mxnet/datasets/ade'),
                'digits': ('PROXY_DATA', '{runs}/data/rec'),
                'proxy-voc': ('PROXY_VOC', '{runs}/data/voc'),
                'proxy-ade': ('PROXY_ADE', '{runs}/data/ade')}
_RECORDIO = ('imagenet', 'places365', 'digits')


def _default_python():
    venv = os.path.join(REPO, '.venv', 'bin', 'python')
    return venv if os.access(venv, os.X_OK) else 'python'


@dataclass
class Env:
    """The machine's side of a run (defaults: the environment variables of the same name)."""
    scale: str = 'full'
    runs_dir: str = ''
    python: str = ''
    num_gpus: int = -1                 # -1: 8 at full scale, 0 (CPU) at proxy scale
    np: int = 1                        # > 1: horovodrun -np NP, one GPU per rank
    hosts: str = ''                    # horovodrun -H (default localhost:NP)
    hostfile: str = ''
    horovodrun: str = ''
    horovodrun_args: list = field(default_factory=list)
    extra_args: list = field(default_factory=list)            # classification rows
    extra_transfer_args: list = field(default_factory=list)   # Tables 8/9 rows
    folders: dict = field(default_factory=dict)

    @classmethod
    def from_environ(cls, environ=None, **over):
        e = os.environ if environ is None else environ
        scale = over.pop('scale', None) or e.get('SCALE') or 'full'
        runs = over.pop('runs_dir', None) or e.get('RUNS_DIR') or os.path.join(REPO, 'runs',
                                                                                scale)
        python = e.get('PYTHON') or _default_python()
        horovodrun = e.get('HOROVODRUN') or (
            os.path.join(os.path.dirname(python), 'horovodrun')
            if os.access(os.path.join(os.path.dirname(python), 'horovodrun'), os.X_OK)
            else 'horovodrun')
        folders = {k: os.path.expanduser(e.get(var) or default.format(runs=runs))
                   for k, (var, default) in DATA_FOLDERS.items()}
        env = cls(scale=scale, runs_dir=runs, python=python,
                  num_gpus=int(e.get('NUM_GPUS') or -1), np=int(e.get('NP') or 1),
                  hosts=e.get('HOSTS', ''), hostfile=e.get('HOSTFILE', ''),
                  horovodrun=horovodrun, horovodrun_args=shlex.split(e.get('HOROVODRUN_ARGS',
                                                                           '')),
                  extra_args=shlex.split(e.get('EXTRA_ARGS', '')),
                  extra_transfer_args=shlex.split(e.get('EXTRA_TRANSFER_ARGS', '')),
                  folders=folders)
        for k, v in over.items():
            setattr(env, k, v)
        return env

    @property
    def gpus(self):
        """GPUs of the one training process (NP <= 1)."""
        if self.num_gpus >= 0:
            return self.num_gpus
        return 0 if self.scale == 'proxy' else 8

    @property
    def devices(self):
        """Devices a global batch is split over: NP ranks, else the process's GPUs, else 1."""
        if self.np > 1:
            return self.np
        return self.gpus if self.gpus > 0 else 1

    def run_dir(self, name):
        return os.path.join(self.runs_dir, name)

    def params_of(self, name):
        """The best checkpoint of row ``name`` (a teacher or a backbone)."""
        return os.path.join(self.run_dir(name), 'checkpoint-best', 'net.params')


def flag_name(task, dest):
    """The command-line spelling of flag ``dest`` for ``task``'s training script."""
    if dest == 'num_workers':
        return '-j'
    if dest == 'num_epochs' and task != 'classification':
        return '--epochs'           # GluonCV's spelling in the transfer scripts (= --num-epochs)
    if dest == 'warmup_iters':
        return '--lr-warmup'        # GluonCV's detection spelling (= --warmup-iters)
    return '--' + dest.replace('_', '-')


def _value(v):
    if isinstance(v, (tuple, list)):
        return ','.join(_value(x) for x in v)
    if isinstance(v, float):
        return '%g' % v
    return str(v)


def training_argv(exp, env):
    """The training script's arguments for ``exp`` (without launcher and ``--num-gpus``)."""
    if exp.global_batch % env.devices:
        raise ValueError('row %s: global batch %d is not divisible by %d devices'
                         % (exp.name, exp.global_batch, env.devices))
    first = 'model' if exp.task == 'classification' else 'backbone'
    flags = dict(exp.flags)
    argv = [flag_name(exp.task, first), flags.pop(first)]
    if exp.backbone_row:
        argv += ['--backbone-params', env.params_of(exp.backbone_row)]
    argv += ['--batch-size', str(exp.global_batch // env.devices)]
    for dest, v in flags.items():
        if v is None or v is False:
            continue
        argv.append(flag_name(exp.task, dest))
        if v is not True:
            argv.append(_value(v))
        if dest == 'teacher':
            argv += ['--teacher-params', env.params_of(exp.teacher_row)]
    if exp.data in _RECORDIO:
        argv.append('--use-rec')
    argv += ['--data-dir', env.folders[exp.data]]
    argv += env.extra_args if exp.task == 'classification' else env.extra_transfer_args
    return argv + ['--save-dir', env.run_dir(exp.name)]


def command(exp, env, resume=False):
    """The whole command line of ``exp``: through ``horovodrun -np NP`` when NP > 1."""
    script = os.path.join(REPO, SCRIPTS[exp.task])
    argv = training_argv(exp, env)
    if env.np > 1:
        cmd = [env.horovodrun, '-np', str(env.np)]
        cmd += ['-hostfile', env.hostfile] if env.hostfile else \
            ['-H', env.hosts or 'localhost:%d' % env.np]
        cmd += env.horovodrun_args
        cmd += [env.python, script, '--horovod', '--num-gpus', '1' if env.gpus > 0 else '0']
    else:
        cmd = [env.python, script, '--num-gpus', str(env.gpus)]
    return cmd + argv + (['--resume'] if resume else [])


def quote(argv):
    return ' '.join(shlex.quote(a) for a in argv)


# ---- the run directory ----------------------------------------------------------------------

def last_epoch(run_dir):
    """The last epoch of ``run_dir/metrics.jsonl`` (0 when none)."""
    path = os.path.join(run_dir, 'metrics.jsonl')
    last = 0
    if os.path.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        last = int(json.loads(line).get('epoch', last))
                    except (ValueError, AttributeError):
                        pass
    return last


def status(exp, run_dir):
    """``'finished'`` (every epoch in metrics.jsonl, and results.json for Tables 8/9),
    ``'resume'`` (a checkpoint to continue from), ``'restart'`` (metrics without a checkpoint:
    trained again) or ``''`` (not started)."""
    last = last_epoch(run_dir)
    done = last >= exp.num_epochs and (
        exp.task == 'classification' or os.path.isfile(os.path.join(run_dir, 'results.json')))
    if done:
        return 'finished'
    if glob.glob(os.path.join(run_dir, 'checkpoint-epoch*')):
        return 'resume'
    return 'restart' if last else ''


# ---- data of the proxy ----------------------------------------------------------------------

def data_steps(data, env, settings):
    """Commands that make proxy data set ``data`` in its folder, or [] when it exists (or is
    not a proxy data set); ``settings``: the :class:`~tools.experiments.scale.ProxySettings`
    (its workers, and the images of the VOC / ADE20K look-alikes)."""
    out = env.folders[data]
    if data == 'digits':
        if all(os.path.isfile(os.path.join(out, f)) for f in ('train.rec', 'val.rec')):
            return []
        images = out.rstrip(os.sep) + '-images'
        # 40x40 images for 32-pixel crops (the demo's sizes)
        return [[env.python, '-c', "from gluon_tricks.data import make_digits_dataset as m; "
                 "m(%r, image_size=40, overwrite=True)" % images],
                [env.python, os.path.join(REPO, 'scripts/classification/prepare_imagenet.py'),
                 '--data-dir', images, '--out-dir', out, '--resize', '0', '--encoding', '.png',
                 '--quality', '3', '-j', str(settings.workers)]]
    if data in ('proxy-voc', 'proxy-ade'):
        marker = ('VOC2007/ImageSets/Main/test.txt' if data == 'proxy-voc'
                  else 'ADEChallengeData2016/annotations/validation')
        if os.path.exists(os.path.join(out, marker)):
            return []
        maker = os.path.join(REPO, 'scripts/classification/tables/make_proxy_transfer_data.py')
        train, test = (settings.detection if data == 'proxy-voc' else settings.segmentation).images
        return [[env.python, maker, '--' + data.split('-')[1], out,
                 '--train', str(train), '--test', str(test)]]
    return []
