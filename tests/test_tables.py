"""The paper's rows (tools/experiments), the table scripts that run them and the report.

* every row is the configuration the paper describes: asserted on the
  :class:`~tools.experiments.rows.Experiment` objects against an independent description;
* every row's flags parse with its training script's parser, at full and at proxy scale;
* ``DRY_RUN=1`` of every table script prints exactly its table's rows (``# row NAME (TABLE)``
  then the command), each command being the one built from the row's configuration;
* the proxy substitutions, as a function of a configuration;
* rows that finished are skipped, unfinished ones resume, ``ROWS`` selects rows;
* a reduced proxy run of Tables 4 and 6 goes end to end through the real training script,
  the skip logic, the teacher hand-over and the report.
"""
import importlib.util
import json
import os
import shlex
import stat
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tools.experiments import EXPERIMENTS, FIGURES, TABLES, rows as R  # noqa: E402
from tools.experiments import commands as C  # noqa: E402
from tools.experiments.run import plan  # noqa: E402
from tools.experiments.scale import PROXY, PROXY_LEGACY, proxy, settings  # noqa: E402
from tools.report.runs import flatten  # noqa: E402
from helpers.files import is_png  # noqa: E402

TABLES_DIR = os.path.join(REPO, 'scripts', 'classification', 'tables')
SCRIPTS = {name: os.path.join(TABLES_DIR, name + '.sh') for name in
           ('table2', 'table3', 'table4', 'table5', 'table6', 'table7', 'figure3', 'figure4',
            'all')}
SCRIPTS['table8'] = os.path.join(REPO, 'scripts', 'detection', 'table8.sh')
SCRIPTS['table9'] = os.path.join(REPO, 'scripts', 'segmentation', 'table9.sh')

# ---- the paper's rows, written independently of tools/experiments -----------------------------
BASE = dict(gb=256, dtype='float32', mode='step', warmup=None, zg=False, nwd=False, ls=False,
            mixup=False, teacher=None, epochs=120, size=None, data='imagenet')
EFF = dict(BASE, gb=1024, dtype='float16', warmup=5, zg=True, nwd=True)


def cfg(base, **kw):
    out = dict(base)
    out.update(kw)
    return out


def refinements(model, size=None):
    """Table 6's rows for one network (zero gamma only where there are residual blocks)."""
    eff = cfg(EFF, model=model, size=size, zg=model.startswith('resnet'))
    cos = cfg(eff, mode='cosine')
    ls = cfg(cos, ls=True)
    mix = cfg(ls, mixup=True, epochs=200)
    return {'efficient': eff, 'cosine': cos, 'smooth': ls,
            'distill': cfg(ls, teacher='teacher-r152d-cos-ls'), 'mixup': mix,
            'distill-mixup': cfg(mix, teacher='teacher-r152d-cos-ls-mixup')}


EXPECTED = {
    'r50-baseline': cfg(BASE, model='resnet50_v1'),
    'inception-baseline': cfg(BASE, model='inceptionv3', size=299),
    'mobilenet-baseline': cfg(BASE, model='mobilenet1.0'),
    'r50-efficient': cfg(EFF, model='resnet50_v1'),
    'r50-bs256-warmup': cfg(BASE, model='resnet50_v1', warmup=5),
    'r50-bs256-zerogamma': cfg(BASE, model='resnet50_v1', warmup=5, zg=True),
    'r50-bs256-nobiasdecay': cfg(BASE, model='resnet50_v1', warmup=5, zg=True, nwd=True),
    'r50-bs256-fp16': cfg(BASE, model='resnet50_v1', warmup=5, zg=True, nwd=True,
                          dtype='float16'),
    'r50-bs1024-linear': cfg(BASE, model='resnet50_v1', gb=1024),
    'r50-bs1024-warmup': cfg(BASE, model='resnet50_v1', gb=1024, warmup=5),
    'r50-bs1024-zerogamma': cfg(BASE, model='resnet50_v1', gb=1024, warmup=5, zg=True),
    'r50-bs1024-nobiasdecay': cfg(BASE, model='resnet50_v1', gb=1024, warmup=5, zg=True,
                                  nwd=True),
    'r50b-efficient': cfg(EFF, model='resnet50_v1b'),
    'r50c-efficient': cfg(EFF, model='resnet50_v1c'),
    'teacher-r152d-cos-ls': cfg(EFF, model='resnet152_v1d', mode='cosine', ls=True),
    'teacher-r152d-cos-ls-mixup': cfg(EFF, model='resnet152_v1d', mode='cosine', ls=True,
                                      mixup=True, epochs=200),
    'places365-r50d-efficient': cfg(EFF, model='resnet50_v1d', data='places365'),
    'places365-r50d-best': cfg(EFF, model='resnet50_v1d', data='places365', mode='cosine',
                               ls=True, mixup=True, epochs=200),
    'r50b-baseline': cfg(BASE, model='resnet50_v1b'),
}
for _prefix, _model, _size in (('r50d', 'resnet50_v1d', None), ('inception', 'inceptionv3', 299),
                               ('mobilenet', 'mobilenet1.0', None)):
    for _k, _v in refinements(_model, _size).items():
        EXPECTED['%s-%s' % (_prefix, _k)] = _v
BACKBONES = ['r50b-baseline'] + ['r50d-%s' % k for k in ('efficient', 'cosine', 'smooth',
                                                         'distill', 'mixup', 'distill-mixup')]
T6 = ['%s-%s' % (p, k) for p in ('r50d', 'inception', 'mobilenet')
      for k in ('efficient', 'cosine', 'smooth', 'distill', 'mixup', 'distill-mixup')]
TABLE_ROWS = {
    'table2': ['r50-baseline', 'inception-baseline', 'mobilenet-baseline'],
    'table3': ['r50-efficient', 'r50-baseline', 'inception-efficient', 'inception-baseline',
               'mobilenet-efficient', 'mobilenet-baseline'],
    'table4': ['r50-baseline', 'r50-bs256-warmup', 'r50-bs256-zerogamma', 'r50-bs256-nobiasdecay',
               'r50-bs256-fp16', 'r50-bs1024-linear', 'r50-bs1024-warmup',
               'r50-bs1024-zerogamma', 'r50-bs1024-nobiasdecay', 'r50-efficient'],
    'table5': ['r50-efficient', 'r50b-efficient', 'r50c-efficient', 'r50d-efficient'],
    'table6': T6 + ['teacher-r152d-cos-ls', 'teacher-r152d-cos-ls-mixup'],
    'table7': ['places365-r50d-efficient', 'places365-r50d-best'],
    'table8': ['det-' + b for b in BACKBONES],
    'table9': ['seg-' + b for b in BACKBONES],
    'figure3': ['r50d-efficient', 'r50d-cosine'],
    'figure4': ['r50d-cosine', 'r50d-smooth'],
}


def describe(exp):
    """A classification Experiment in the terms of :data:`EXPECTED`."""
    f = exp.flags
    return dict(gb=exp.global_batch, dtype=f['dtype'], mode=f['lr_mode'],
                warmup=f.get('warmup_epochs'), zg=bool(f.get('last_gamma')),
                nwd=bool(f.get('no_wd')), ls=bool(f.get('label_smoothing')),
                mixup=bool(f.get('mixup')), teacher=exp.teacher_row, epochs=f['num_epochs'],
                size=f.get('input_size'), data=exp.data, model=f['model'])


# ---- the configurations -----------------------------------------------------------------------

def test_every_row_is_the_papers_configuration():
    cls = {n: e for n, e in EXPERIMENTS.items() if e.task == 'classification'}
    assert set(cls) == set(EXPECTED)
    for name, exp in cls.items():
        assert describe(exp) == EXPECTED[name], name
        f = exp.flags
        assert f.get('lr_decay_epoch') == ((30, 60, 90) if f['lr_mode'] == 'step' else None)
        assert f.get('smoothing_eps') == (0.1 if f.get('label_smoothing') else None), name
        assert f.get('mixup_alpha') == (0.2 if f.get('mixup') else None), name
        if exp.teacher_row:
            assert f['teacher'] == 'resnet152_v1d' and f['temperature'] == 20, name
            assert EXPERIMENTS[exp.teacher_row].model == 'resnet152_v1d'
        else:
            assert not {'teacher', 'temperature'} & set(f), name


def test_table6_mixup_row_is_built_from_the_efficient_setting_plus_deltas():
    mix = EXPERIMENTS['r50d-mixup']
    assert mix == R.row('r50d-mixup', R.EFFICIENT, R.COSINE, R.SMOOTH, R.MIXUP,
                        model='resnet50_v1d')
    assert mix.flags == dict(model='resnet50_v1d', dtype='float16', lr_mode='cosine',
                             lr_decay_epoch=None, num_epochs=200, warmup_epochs=5,
                             last_gamma=True, no_wd=True, label_smoothing=True,
                             smoothing_eps=0.1, mixup=True, mixup_alpha=0.2)
    assert (mix.global_batch, mix.data, mix.teacher_row) == (1024, 'imagenet', None)
    assert R.MIXUP == dict(mixup=True, mixup_alpha=0.2, num_epochs=200)
    dm = EXPERIMENTS['r50d-distill-mixup']
    assert dm.flags == dict(mix.flags, teacher='resnet152_v1d', temperature=20)
    assert dm.teacher_row == 'teacher-r152d-cos-ls-mixup'


def test_tables_show_the_papers_rows_and_share_runs():
    for name, want in TABLE_ROWS.items():
        item = TABLES.get(name) or FIGURES[name]
        assert [e.name for e in item.experiments] == want, name
        for e in item.experiments:
            assert EXPERIMENTS[e.name] is e, 'row %s defined twice' % e.name
    # Tables 8/9 start from the Table 6 backbones (and B-standard)
    for name in ('table8', 'table9'):
        assert [e.backbone_row for e in TABLES[name].experiments] == BACKBONES
        for e in TABLES[name].experiments:
            assert e.flags['backbone'] == EXPERIMENTS[e.backbone_row].model
    det, seg = EXPERIMENTS['det-r50d-efficient'], EXPERIMENTS['seg-r50d-efficient']
    assert (det.global_batch, det.flags['num_epochs'], det.flags['lr_decay_epoch'],
            det.flags['warmup_iters'], det.flags['short'], det.flags['max_size'],
            det.flags['train_splits'], det.flags['val_splits']) == (
        8, 20, (14, 20), 500, 600, 1000, '2007_trainval,2012_trainval', '2007_test')
    assert (seg.global_batch, seg.flags['num_epochs'], seg.flags['base_size'],
            seg.flags['crop_size']) == (16, 120, 520, 480)
    # every run a table reads is a row, and every row is in a table or needed by one
    shown = {e.name for t in list(TABLES.values()) + list(FIGURES.values())
             for e in t.experiments}
    assert shown | {n for e in EXPERIMENTS.values() for n in e.needs} == set(EXPERIMENTS)
    assert TABLES['table6'].rows[4].paper == {'top1': 79.15, 'top5': 94.58}


def _load(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('task', ['classification', 'detection', 'segmentation'])
def test_every_row_parses_with_its_training_script(task, tmp_path):
    parse_args = _load(os.path.join(REPO, C.SCRIPTS[task])).parse_args
    runs = str(tmp_path)
    for name in EXPERIMENTS:            # the teachers' and backbones' checkpoints
        os.makedirs(os.path.join(runs, name, 'checkpoint-best'))
        open(os.path.join(runs, name, 'checkpoint-best', 'net.params'), 'w').close()
    for scale in ('full', 'proxy'):
        env = C.Env.from_environ({}, scale=scale, runs_dir=runs)
        for exp in EXPERIMENTS.values():
            if exp.task != task:
                continue
            exp = proxy(exp) if scale == 'proxy' else exp
            argv = C.training_argv(exp, env) + ['--num-gpus', str(env.gpus)]
            assert '--lr' not in argv, 'the trainer derives the lr (linear scaling)'
            parsed = parse_args(argv)     # a TrainConfig (to_dict); a Namespace: vars()
            fields = flatten(parsed.to_dict()) if hasattr(parsed, 'to_dict') else vars(parsed)
            assert fields['batch_size'] * env.devices == exp.global_batch, exp.name
            assert fields.get('num_epochs', fields.get('epochs')) == exp.num_epochs, exp.name
            for dest, value in exp.flags.items():
                if isinstance(value, (int, float, str)) and not isinstance(value, bool) and \
                        isinstance(fields.get(dest), (int, float, str)):
                    assert fields[dest] == value, (exp.name, dest)


# ---- proxy scale --------------------------------------------------------------------------------

def test_proxy_substitutions():
    f = proxy(EXPERIMENTS['r50d-distill-mixup'])
    assert f.model == 'resnet18_v1d' and f.flags['teacher'] == 'resnet34_v1d'
    assert f.global_batch == 1024 // 16 and f.flags['dtype'] == 'float32'
    assert f.flags['num_epochs'] == 3  # 200 x 2 / 120
    assert f.flags['warmup_epochs'] == pytest.approx(5 * 2 / 120., abs=1e-6)
    assert 'base_lr' not in f.flags   # the paper's 0.1 per 256 images
    assert (f.flags['mixup_alpha'], f.flags['smoothing_eps'], f.flags['temperature']) == \
        (0.2, 0.1, 20)
    assert f.flags['input_size'] == 32 and f.data == 'digits'
    assert f.flags['no_mirror'] is True and f.flags['random_area_min'] == 0.5
    assert f.teacher_row == 'teacher-r152d-cos-ls-mixup'
    assert proxy(EXPERIMENTS['teacher-r152d-cos-ls']).model == 'resnet34_v1d'
    inc = proxy(EXPERIMENTS['inception-efficient'])
    assert inc.model == 'inceptionv3' and inc.flags['input_size'] == 75
    # Inception-V3: batch / 32 and 4 epochs at the paper's base lr
    assert inc.global_batch == 32 and inc.flags['num_epochs'] == 4
    assert inc.flags['lr_decay_epoch'] == (1, 2, 3) and 'base_lr' not in inc.flags
    assert inc.flags['warmup_epochs'] == pytest.approx(5 * 4 / 120., abs=1e-6)
    assert 'last_gamma' not in inc.flags or not inc.flags['last_gamma']
    # its ResNet-34-D teacher learnt at 32 px (at 75 px it is at chance)
    inc_kd = proxy(EXPERIMENTS['inception-distill'])
    assert (inc_kd.flags['teacher'], inc_kd.flags['teacher_input_size']) == ('resnet34_v1d', 32)
    assert 'teacher_input_size' not in f.flags    # ResNet-18-D student, same size
    mob = proxy(EXPERIMENTS['mobilenet-baseline'])
    assert (mob.global_batch, mob.flags['num_epochs']) == (16, 3)
    assert proxy(EXPERIMENTS['r50-baseline']).global_batch == 16
    assert proxy(EXPERIMENTS['places365-r50d-best']).data == 'digits'
    # the first report's proxy: 2 epochs, batch / 8 for every network
    old = proxy(EXPERIMENTS['r50d-distill-mixup'], PROXY_LEGACY)
    assert (old.global_batch, old.flags['num_epochs'], old.flags['warmup_epochs']) == \
        (128, 3, pytest.approx(5 * 2 / 120., abs=1e-6))
    # Tables 8/9: the backbone mapped, a few epochs (step epochs scaled alike: 14,20 of 20),
    # small images, one evaluation at the end
    det = proxy(EXPERIMENTS['det-r50b-baseline'])
    assert det.flags['backbone'] == 'resnet18_v1b' and det.flags['num_epochs'] == 3
    assert det.flags['lr_decay_epoch'] == (2.1, 3.0) and det.global_batch == 1
    assert (det.flags['base_lr'], det.flags['val_interval']) == (0.004, 3)
    assert (det.flags['short'], det.flags['max_size'], det.flags['train_splits']) == \
        (96, 128, '2007_trainval')
    assert det.data == 'proxy-voc' and det.backbone_row == 'r50b-baseline'
    seg = proxy(EXPERIMENTS['seg-r50d-mixup'])
    assert (seg.flags['backbone'], seg.global_batch, seg.flags['crop_size'],
            seg.flags['base_size']) == ('resnet18_v1d', 2, 64, 96)
    assert (seg.flags['num_epochs'], seg.flags['base_lr'], seg.flags['val_interval']) == \
        (5, 0.08, 5)
    # the first report's transfer runs: one epoch, the script's lr, evaluated every epoch
    old_seg = proxy(EXPERIMENTS['seg-r50d-mixup'], PROXY_LEGACY)
    assert old_seg.flags['num_epochs'] == 1
    assert 'base_lr' not in old_seg.flags and 'val_interval' not in old_seg.flags
    # pure: the full-scale row is unchanged
    assert EXPERIMENTS['r50d-distill-mixup'].model == 'resnet50_v1d'
    # the environment's overrides
    s = settings('default', {'PROXY_EPOCHS': '1', 'PROXY_BATCH_DIV': '8', 'PROXY_SEEDS': ''})
    one = proxy(EXPERIMENTS['r50-baseline'], s)
    assert (one.flags['num_epochs'], one.global_batch, s.seeds) == (1, 32, ())
    t = settings('default', {'PROXY_TRANSFER_EPOCHS': '2', 'PROXY_TRANSFER_TRAIN': '10'})
    assert (t.detection.epochs, t.detection.images) == (2, (10, 24))
    assert (t.segmentation.epochs, t.segmentation.images) == (2, (10, 24))
    assert proxy(EXPERIMENTS['seg-r50d-mixup'], t).flags['val_interval'] == 2


def test_proxy_plan_repeats_table6_resnet_rows_with_seeds():
    names = [e.name for _, e in plan(['table6'], 'proxy', PROXY)]
    for k in ('efficient', 'cosine', 'smooth', 'distill', 'mixup', 'distill-mixup'):
        i = names.index('r50d-' + k)
        assert names[i + 1:i + 3] == ['r50d-%s-seed1' % k, 'r50d-%s-seed2' % k]
    assert not [n for n in names if n.startswith(('inception', 'mobilenet')) and 'seed' in n]
    exp = dict((e.name, e) for _, e in plan(['table6'], 'proxy', PROXY))['r50d-cosine-seed2']
    assert exp.flags['seed'] == 2 and exp.model == 'resnet18_v1d'
    # in "all", Table 5 trains r50d-efficient first; Table 6 still adds its seeds
    names = [e.name for _, e in plan(list(TABLES) + list(FIGURES), 'proxy', PROXY)]
    assert 'r50d-efficient-seed1' in names and len(names) == len(set(names))
    assert not [n for n in names if 'seed' in n and not n.startswith('r50d-')]
    assert [e.name for _, e in plan(['table6'], 'full')] == [
        e.name for _, e in plan(['table6'], 'full')]
    assert not [n for _, e in plan(['table6'], 'full') for n in [e.name] if 'seed' in n]


# ---- DRY_RUN of the table scripts ---------------------------------------------------------------

def run_script(name, env_extra, check=True, timeout=120):
    env = dict(os.environ)
    for k in list(env):
        if k in ('SCALE', 'ROWS', 'NP', 'HOSTS', 'HOSTFILE', 'NUM_GPUS', 'DRY_RUN', 'REPORT',
                 'EXTRA_ARGS', 'DATA_DIR', 'PLACES_DIR', 'VOC_DIR', 'ADE_DIR', 'PYTHON',
                 'RUNS_DIR', 'SKIP_TRANSFER') or k.startswith('PROXY_'):
            env.pop(k)
    env.update({k: str(v) for k, v in env_extra.items()})
    proc = subprocess.run(['bash', SCRIPTS[name]], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s\n%s' % (name, proc.returncode,
                                                           proc.stdout[-3000:],
                                                           proc.stderr[-3000:]))
    return proc


def parse_rows(stdout):
    """``[(row, table, argv)]`` of DRY_RUN output: ``# row NAME (TABLE[, STATUS])`` followed by
    the command; every other line starts with ``#`` or is a data preparation command."""
    out, pending = [], None
    for line in stdout.splitlines():
        if line.startswith('# row '):
            name, rest = line[len('# row '):].split(' (', 1)
            assert rest.endswith(')'), line
            pending = (name, rest[:-1])
        elif pending is not None:
            out.append(pending + (shlex.split(line),))
            pending = None
        else:
            assert line.startswith('#') or 'make_digits_dataset' in line or \
                'prepare_imagenet.py' in line or 'make_proxy_transfer_data.py' in line, line
    assert pending is None
    return out


def full_env(tmp_path, **kw):
    env = {'DRY_RUN': 1, 'RUNS_DIR': str(tmp_path / 'runs'), 'DATA_DIR': '/data/imagenet/rec',
           'PLACES_DIR': '/data/places365/rec', 'VOC_DIR': '/data/voc', 'ADE_DIR': '/data/ade'}
    env.update(kw)
    return env


@pytest.mark.subprocess
@pytest.mark.parametrize('scale', ['full', 'proxy'])
def test_dry_run_prints_each_tables_rows(tmp_path, scale):
    env = full_env(tmp_path, SCALE=scale)
    if scale == 'full':
        env['NUM_GPUS'] = 8
    machine = C.Env.from_environ({k: str(v) for k, v in env.items()})
    settings_ = settings('default', {})
    seen = {}
    for name in list(TABLE_ROWS) + ['all']:
        out = run_script(name, env).stdout
        printed = parse_rows(out)
        targets = [name] if name != 'all' else list(TABLES) + list(FIGURES)
        want = plan(targets, scale, settings_)
        assert [(n, t) for n, t, _ in printed] == [(e.name, t) for t, e in want], name
        table_runs = set(TABLE_ROWS.get(name, EXPERIMENTS))
        assert table_runs <= {n for n, _, _ in printed}, name
        for (row, _, argv), (_, exp) in zip(printed, want):
            # the command is the one of the row's configuration, and the same in every table
            assert argv == C.command(exp, machine), row
            assert seen.setdefault(row, argv) == argv, row
            script = next(a for a in argv if a.endswith('.py'))
            assert script.endswith(C.SCRIPTS[exp.task]), row
        # extra rows are only the rows a row needs (teacher, backbone) and seed copies
        extra = {n for n, _, _ in printed} - table_runs
        needed = {d for _, e in want for d in e.needs}
        assert all(n in needed or '-seed' in n for n in extra), (name, extra)
        assert ('# report %s: ' % name) in out
        assert not os.path.exists(str(tmp_path / 'runs')), 'DRY_RUN must not create anything'
    if scale == 'full':
        argv = seen['r50d-distill']
        assert argv[2:4] == ['--num-gpus', '8']
        flags = argv[argv.index('--teacher'):argv.index('--teacher') + 4]
        assert flags == ['--teacher', 'resnet152_v1d', '--teacher-params', os.path.join(
            str(tmp_path / 'runs'), 'teacher-r152d-cos-ls', 'checkpoint-best', 'net.params')]
        assert argv[argv.index('--data-dir') + 1] == '/data/imagenet/rec'
        argv = seen['places365-r50d-best']
        assert argv[argv.index('--data-dir') + 1] == '/data/places365/rec'
        argv = seen['det-r50d-efficient']
        assert '--epochs' in argv and argv[argv.index('--data-dir') + 1] == '/data/voc'
        assert argv[argv.index('--batch-size') + 1] == '1'
    else:
        out = run_script('table8', env).stdout
        assert '# proxy digits data' in out and '# proxy proxy-voc data' in out


@pytest.mark.subprocess
def test_dry_run_horovod_and_devices(tmp_path):
    env = full_env(tmp_path, NP=16, HOSTS='h1:8,h2:8', HOROVODRUN_ARGS='--gloo')
    for row, _, argv in parse_rows(run_script('table3', env).stdout):
        assert os.path.basename(argv[0]) == 'horovodrun'
        assert argv[1:6] == ['-np', '16', '-H', 'h1:8,h2:8', '--gloo']
        i = argv.index('--horovod')
        assert argv[i:i + 3] == ['--horovod', '--num-gpus', '1']
        assert int(argv[argv.index('--batch-size') + 1]) * 16 == EXPERIMENTS[row].global_batch
    # one process with 4 GPUs keeps the paper's global batch (and so its lr)
    printed = parse_rows(run_script('table5', full_env(tmp_path, NUM_GPUS=4)).stdout)
    argv = dict((n, a) for n, _, a in printed)['r50b-efficient']
    assert argv[argv.index('--batch-size') + 1] == '256'
    # a device count that does not divide the global batch is refused
    proc = run_script('table2', full_env(tmp_path, NUM_GPUS=3), check=False)
    assert proc.returncode == 2 and 'not divisible' in proc.stderr


@pytest.mark.subprocess
def test_rows_filter(tmp_path):
    env = full_env(tmp_path, ROWS='mobilenet-*,teacher-r152d-cos-ls')
    names = [n for n, _, _ in parse_rows(run_script('table6', env).stdout)]
    # the teacher comes where Table 6 first needs it (ResNet-50-D + distill), before MobileNet
    assert names == ['teacher-r152d-cos-ls'] + ['mobilenet-%s' % k for k in (
        'efficient', 'cosine', 'smooth', 'distill', 'mixup', 'distill-mixup')]


# ---- skipping finished rows -------------------------------------------------------------------

FAKE_PYTHON = r'''#!/usr/bin/env bash
# records its arguments and writes a finished metrics.jsonl like the training scripts would
echo "$*" >> "${CALLS}"
save=""; epochs=""
while [[ $# -gt 0 ]]; do
  case "$1" in --save-dir) save="$2"; shift ;; --num-epochs|--epochs) epochs="$2"; shift ;; esac
  shift
done
[[ -n "${save}" && -n "${epochs}" ]] || exit 0
mkdir -p "${save}"
for ((e = 1; e <= epochs; e++)); do
  printf '{"epoch": %d, "top1": 0.5, "top5": 0.9, "samples_per_sec": 100.0, "epoch_time": 10.0}\n' \
    "${e}" >> "${save}/metrics.jsonl"
done
'''


def _fake_python(tmp_path):
    path = tmp_path / 'fake-python'
    path.write_text(FAKE_PYTHON)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _calls(path):
    return open(path).read().splitlines() if os.path.exists(path) else []


@pytest.mark.subprocess
def test_skip_finished_rows_and_resume(tmp_path):
    calls = str(tmp_path / 'calls.txt')
    env = full_env(tmp_path, DRY_RUN=0, REPORT=0, PYTHON=_fake_python(tmp_path), CALLS=calls)
    runs = tmp_path / 'runs'
    run_script('table2', env)
    assert len(_calls(calls)) == 3
    for name in TABLE_ROWS['table2']:
        assert (runs / name / 'command.sh').read_text().split()[1].endswith('train_imagenet.py')
    # again: everything finished, nothing runs
    proc = run_script('table2', env)
    assert len(_calls(calls)) == 3 and proc.stderr.count('skipped') == 3
    # Table 3 reuses Table 2's rows: only its three efficient rows run
    run_script('table3', env)
    assert len(_calls(calls)) == 6
    assert all('efficient' in c for c in _calls(calls)[3:])
    # an unfinished row with a checkpoint resumes; one without starts again
    m = runs / 'r50-baseline' / 'metrics.jsonl'
    m.write_text('\n'.join(m.read_text().splitlines()[:7]) + '\n')
    (runs / 'r50-baseline' / 'checkpoint-epoch0007').mkdir()
    m2 = runs / 'mobilenet-baseline' / 'metrics.jsonl'
    m2.write_text(m2.read_text().splitlines()[0] + '\n')
    out = run_script('table2', full_env(tmp_path)).stdout
    assert [line for line in out.splitlines() if line.startswith('# row ')] == [
        '# row r50-baseline (table2, resume)', '# row inception-baseline (table2, finished)',
        '# row mobilenet-baseline (table2, restart)']
    run_script('table2', env)
    new = _calls(calls)[6:]
    assert len(new) == 2
    assert 'r50-baseline' in new[0] and new[0].endswith('--resume')
    assert 'mobilenet-baseline' in new[1] and '--resume' not in new[1]
    assert [p for p in os.listdir(str(runs / 'mobilenet-baseline'))
            if p.startswith('metrics.jsonl.stale-')]
    # a Table 8 row is finished only with its results.json
    det = EXPERIMENTS['det-r50b-baseline']
    d = runs / det.name
    d.mkdir()
    (d / 'metrics.jsonl').write_text(''.join('{"epoch": %d}\n' % e for e in range(1, 21)))
    assert C.status(det, str(d)) == 'restart'
    (d / 'results.json').write_text('{"map": 0.5}')
    assert C.status(det, str(d)) == 'finished'


# ---- reduced proxy, end to end ----------------------------------------------------------------

def _tiny_digits(tmp_path, train_per_class=16, val_per_class=13):
    from gluon_tricks.data import make_digits_dataset
    folders = str(tmp_path / 'digits')
    info = make_digits_dataset(folders, image_size=40)
    for split, keep in (('train', train_per_class), ('val', val_per_class)):
        for c in info.classes:
            d = os.path.join(folders, split, c)
            for name in sorted(os.listdir(d))[keep:]:
                os.remove(os.path.join(d, name))
    rec = str(tmp_path / 'rec')
    subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'classification',
                                                 'prepare_imagenet.py'),
                    '--data-dir', folders, '--out-dir', rec, '--resize', '0', '--encoding', '.png',
                    '--quality', '3', '-j', '2'], check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, timeout=120)
    return rec


@pytest.mark.subprocess
def test_proxy_tables_4_and_6_end_to_end(tmp_path):
    tic = time.time()
    rec = _tiny_digits(tmp_path)
    runs = tmp_path / 'runs'
    report = tmp_path / 'report'
    env = {'SCALE': 'proxy', 'PROXY_EPOCHS': 1, 'PROXY_BATCH_DIV': 8, 'PROXY_SEEDS': '',
           'PROXY_DATA': rec, 'RUNS_DIR': str(runs), 'REPORT_DIR': str(report),
           'PROXY_WORKERS': 1, 'PYTHON': sys.executable}
    # Table 4: its first row (the batch-256 baseline, batch 32 at this scale)
    run_script('table4', dict(env, ROWS='r50-baseline'), timeout=300)
    # Table 6: the teacher first, then a student distilled from its checkpoint
    run_script('table6', dict(env, ROWS='teacher-r152d-cos-ls,r50d-distill'), timeout=300)
    for name, model in (('r50-baseline', 'resnet18_v1'), ('teacher-r152d-cos-ls', 'resnet34_v1d'),
                        ('r50d-distill', 'resnet18_v1d')):
        metrics = [json.loads(l) for l in (runs / name / 'metrics.jsonl').read_text().splitlines()]
        assert [m['epoch'] for m in metrics] == [1], name
        assert 0.0 <= metrics[0]['top1'] <= 1.0 and metrics[0]['val_samples'] == 130
        assert (runs / name / 'checkpoint-best' / 'net.params').exists(), name
        assert '--model %s ' % model in (runs / name / 'command.sh').read_text()
    log = (runs / 'r50d-distill' / 'train.log').read_text()
    assert 'teacher-r152d-cos-ls/checkpoint-best/net.params' in log
    # the reports the table scripts wrote
    t4 = (report / 'table4.md').read_text()
    assert 'Proxy scale' in t4 and '| 75.87 |' in t4
    done = [l for l in t4.splitlines() if '| finished |' in l]
    assert len(done) == 1 and done[0].startswith('| BS=256: Linear scaling | `r50-baseline` '
                                                 '(resnet18_v1, 32 px, batch 32, float32, 1 ep)')
    assert len([l for l in t4.splitlines() if '| not run | not run |' in l]) == 9
    t6 = (report / 'table6.md').read_text()
    assert '`r50d-distill` (resnet18_v1d, 32 px, batch 128, float32, 1 ep) | finished' in t6
    assert (report / 'README.md').exists() and (report / 'commands.md').exists()
    # a re-run skips both finished rows
    proc = run_script('table6', dict(env, ROWS='teacher-r152d-cos-ls,r50d-distill', REPORT=0))
    assert proc.stderr.count('skipped') == 2
    # Figure 4b's machinery on two of these checkpoints: their validation sets, all 130 images
    from tools.report import figures
    stats = figures.plot_figure4b(str(tmp_path / 'fig4b.png'), str(runs),
                                  runs=(('without', 'r50-baseline'),
                                        ('with', 'teacher-r152d-cos-ls')), data_dir=rec)
    assert is_png(str(tmp_path / 'fig4b.png'))
    assert [s['images'] for s in stats.values()] == [130, 130]
    assert all(s['mean'] > 0 and s['classes'] == 10 for s in stats.values())
    assert stats['r50-baseline']['theoretical_gap'] == pytest.approx(4.394449, abs=1e-5)
    assert time.time() - tic < 240


def test_proxy_fits_about_an_hour_on_two_cores():
    from tools.experiments.estimate import row_seconds
    items = plan(list(TABLES) + list(FIGURES), 'proxy', PROXY)
    assert 40 < sum(row_seconds(e) for _, e in items) / 60 < 65
    # the first proxy: fewer epochs, one transfer epoch on 12 images
    legacy = plan(list(TABLES) + list(FIGURES), 'proxy', PROXY_LEGACY)
    assert sum(row_seconds(e, PROXY_LEGACY) for _, e in legacy) / 60 < 30
    # Inception-V3 distilled from a ResNet-34-D at 32 px costs less than at 75 px
    inc = dict((e.name, e) for _, e in items)['inception-distill']
    assert row_seconds(inc) < row_seconds(inc.set(teacher_input_size=75))
