"""Golden traces: every table row at a tiny scale, traced step by step.

``record`` runs each row of the table scripts' proxy dry run (``SCALE=proxy DRY_RUN=1``),
shrunk to a few steps on tiny generated data, under :mod:`tools.golden.hook`, and writes one
JSON file per distinct training command to ``--out``: the command, and per optimizer update
the learning rate, the summed loss and a digest of the parameters. ``check`` runs them again
(on the code of ``--repo``) and compares bit for bit. Deterministic settings: oneDNN off,
one OpenMP thread, one data worker.

    python -m tools.golden.traces record --repo . --out tests/golden
    python -m tools.golden.traces check --repo . --out tests/golden [--rows 'r50*']
"""
import argparse
import fnmatch
import glob
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS_ROOT = os.path.dirname(os.path.dirname(HERE))
ENV = {'MXNET_MKLDNN_ENABLED': '0', 'OMP_NUM_THREADS': '1', 'MXNET_CPU_WORKER_NTHREADS': '1',
       'PYTHONHASHSEED': '0', 'MXNET_STORAGE_FALLBACK_LOG_VERBOSE': '0'}
#: rows also traced with two Horovod ranks (batch per rank halved)
HOROVOD_ROWS = ('r50-efficient', 'r50d-distill-mixup', 'det-r50d-efficient',
                'seg-r50d-efficient')
CLASSES = 10
#: CPU features that change MXNet's float results (its kernels and BLAS dispatch on them):
#: traces compare bit for bit only on a machine with the same ones, else within LOSS_RTOL
VECTOR_FLAGS = ('avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni',
                'avx512_bf16', 'amx_bf16')
LOSS_RTOL = 1e-2


def machine():
    """The vector features of this CPU (those in :data:`VECTOR_FLAGS`), sorted, as
    :func:`gluon_tricks.cpu.cpu_flags` gives them (``GLUON_TRICKS_CPU_FLAGS`` if set: a check
    under a masked CPU then compares as on another CPU)."""
    from gluon_tricks.cpu import cpu_flags
    return sorted(set(cpu_flags()) & set(VECTOR_FLAGS))


def dry_run_rows(repo, runs_dir):
    """[(row, table, argv)] of the proxy dry run of every table script of ``repo``."""
    # the proxy settings the traces were recorded with (the runner's 'legacy' profile, no
    # seed copies)
    env = dict(os.environ, SCALE='proxy', DRY_RUN='1', REPORT='0', RUNS_DIR=runs_dir,
               PYTHON=sys.executable, PROXY_PROFILE='legacy', PROXY_SEEDS='')
    out = subprocess.run(['bash', os.path.join(repo, 'scripts/classification/tables/all.sh')],
                         env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, check=True).stdout
    rows, current = [], None
    for line in out.splitlines():
        if line.startswith('# row '):
            name, table = line[len('# row '):].split(' (', 1)
            current = (name.strip(), table.rstrip(')'))
        elif current and line.strip() and not line.startswith('#'):
            argv = shlex.split(line)
            if any(a.endswith(('train_imagenet.py', 'train_faster_rcnn.py', 'train_fcn.py'))
                   for a in argv):
                rows.append((current[0], current[1], argv))
            current = None
    return rows


def _flag(argv, name, default=None):
    return argv[argv.index(name) + 1] if name in argv else default


def _set(argv, name, value):
    if name in argv:
        argv[argv.index(name) + 1] = str(value)
    else:
        argv += [name, str(value)]


def _drop(argv, name, has_value=True):
    if name in argv:
        i = argv.index(name)
        del argv[i:i + (2 if has_value else 1)]


def fake_params(work, model, repo):
    """A seeded, untrained ``model`` (10 classes) saved as our ``.params``: stands for the
    teacher or backbone checkpoint a row would read."""
    path = os.path.join(work, 'params', model + '.params')
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        code = ('import mxnet as mx; mx.random.seed(7)\n'
                'from gluon_tricks.model_zoo import get_model\n'
                'net = get_model(%r, classes=%d); net.initialize(mx.init.Xavier())\n'
                'net(mx.nd.zeros((1, 3, 64, 64)) if %r != "inceptionv3" else '
                'mx.nd.zeros((1, 3, 75, 75)))\n'
                'net.save_parameters(%r)\n' % (model, CLASSES, model, path))
        subprocess.run([sys.executable, '-c', code], check=True, cwd=repo,
                       env=dict(os.environ, PYTHONPATH=repo, **ENV))
    return path


def make_data(work, repo):
    """Tiny digits RecordIO (8 train / 3 val images per class) and VOC/ADE look-alikes (8 / 2)."""
    rec = os.path.join(work, 'rec')
    if os.path.exists(os.path.join(rec, 'val.rec')):
        return
    env = dict(os.environ, PYTHONPATH=repo, **ENV)
    images = os.path.join(work, 'images')
    code = ('import os, shutil\n'
            'from gluon_tricks.data import make_digits_dataset as m\n'
            'm(%r, image_size=40, overwrite=True)\n'
            'for split, keep in (("train", 8), ("val", 3)):\n'
            '    for c in sorted(os.listdir(os.path.join(%r, split))):\n'
            '        d = os.path.join(%r, split, c)\n'
            '        for f in sorted(os.listdir(d))[keep:]: os.remove(os.path.join(d, f))\n'
            % (images, images, images))
    subprocess.run([sys.executable, '-c', code], check=True, cwd=repo, env=env)
    subprocess.run([sys.executable, os.path.join(repo, 'scripts/classification/prepare_imagenet.py'),
                    '--data-dir', images, '--out-dir', rec, '--resize', '0', '--encoding',
                    '.png', '--quality', '3', '-j', '1'], check=True, cwd=repo, env=env,
                   stdout=subprocess.DEVNULL)
    maker = glob.glob(os.path.join(repo, 'scripts/classification/tables/make_proxy_transfer_data.py')) + \
        glob.glob(os.path.join(repo, 'tools/**/make_proxy_transfer_data.py'), recursive=True)
    subprocess.run([sys.executable, maker[0], '--voc', os.path.join(work, 'voc'), '--ade',
                    os.path.join(work, 'ade'), '--train', '8', '--test', '2'], check=True,
                   cwd=repo, env=env, stdout=subprocess.DEVNULL)


def shrink(argv, work, repo):
    """The row's command at trace scale; the returned key identifies identical commands."""
    argv = list(argv)
    argv[0] = sys.executable
    script = next(a for a in argv if a.endswith('.py'))
    _drop(argv, '--save-dir')
    if script.endswith('train_imagenet.py'):
        _set(argv, '--data-dir', os.path.join(work, 'rec'))
        batch = int(_flag(argv, '--batch-size', 32))
        if '--lr' not in argv:   # the row's lr (linear scaling of its batch), kept when shrunk
            _set(argv, '--lr', repr(float(_flag(argv, '--base-lr', 0.1)) * batch /
                                    float(_flag(argv, '--base-batch-size', 256))))
        _set(argv, '--batch-size', max(batch // 4, 2))
        _set(argv, '-j', 1)
        if '--teacher' in argv:
            _set(argv, '--teacher-params', fake_params(work, _flag(argv, '--teacher'), repo))
    else:
        kind = 'voc' if script.endswith('train_faster_rcnn.py') else 'ade'
        _set(argv, '--data-dir', os.path.join(work, kind))
        _set(argv, '--backbone-params', fake_params(work, _flag(argv, '--backbone'), repo))
        _set(argv, '-j', 0 if kind == 'voc' else 1)
    key = hashlib.sha1(' '.join(a.replace(work, 'WORK') for a in argv[1:]).encode()).hexdigest()[:12]
    return argv, key


def run_traced(argv, out_file, save_dir, repo, ranks=1):
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + TOOLS_ROOT, **ENV)
    script_i = next(i for i, a in enumerate(argv) if a.endswith('.py'))
    cmd = [argv[0], '-m', 'tools.golden.hook', out_file] + argv[script_i:] + \
        ['--save-dir', save_dir]
    if ranks > 1:
        cmd = [os.path.join(os.path.dirname(sys.executable), 'horovodrun'), '-np', str(ranks),
               '--gloo'] + cmd + ['--horovod']
    proc = subprocess.run(cmd, env=env, cwd=repo, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    if proc.returncode:
        raise RuntimeError('traced run failed (%s):\n%s' % (' '.join(cmd), proc.stdout[-4000:]))


def _read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def trace_row(argv, key, work, repo, ranks):
    out = os.path.join(work, 'traces', '%s-np%d.jsonl' % (key, ranks))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    for p in glob.glob(out + '*'):
        os.remove(p)
    save = os.path.join(work, 'runs', '%s-np%d' % (key, ranks))
    shutil.rmtree(save, ignore_errors=True)
    if ranks > 1:
        argv = list(argv)
        _set(argv, '--batch-size', max(int(_flag(argv, '--batch-size', 2)) // 2, 1))
    try:
        run_traced(argv, out, save, repo, ranks)
    except RuntimeError as err:   # a row the code refuses: its trace is the refusal
        lines = [l for l in str(err).splitlines() if 'error' in l.lower() or 'failed' in l]
        return {'error': lines[-1] if lines else str(err)[-300:]}
    if ranks == 1:
        return {'rank0': _read(out)}
    return {'rank%d' % r: _read('%s.rank%d' % (out, r)) for r in range(ranks)}


def plan(repo, work, rows_glob=None, rows_repo=None):
    """{trace name: {'argv', 'rows', 'ranks'}} for every distinct shrunk command."""
    make_data(work, repo)
    traces = {}
    for name, table, argv in dry_run_rows(rows_repo or repo, os.path.join(work, 'dry')):
        if rows_glob and not any(fnmatch.fnmatch(name, g) for g in rows_glob.split(',')):
            continue
        if rows_repo:   # the row's script of the checkout under test
            argv = [a.replace(rows_repo, repo) for a in argv]
        small, key = shrink(argv, work, repo)
        for ranks in ((1, 2) if name in HOROVOD_ROWS else (1,)):
            entry = traces.setdefault('%s-np%d' % (key, ranks),
                                      {'argv': small, 'rows': [], 'ranks': ranks, 'key': key})
            if '%s (%s)' % (name, table) not in entry['rows']:
                entry['rows'].append('%s (%s)' % (name, table))
    return traces


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('action', choices=['record', 'check', 'list'])
    p.add_argument('--repo', default='.', help='checkout whose code and table scripts run')
    p.add_argument('--rows-repo', default=None,
                   help='take the rows from this checkout\'s table scripts instead (record '
                        'the old code with rows defined later)')
    p.add_argument('--out', default='tests/golden', help='folder of the trace files')
    p.add_argument('--work', default=None, help='scratch folder (default: a temporary one)')
    p.add_argument('--rows', default=None, help='comma-separated row-name globs')
    p.add_argument('--keep', action='store_true', help='record: keep existing trace files')
    args = p.parse_args(argv)
    from gluon_tricks.cpu import ENV_VAR
    if args.action == 'record' and os.environ.get(ENV_VAR) is not None:
        p.error('record with %s unset: a trace stores the real CPU\'s vector features, which '
                'decide whether a later check compares bit for bit' % ENV_VAR)
    repo = os.path.abspath(args.repo)
    work = os.path.abspath(args.work or tempfile.mkdtemp(prefix='golden-'))
    traces = plan(repo, work, args.rows, rows_repo=args.rows_repo and os.path.abspath(args.rows_repo))
    names = sorted(traces, key=lambda n: traces[n]['rows'][0])
    if args.action == 'list':
        for n in names:
            print(n, traces[n]['ranks'], '; '.join(traces[n]['rows']))
        return 0
    os.makedirs(args.out, exist_ok=True)
    failures = 0
    for k, n in enumerate(names, 1):
        t = traces[n]
        tic = time.time()
        path = os.path.join(args.out, n.split('-np')[0] + '-np%d.json' % t['ranks'])
        if args.action == 'record' and args.keep and os.path.exists(path):
            continue
        got = trace_row(t['argv'], t['key'], work, repo, t['ranks'])
        label = '[%d/%d] %s %s' % (k, len(names), n, t['rows'][0])
        if args.action == 'record':
            with open(path, 'w') as f:
                json.dump({'rows': t['rows'], 'ranks': t['ranks'], 'machine': machine(),
                           'command': [a.replace(work, 'WORK') for a in t['argv'][1:]],
                           'trace': got}, f, indent=0, sort_keys=True)
            print('%s: %s, %.0f s' % (label, got['error'] if 'error' in got else
                                      '%d updates' % len(got['rank0']), time.time() - tic),
                  flush=True)
        else:
            golden = golden_for(args.out, t['rows'][0].split(' (')[0], t['ranks'])
            bad = _compare(golden['trace'], got, exact=golden.get('machine') == machine())
            failures += bool(bad)
            print('%s: %s (%.0f s)' % (label, bad or 'identical', time.time() - tic), flush=True)
    return 1 if failures else 0


def golden_for(folder, row, ranks):
    """The recorded trace of ``row`` with ``ranks`` processes (traces are found by row name:
    the commands, and so the file names, may change)."""
    for path in sorted(glob.glob(os.path.join(folder, '*-np%d.json' % ranks))):
        with open(path) as f:
            data = json.load(f)
        if any(r.split(' (')[0] == row for r in data['rows']):
            return data
    raise KeyError('no golden trace of row %s with %d rank(s) in %s' % (row, ranks, folder))


def _same(a, b, exact):
    if exact:
        return a == b
    # another CPU: the schedule and the step structure exactly, the loss within LOSS_RTOL
    # (parameter digests cannot match across kernels)
    la, lb = float(a['loss']), float(b['loss'])
    return a['lr'] == b['lr'] and a['heads'] == b['heads'] and a['update'] == b['update'] \
        and abs(la - lb) <= LOSS_RTOL * max(abs(la), abs(lb), 1e-12)


def _compare(want, got, exact=True):
    """'' when ``got`` reproduces ``want``, else where and how it first differs."""
    if 'error' in want or 'error' in got:
        return '' if want.get('error') == got.get('error') else \
            'DIFFERS: golden %s, now %s' % (want.get('error', 'trains'), got.get('error', 'trains'))
    for rank in sorted(want):
        w, g = want[rank], got.get(rank, [])
        for i, (a, b) in enumerate(zip(w, g)):
            if not _same(a, b, exact):
                return 'DIFFERS at %s update %d: %s != %s%s' % (
                    rank, i + 1, b, a, '' if exact else ' (another CPU: loss rtol %g)' % LOSS_RTOL)
        if len(w) != len(g):
            return 'DIFFERS in length at %s: %d updates, golden %d' % (rank, len(g), len(w))
    return ''


if __name__ == '__main__':
    sys.exit(main())
