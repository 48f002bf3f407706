"""The table/figure scripts (scripts/classification/tables) and the report (scripts/report.py).

* ``DRY_RUN=1`` of every script prints exactly the paper's configurations: each printed
  command is parsed and its flags checked against an independent description of the paper's
  rows (model, global batch, lr, dtype, schedule, epochs, tricks, teacher, data set);
* rows that finished are skipped, unfinished ones resume, ``ROWS`` selects rows;
* the report turns fabricated run directories into Markdown with the paper's column and PNGs;
* a reduced proxy run of Tables 4 and 6 (tiny digits data, 1 epoch) goes end to end through
  the real training script, the skip logic, the teacher hand-over and the report.
"""
import json
import os
import shlex
import stat
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLES = os.path.join(REPO, 'scripts', 'classification', 'tables')
REPORT = os.path.join(REPO, 'scripts', 'report.py')
SCRIPTS = ['table2', 'table3', 'table4', 'table5', 'table6', 'table7', 'figure3', 'figure4']
TRANSFER = {'table8': os.path.join(REPO, 'scripts', 'detection', 'table8.sh'),
            'table9': os.path.join(REPO, 'scripts', 'segmentation', 'table9.sh')}

# ---- the paper's rows, written independently of the scripts ----------------------------------
BASE = dict(gb=256, dtype='float32', mode='step', warmup=None, zg=False, nwd=False, ls=False,
            mixup=False, teacher=None, epochs=120, size=None, data='imagenet')
EFF = dict(BASE, gb=1024, dtype='float16', warmup='5', zg=True, nwd=True)


def cfg(base, **kw):
    out = dict(base)
    out.update(kw)
    return out


def refinements(model, size=None):
    """Table 6's rows for one network."""
    cos = cfg(EFF, model=model, size=size, mode='cosine')
    ls = cfg(cos, ls=True)
    mix = cfg(ls, mixup=True, epochs=200)
    return {'efficient': cfg(EFF, model=model, size=size), 'cosine': cos, 'smooth': ls,
            'distill': cfg(ls, teacher='teacher-r152d-cos-ls'), 'mixup': mix,
            'distill-mixup': cfg(mix, teacher='teacher-r152d-cos-ls-mixup')}


EXPECTED = {
    'r50-baseline': cfg(BASE, model='resnet50_v1'),
    'inception-baseline': cfg(BASE, model='inceptionv3', size='299'),
    'mobilenet-baseline': cfg(BASE, model='mobilenet1.0'),
    'r50-efficient': cfg(EFF, model='resnet50_v1'),
    'inception-efficient': cfg(EFF, model='inceptionv3', size='299'),
    'mobilenet-efficient': cfg(EFF, model='mobilenet1.0'),
    'r50-bs256-warmup': cfg(BASE, model='resnet50_v1', warmup='5'),
    'r50-bs256-zerogamma': cfg(BASE, model='resnet50_v1', warmup='5', zg=True),
    'r50-bs256-nobiasdecay': cfg(BASE, model='resnet50_v1', warmup='5', zg=True, nwd=True),
    'r50-bs256-fp16': cfg(BASE, model='resnet50_v1', warmup='5', zg=True, nwd=True,
                          dtype='float16'),
    'r50-bs1024-linear': cfg(BASE, model='resnet50_v1', gb=1024),
    'r50-bs1024-warmup': cfg(BASE, model='resnet50_v1', gb=1024, warmup='5'),
    'r50-bs1024-zerogamma': cfg(BASE, model='resnet50_v1', gb=1024, warmup='5', zg=True),
    'r50-bs1024-nobiasdecay': cfg(BASE, model='resnet50_v1', gb=1024, warmup='5', zg=True,
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
for _prefix, _model, _size in (('r50d', 'resnet50_v1d', None), ('inception', 'inceptionv3', '299'),
                               ('mobilenet', 'mobilenet1.0', None)):
    for _k, _v in refinements(_model, _size).items():
        EXPECTED['%s-%s' % (_prefix, _k)] = _v

T6 = ['teacher-r152d-cos-ls', 'teacher-r152d-cos-ls-mixup'] + [
    '%s-%s' % (p, k) for p in ('r50d', 'inception', 'mobilenet')
    for k in ('efficient', 'cosine', 'smooth', 'distill', 'mixup', 'distill-mixup')]
SCRIPT_ROWS = {
    'table2': ['r50-baseline', 'inception-baseline', 'mobilenet-baseline'],
    'table3': ['r50-efficient', 'inception-efficient', 'mobilenet-efficient', 'r50-baseline',
               'inception-baseline', 'mobilenet-baseline'],
    'table4': ['r50-baseline', 'r50-bs256-warmup', 'r50-bs256-zerogamma', 'r50-bs256-nobiasdecay',
               'r50-bs256-fp16', 'r50-bs1024-linear', 'r50-bs1024-warmup',
               'r50-bs1024-zerogamma', 'r50-bs1024-nobiasdecay', 'r50-efficient'],
    'table5': ['r50-efficient', 'r50b-efficient', 'r50c-efficient', 'r50d-efficient'],
    'table6': T6,
    'table7': ['places365-r50d-efficient', 'places365-r50d-best'],
    'figure3': ['r50d-efficient', 'r50d-cosine'],
    'figure4': ['r50d-cosine', 'r50d-smooth'],
}
BOOL_FLAGS = {'--last-gamma', '--no-wd', '--label-smoothing', '--mixup', '--use-rec', '--horovod',
              '--no-mirror', '--resume'}
ALLOWED = BOOL_FLAGS | {'--model', '--batch-size', '--lr', '--dtype', '--lr-mode',
                        '--lr-decay-epoch', '--warmup-epochs', '--num-epochs', '--smoothing-eps',
                        '--mixup-alpha', '--teacher', '--teacher-params', '--temperature',
                        '--input-size', '--data-dir', '--save-dir', '--num-gpus'}


# ---- helpers --------------------------------------------------------------------------------

def run_script(script, env_extra, check=True, timeout=120):
    env = dict(os.environ)
    for k in ('SCALE', 'ROWS', 'NP', 'HOSTS', 'HOSTFILE', 'NUM_GPUS', 'DRY_RUN', 'REPORT',
              'EXTRA_ARGS', 'PROXY_EPOCHS', 'PROXY_DATA', 'DATA_DIR', 'PLACES_DIR'):
        env.pop(k, None)
    env.update({k: str(v) for k, v in env_extra.items()})
    path = script if os.path.isabs(script) else os.path.join(TABLES, script + '.sh')
    proc = subprocess.run(['bash', path], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d):\n%s\n%s' % (path, proc.returncode,
                                                           proc.stdout[-3000:],
                                                           proc.stderr[-3000:]))
    return proc


def parse_rows(stdout):
    """``{row: argv}`` from DRY_RUN output (a ``# row NAME (...)`` line, then the command)."""
    rows, pending = {}, None
    order = []
    for line in stdout.splitlines():
        if line.startswith('# row '):
            pending = line[len('# row '):].split(' ', 1)[0]
        elif pending is not None and line.strip():
            rows[pending] = shlex.split(line)
            order.append(pending)
            pending = None
    return rows, order


def flags_of(argv, script_name='train_imagenet.py'):
    """Flags after the training script in ``argv``: ``{flag: value or True}``."""
    start = next(i for i, a in enumerate(argv) if a.endswith(script_name)) + 1
    flags, i = {}, start
    rest = argv[start:]
    i = 0
    while i < len(rest):
        a = rest[i]
        assert a.startswith('-'), 'stray argument %r in %s' % (a, argv)
        if a in BOOL_FLAGS or i + 1 >= len(rest) or rest[i + 1].startswith('--'):
            assert a not in flags, 'flag %s twice' % a
            flags[a] = True
            i += 1
        else:
            assert a not in flags, 'flag %s twice' % a
            flags[a] = rest[i + 1]
            i += 2
    return flags


def check_row(name, flags, exp, devices, runs_dir, data_dirs):
    assert set(flags) <= ALLOWED, '%s: unexpected flags %s' % (name, set(flags) - ALLOWED)
    assert flags['--model'] == exp['model'], name
    assert int(flags['--batch-size']) * devices == exp['gb'], name
    assert float(flags['--lr']) == pytest.approx(0.1 * exp['gb'] / 256), name
    assert flags['--dtype'] == exp['dtype'], name
    assert flags['--lr-mode'] == exp['mode'], name
    if exp['mode'] == 'step':
        assert flags['--lr-decay-epoch'] == '30,60,90', name
    else:
        assert '--lr-decay-epoch' not in flags, name
    assert flags.get('--warmup-epochs') == exp['warmup'], name
    assert ('--last-gamma' in flags) == exp['zg'], name
    assert ('--no-wd' in flags) == exp['nwd'], name
    assert ('--label-smoothing' in flags) == exp['ls'], name
    assert flags.get('--smoothing-eps') == ('0.1' if exp['ls'] else None), name
    assert ('--mixup' in flags) == exp['mixup'], name
    assert flags.get('--mixup-alpha') == ('0.2' if exp['mixup'] else None), name
    if exp['teacher']:
        assert flags['--teacher'] == 'resnet152_v1d', name
        assert flags['--teacher-params'] == os.path.join(runs_dir, exp['teacher'],
                                                         'checkpoint-best', 'net.params'), name
        assert flags['--temperature'] == '20', name
    else:
        assert not {'--teacher', '--teacher-params', '--temperature'} & set(flags), name
    assert int(flags['--num-epochs']) == exp['epochs'], name
    assert flags.get('--input-size') == exp['size'], name
    assert flags['--use-rec'] is True and flags['--data-dir'] == data_dirs[exp['data']], name
    assert flags['--save-dir'] == os.path.join(runs_dir, name), name


def full_env(tmp_path, **kw):
    env = {'DRY_RUN': 1, 'RUNS_DIR': str(tmp_path / 'runs'), 'DATA_DIR': '/data/imagenet/rec',
           'PLACES_DIR': '/data/places365/rec'}
    env.update(kw)
    return env


DATA_DIRS = {'imagenet': '/data/imagenet/rec', 'places365': '/data/places365/rec'}


# ---- DRY_RUN: the paper's configurations ------------------------------------------------------

def test_dry_run_prints_the_papers_configurations(tmp_path):
    runs = str(tmp_path / 'runs')
    seen = {}
    for script in SCRIPTS:
        out = run_script(script, full_env(tmp_path, NUM_GPUS=8)).stdout
        rows, order = parse_rows(out)
        assert order == SCRIPT_ROWS[script], script
        for name, argv in rows.items():
            assert argv[0].endswith('python') or 'python' in os.path.basename(argv[0])
            assert argv[2:4] == ['--num-gpus', '8'], name
            check_row(name, flags_of(argv), EXPECTED[name], 8, runs, DATA_DIRS)
            # a row shared by several tables is the same command everywhere (trained once)
            assert seen.setdefault(name, argv) == argv, name
        assert '# report %s' % script in out
        assert not os.path.exists(runs), 'DRY_RUN must not create anything'
    # Tables 8 and 9: the backbone rows (trained first, same commands as in Table 6), then
    # one downstream run per backbone with GluonCV's VOC / ADE20K recipe
    backbones = ['r50b-baseline', 'teacher-r152d-cos-ls', 'teacher-r152d-cos-ls-mixup'] + [
        'r50d-%s' % k for k in ('efficient', 'cosine', 'smooth', 'distill', 'mixup',
                                'distill-mixup')]
    paper_order = ['r50b-baseline'] + backbones[3:]
    transfer = {
        'table8': ('det-', 'train_faster_rcnn.py', 8, {
            '--epochs': '20', '--lr-decay-epoch': '14,20', '--lr-warmup': '500', '--short': '600',
            '--max-size': '1000', '--train-splits': '2007_trainval,2012_trainval',
            '--val-splits': '2007_test', '--data-dir': '/data/voc'}),
        'table9': ('seg-', 'train_fcn.py', 16, {
            '--epochs': '120', '--base-size': '520', '--crop-size': '480',
            '--data-dir': '/data/ade'})}
    for tname, (prefix, script, gbatch, want) in transfer.items():
        out = run_script(TRANSFER[tname], full_env(tmp_path, NUM_GPUS=8, VOC_DIR='/data/voc',
                                                   ADE_DIR='/data/ade')).stdout
        rows, order = parse_rows(out)
        assert order == backbones + [prefix + b for b in paper_order], tname
        for name in backbones:
            check_row(name, flags_of(rows[name]), EXPECTED[name], 8, runs, DATA_DIRS)
            assert seen.setdefault(name, rows[name]) == rows[name], name
        for b in paper_order:
            f = flags_of(rows[prefix + b], script)
            assert f['--backbone'] == ('resnet50_v1b' if b == 'r50b-baseline' else 'resnet50_v1d')
            assert f['--backbone-params'] == os.path.join(runs, b, 'checkpoint-best',
                                                          'net.params')
            assert int(f['--batch-size']) * 8 == gbatch and f['--num-gpus'] == '8'
            assert f['--save-dir'] == os.path.join(runs, prefix + b)
            assert {k: f.get(k) for k in want} == want, (tname, b)
            assert set(f) == set(want) | {'--backbone', '--backbone-params', '--batch-size',
                                          '--num-gpus', '--save-dir'}, (tname, b)
    # every run the report reads is a row of some script
    from gluon_tricks.report import TABLES
    for tname, table in TABLES.items():
        for run in table.runs():
            assert run in seen or run[4:] in paper_order, (tname, run)
    assert len(seen) == len(EXPECTED)


def test_dry_run_horovod_and_devices(tmp_path):
    out = run_script('table3', full_env(tmp_path, NP=16, HOSTS='h1:8,h2:8',
                                        HOROVODRUN_ARGS='--gloo')).stdout
    rows, _ = parse_rows(out)
    for name, argv in rows.items():
        assert os.path.basename(argv[0]) == 'horovodrun'
        assert argv[1:6] == ['-np', '16', '-H', 'h1:8,h2:8', '--gloo']
        flags = flags_of(argv)
        assert flags['--horovod'] is True and flags['--num-gpus'] == '1'
        check_row(name, flags, EXPECTED[name], 16, str(tmp_path / 'runs'), DATA_DIRS)
    # one process with 4 GPUs keeps the paper's global batch (and so its lr)
    rows, _ = parse_rows(run_script('table5', full_env(tmp_path, NUM_GPUS=4)).stdout)
    assert flags_of(rows['r50b-efficient'])['--batch-size'] == '256'
    # a device count that does not divide the global batch is refused
    proc = run_script('table2', full_env(tmp_path, NUM_GPUS=3), check=False)
    assert proc.returncode != 0 and 'not divisible' in proc.stderr


def test_dry_run_proxy_substitutions(tmp_path):
    env = full_env(tmp_path, SCALE='proxy', PROXY_EPOCHS=3, PROXY_DATA='/tmp/digits-rec')
    rows, _ = parse_rows(run_script('table6', env).stdout)
    f = flags_of(rows['r50d-distill-mixup'])
    assert f['--model'] == 'resnet18_v1d' and f['--teacher'] == 'resnet34_v1d'
    assert f['--batch-size'] == '128' and f['--lr'] == '0.05' and f['--dtype'] == 'float32'
    assert f['--num-epochs'] == '5' and f['--warmup-epochs'] == '0.125'
    assert f['--mixup-alpha'] == '0.2' and f['--smoothing-eps'] == '0.1'
    assert f['--temperature'] == '20' and f['--input-size'] == '32'
    assert f['--data-dir'] == '/tmp/digits-rec'
    assert f['--teacher-params'].endswith('teacher-r152d-cos-ls-mixup/checkpoint-best/net.params')
    f = flags_of(rows['inception-efficient'])
    assert f['--model'] == 'inceptionv3' and f['--input-size'] == '75'
    assert f['--lr-decay-epoch'] == '0.75,1.5,2.25' and f['--num-epochs'] == '3'
    rows, _ = parse_rows(run_script('table4', env).stdout)
    f = flags_of(rows['r50-baseline'])
    assert f['--model'] == 'resnet18_v1' and f['--batch-size'] == '32' and f['--lr'] == '0.0125'


def test_dry_run_proxy_transfer(tmp_path):
    env = full_env(tmp_path, SCALE='proxy', PROXY_EPOCHS=3, PROXY_DATA='/tmp/digits-rec')
    out = run_script(TRANSFER['table8'], env).stdout
    assert '# proxy voc data' in out and not os.path.exists(str(tmp_path / 'runs'))
    rows, _ = parse_rows(out)
    f = flags_of(rows['det-r50b-baseline'], 'train_faster_rcnn.py')
    assert f['--backbone'] == 'resnet18_v1b' and f['--epochs'] == '1'
    assert f['--lr-decay-epoch'] == '0.7,1' and f['--short'] == '96' and f['--max-size'] == '128'
    assert f['--train-splits'] == '2007_trainval' and f['--batch-size'] == '1'
    assert f['--data-dir'] == str(tmp_path / 'runs' / 'data' / 'voc')
    assert f['--backbone-params'] == str(tmp_path / 'runs' / 'r50b-baseline' / 'checkpoint-best'
                                         / 'net.params')
    f = flags_of(parse_rows(run_script(TRANSFER['table9'], env).stdout)[0]['seg-r50d-mixup'],
                 'train_fcn.py')
    assert f['--backbone'] == 'resnet18_v1d' and f['--epochs'] == '1' and f['--batch-size'] == '2'
    assert f['--crop-size'] == '64' and f['--base-size'] == '96'


def test_rows_filter(tmp_path):
    env = full_env(tmp_path, ROWS='mobilenet-*,teacher-r152d-cos-ls')
    rows, order = parse_rows(run_script('table6', env).stdout)
    assert order == ['teacher-r152d-cos-ls'] + ['mobilenet-%s' % k for k in (
        'efficient', 'cosine', 'smooth', 'distill', 'mixup', 'distill-mixup')]


# ---- skipping finished rows -------------------------------------------------------------------

FAKE_PYTHON = r'''#!/usr/bin/env bash
# records its arguments and writes a finished metrics.jsonl like train_imagenet.py would
echo "$*" >> "${CALLS}"
save=""; epochs=""
while [[ $# -gt 0 ]]; do
  case "$1" in --save-dir) save="$2"; shift ;; --num-epochs) epochs="$2"; shift ;; esac
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


def test_skip_finished_rows_and_resume(tmp_path):
    calls = str(tmp_path / 'calls.txt')
    env = full_env(tmp_path, DRY_RUN=0, REPORT=0, PYTHON=_fake_python(tmp_path), CALLS=calls)
    runs = tmp_path / 'runs'
    run_script('table2', env)
    assert len(_calls(calls)) == 3
    for name in SCRIPT_ROWS['table2']:
        assert (runs / name / 'argv.txt').read_text().splitlines()[:2] == [
            '--model', EXPECTED[name]['model']]
        assert 'scale=full' in (runs / name / 'row.txt').read_text()
    # again: everything finished, nothing runs
    proc = run_script('table2', env)
    assert len(_calls(calls)) == 3
    assert proc.stderr.count('skipped') == 3
    # Table 3 reuses Table 2's rows: only its three efficient rows run
    run_script('table3', env)
    assert len(_calls(calls)) == 6
    assert all('efficient' in c for c in _calls(calls)[3:])
    # an unfinished row with a checkpoint resumes; one without starts again
    m = runs / 'r50-baseline' / 'metrics.jsonl'
    m.write_text('\n'.join(m.read_text().splitlines()[:7]) + '\n')
    (runs / 'r50-baseline' / 'checkpoint-latest.json').write_text('{"epoch": 7}')
    (runs / 'r50-baseline' / 'checkpoint-epoch0007').mkdir()
    m2 = runs / 'mobilenet-baseline' / 'metrics.jsonl'
    m2.write_text(m2.read_text().splitlines()[0] + '\n')
    run_script('table2', env)
    new = _calls(calls)[6:]
    assert len(new) == 2
    assert 'r50-baseline' in new[0] and new[0].endswith('--resume')
    assert 'mobilenet-baseline' in new[1] and '--resume' not in new[1]
    assert [p for p in os.listdir(str(runs / 'mobilenet-baseline'))
            if p.startswith('metrics.jsonl.stale-')]
    # DRY_RUN marks finished rows
    out = run_script('table2', full_env(tmp_path)).stdout
    assert out.count(', finished)') == 3


# ---- report on fabricated runs ----------------------------------------------------------------

def _fabricate(runs, name, model, epochs, top1s, top5=0.9, sps=200.0, images=1000,
               extra_argv=(), scale='full', gbatch=1024):
    d = runs / name
    d.mkdir(parents=True)
    with open(str(d / 'metrics.jsonl'), 'w') as f:
        for e, t in enumerate(top1s, 1):
            f.write(json.dumps({'epoch': e, 'top1': t, 'top5': top5, 'samples_per_sec': sps,
                                'epoch_time': images / sps, 'train_loss': 1.0, 'lr': 0.1}) + '\n')
    argv = ['--model', model, '--num-epochs', str(epochs)] + list(extra_argv)
    (d / 'argv.txt').write_text('\n'.join(argv) + '\n')
    (d / 'row.txt').write_text('row=%s\ntable=test\nscale=%s\nglobal_batch=%d\n'
                               % (name, scale, gbatch))
    return d


def _is_png(path):
    with open(path, 'rb') as f:
        return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_report_on_fabricated_runs(tmp_path):
    runs = tmp_path / 'runs'
    _fabricate(runs, 'r50-baseline', 'resnet50_v1', 3, [0.5, 0.6, 0.7580], top5=0.93, sps=100.0,
               images=6000, gbatch=256)
    _fabricate(runs, 'r50-efficient', 'resnet50_v1', 3, [0.5, 0.6, 0.77], sps=300.0, images=6000)
    _fabricate(runs, 'r50d-efficient', 'resnet50_v1d', 3, [0.4, 0.5, 0.6])
    _fabricate(runs, 'r50d-cosine', 'resnet50_v1d', 120, [0.45, 0.55])  # unfinished
    det = runs / 'det-r50d-efficient'
    det.mkdir()
    (det / 'metrics.jsonl').write_text(json.dumps({'epoch': 20, 'map': 0.7930}) + '\n')
    (det / 'argv.txt').write_text('--backbone\nresnet50_v1d\n--epochs\n20\n')
    (det / 'results.json').write_text(json.dumps({'map': 0.7930}))
    seg = runs / 'seg-r50d-efficient'
    seg.mkdir()
    (seg / 'metrics.jsonl').write_text(json.dumps({'epoch': 120, 'pixAcc': 0.79,
                                                   'mIoU': 0.3888}) + '\n')
    (seg / 'argv.txt').write_text('--backbone\nresnet50_v1d\n--epochs\n120\n')
    out = tmp_path / 'report'
    proc = subprocess.run([sys.executable, REPORT, '--runs', str(runs), '--out', str(out),
                           '--no-figure4b'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    t2 = (out / 'table2.md').read_text()
    row = next(l for l in t2.splitlines() if l.startswith('| ResNet-50 |'))
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[2] == 'finished'
    assert cells[3:9] == ['75.80', '75.87', '-0.07', '93.00', '92.70', '+0.30']
    assert '| Inception-V3 | `inception-baseline` | not run | not run | 77.32 |' in t2
    # Table 3: time per epoch = images / throughput: 6000 / 100 / 60 = 1.00 min, 0.33 min
    t3 = (out / 'table3.md').read_text()
    assert '| ResNet-50: Baseline | `r50-baseline`' in t3 and '| 1.00 | 13.30 |' in t3
    assert '| 0.33 | 4.40 |' in t3 and 'ours 3.00x, paper 3.02x' in t3
    # Table 5's size columns come from the model summary of the paper's networks
    t5 = (out / 'table5.md').read_text()
    r5 = next(l for l in t5.splitlines() if l.startswith('| ResNet-50-D |'))
    c5 = [c.strip() for c in r5.strip('|').split('|')]
    assert c5[3:5] == ['25.6', '25.0'] and c5[6:8] == ['4.33', '4.30']
    assert c5[9:11] == ['60.00', '77.16']
    # Table 6: an unfinished run shows its progress
    t6 = (out / 'table6.md').read_text()
    assert '| ResNet-50-D: + cosine decay | `r50d-cosine` (resnet50_v1d, batch 1024, 120 ep) | ' \
           '2/120 epochs ' \
           '| 55.00 | 77.91 | -22.91 |' in t6
    # Tables 8 and 9 read the downstream runs and the backbone's top-1
    t8 = (out / 'table8.md').read_text()
    assert '| D-efficient | `det-r50d-efficient` (resnet50_v1d, 20 ep) | finished | 60.00 | ' \
           '77.16 | -17.16 | 79.30 | 78.30 | +1.00 |' in t8
    assert '| B-standard | `det-r50b-baseline` | not run |' in t8
    t9 = (out / 'table9.md').read_text()
    assert '| 79.00 | 78.88 | +0.12 | 38.88 | 38.88 | +0.00 |' in t9
    # figures: 3a always, 3b from the metrics, 4a always; 4b skipped on request
    for png in ('figure3a.png', 'figure3b.png', 'figure4a.png'):
        assert _is_png(str(out / png)), png
    assert not (out / 'figure4b.png').exists()
    assert '9.10 at eps = 0.1' in (out / 'figure4.md').read_text()
    readme = (out / 'README.md').read_text()
    assert '## Table 2' in readme and '## Table 9' in readme and '## Figure 4' in readme
    assert 'Proxy scale' not in readme
    # --only rewrites one file and keeps the others in the index
    (out / 'table4.md').unlink()
    subprocess.run([sys.executable, REPORT, '--runs', str(runs), '--out', str(out), '--only',
                    'table4'], check=True, stdout=subprocess.PIPE, timeout=300)
    assert (out / 'table4.md').exists() and '## Table 7' in (out / 'README.md').read_text()


# ---- reduced proxy, end to end ----------------------------------------------------------------

def _tiny_digits(tmp_path, train_per_class=16, val_per_class=13):
    # (at least one batch of 128 in each split: ImageRecordIter needs it)
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


def test_proxy_tables_4_and_6_end_to_end(tmp_path):
    tic = time.time()
    rec = _tiny_digits(tmp_path)
    runs = tmp_path / 'runs'
    report = tmp_path / 'report'
    env = {'SCALE': 'proxy', 'PROXY_EPOCHS': 1, 'PROXY_DATA': rec, 'RUNS_DIR': str(runs),
           'REPORT_DIR': str(report), 'PROXY_WORKERS': 1, 'PYTHON': sys.executable}
    # Table 4: its first row (the batch-256 baseline, batch 32 at proxy scale)
    run_script('table4', dict(env, ROWS='r50-baseline'), timeout=300)
    # Table 6: the teacher first, then a student distilled from its checkpoint
    run_script('table6', dict(env, ROWS='teacher-r152d-cos-ls,r50d-distill'), timeout=300)
    for name, model in (('r50-baseline', 'resnet18_v1'), ('teacher-r152d-cos-ls', 'resnet34_v1d'),
                        ('r50d-distill', 'resnet18_v1d')):
        metrics = [json.loads(l) for l in (runs / name / 'metrics.jsonl').read_text().splitlines()]
        assert [m['epoch'] for m in metrics] == [1], name
        assert 0.0 <= metrics[0]['top1'] <= 1.0 and metrics[0]['val_samples'] == 130
        assert (runs / name / 'checkpoint-best' / 'net.params').exists(), name
        assert '--model\n%s\n' % model in (runs / name / 'argv.txt').read_text()
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
    from gluon_tricks import report as rep
    stats = rep.plot_figure4b(str(tmp_path / 'fig4b.png'), str(runs),
                              runs=(('without', 'r50-baseline'), ('with', 'teacher-r152d-cos-ls')))
    assert _is_png(str(tmp_path / 'fig4b.png'))
    assert [s['images'] for s in stats.values()] == [130, 130]
    assert all(s['mean'] > 0 and s['classes'] == 10 for s in stats.values())
    assert stats['r50-baseline']['theoretical_gap'] == pytest.approx(4.394449, abs=1e-5)
    assert time.time() - tic < 240
