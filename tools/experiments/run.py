"""Train the rows of the paper's tables and figures, then write their report.

    python -m tools.experiments.run table6                      # Table 6 (teachers first)
    python -m tools.experiments.run all --scale proxy           # everything on the CPU proxy
    python -m tools.experiments.run table4 --dry-run --rows 'r50-bs1024-*'

Each row is trained once even when several tables show it. A finished row (metrics.jsonl up
to its last epoch, and results.json for Tables 8/9) is skipped; an unfinished one with a
checkpoint continues with ``--resume``; one without a checkpoint starts again (its old
metrics kept as ``metrics.jsonl.stale-<time>``). Rows that a row needs (the distillation
teacher, the backbone of Tables 8/9) run before it. The table scripts
(``scripts/classification/tables/*.sh``, ``scripts/detection/table8.sh``,
``scripts/segmentation/table9.sh``) call this with their table's name; every option also reads
the environment variable the scripts have always used (upper case): SCALE, RUNS_DIR,
DATA_DIR, PLACES_DIR, VOC_DIR, ADE_DIR, NUM_GPUS, NP, HOSTS, HOSTFILE, HOROVODRUN,
HOROVODRUN_ARGS, PYTHON, EXTRA_ARGS, EXTRA_TRANSFER_ARGS, ROWS, DRY_RUN=1, REPORT=0,
REPORT_DIR, SKIP_TRANSFER=1; at proxy scale PROXY_PROFILE, PROXY_DATA, PROXY_VOC, PROXY_ADE,
and the overrides of :func:`tools.experiments.scale.settings` (PROXY_EPOCHS, PROXY_BATCH_DIV,
PROXY_SEEDS, PROXY_TRANSFER_TRAIN/TEST: images of the VOC/ADE look-alikes ...).

``--dry-run`` prints, for every row, ``# row NAME (TABLE[, STATUS])`` and the command on the
next line (STATUS: finished, resume or restart); every other line starts with ``#`` (``# report
TABLE: COMMAND``) or is a data preparation command (after ``# proxy DATA data``).
"""
import argparse
import fnmatch
import os
import subprocess
import sys
import time
from collections import OrderedDict

from . import commands as C
from .rows import EXPERIMENTS
from . import scale as S
from .tables import FIGURES, TABLES, runs_of

__all__ = ['plan', 'main', 'parse_args', 'TARGETS']

#: what the runner can be asked for: each table and figure, ``classification`` (Tables 2-7 and
#: Figures 3-4) and ``all``
TARGETS = list(TABLES) + list(FIGURES) + ['classification', 'all']


def _targets(name, skip_transfer=False):
    if name == 'all' or name == 'classification':
        names = [t for t in list(TABLES) + list(FIGURES)
                 if not (t in ('table8', 'table9') and (skip_transfer or name != 'all'))]
        return names
    return [name]


def plan(targets, scale='full', settings=S.PROXY, rows=None):
    """``[(table, Experiment)]`` in run order: each table's rows with the rows they need
    first, each row once; at proxy scale scaled by :func:`~tools.experiments.scale.proxy`
    with ``settings`` and followed by its seed copies. ``rows`` (globs) keeps the matching
    rows only."""
    out = OrderedDict()

    def add(exp, table):
        for dep in exp.needs:
            add(EXPERIMENTS[dep], table)
        if exp.name not in out:
            out[exp.name] = (table, S.proxy(exp, settings) if scale == 'proxy' else exp)
        if scale == 'proxy':
            for copy in S.seed_copies(out[exp.name][1], table, settings):
                out.setdefault(copy.name, (table, copy))

    for t in targets:
        for exp in runs_of(t):
            add(exp, t)
    items = list(out.values())
    if rows:
        items = [(t, e) for t, e in items if any(fnmatch.fnmatchcase(e.name, g) for g in rows)]
    return items


def _env_flag(name, default='0'):
    return os.environ.get(name, default) == '1'


def parse_args(argv=None):
    e = os.environ
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n', 2)[2])
    p.add_argument('targets', nargs='+', metavar='TARGET',
                   help='one or more of: %s' % ', '.join(TARGETS))
    p.add_argument('--scale', choices=['full', 'proxy'], default=e.get('SCALE') or 'full')
    p.add_argument('--proxy-profile', choices=sorted(S.PROFILES),
                   default=e.get('PROXY_PROFILE') or 'default',
                   help='proxy settings (tools/experiments/scale.py)')
    p.add_argument('--rows', default=e.get('ROWS', ''),
                   help='comma-separated row names or globs (default: every row)')
    p.add_argument('--runs-dir', default=e.get('RUNS_DIR') or None,
                   help='one directory per row (default: <repo>/runs/SCALE)')
    p.add_argument('--dry-run', action='store_true', default=_env_flag('DRY_RUN'),
                   help='print the commands, run nothing')
    p.add_argument('--no-report', dest='report', action='store_false',
                   default=e.get('REPORT', '1') != '0',
                   help='do not write the report at the end')
    p.add_argument('--report-dir', default=e.get('REPORT_DIR') or None,
                   help='default: RUNS_DIR/report')
    p.add_argument('--estimate', action='store_true',
                   help='print the estimated time of each proxy row (tools/experiments/'
                        'estimate.py) and run nothing')
    p.add_argument('--skip-transfer', action='store_true', default=_env_flag('SKIP_TRANSFER'),
                   help='with "all": Tables 2-7 and the figures only')
    args = p.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        p.error('unknown target %s; choose from %s' % (', '.join(unknown), ', '.join(TARGETS)))
    args.rows = [g.strip() for g in args.rows.split(',') if g.strip()]
    return args


def _say(text):
    print(text, file=sys.stderr, flush=True)


def _report_command(env, out, only):
    cmd = [env.python, os.path.join(C.REPO, 'scripts', 'report.py'), '--runs', env.runs_dir,
           '--out', out]
    return cmd + (['--only', only] if only else [])


def main(argv=None):
    args = parse_args(argv)
    env = C.Env.from_environ(scale=args.scale, runs_dir=args.runs_dir)
    targets = []
    for t in args.targets:
        targets += [n for n in _targets(t, args.skip_transfer) if n not in targets]
    try:
        settings = S.settings(args.proxy_profile, os.environ)
        items = plan(targets, args.scale, settings, args.rows)
        cmds = [(t, e, C.command(e, env)) for t, e in items]
    except ValueError as err:
        _say('[tables] %s' % err)
        return 2
    if args.estimate:
        from .estimate import row_seconds
        total = 0.0
        for table, exp in items:
            total += row_seconds(exp, settings)
            print('# %-28s %-8s %6.1f min' % (exp.name, table, row_seconds(exp, settings) / 60))
        print('# total %.0f min (%d rows; estimate for the 2-core CPU of docs/proxy)'
              % (total / 60, len(items)))
        return 0
    if not args.dry_run:
        os.makedirs(env.runs_dir, exist_ok=True)

    # the proxy's data sets, made once
    if args.scale == 'proxy':
        for data in OrderedDict((e.data, 1) for _, e in items):
            steps = C.data_steps(data, env, settings)
            if steps and args.dry_run:
                print('# proxy %s data' % data)
                for s in steps:
                    print(C.quote(s))
            elif steps:
                _say('[tables] making the proxy data set %s in %s' % (data, env.folders[data]))
                for s in steps:
                    subprocess.run(s, check=True, stdout=subprocess.DEVNULL)

    for table, exp, cmd in cmds:
        run_dir = env.run_dir(exp.name)
        state = C.status(exp, run_dir)
        if state == 'resume':
            cmd = cmd + ['--resume']
        if args.dry_run:
            print('# row %s (%s%s)' % (exp.name, table, ', ' + state if state else ''))
            print(C.quote(cmd))
            continue
        if state == 'finished':
            _say('[%s] %s: finished (%d/%d epochs), skipped'
                 % (table, exp.name, C.last_epoch(run_dir), exp.num_epochs))
            continue
        os.makedirs(run_dir, exist_ok=True)
        if state == 'restart':
            os.replace(os.path.join(run_dir, 'metrics.jsonl'),
                       os.path.join(run_dir, 'metrics.jsonl.stale-%s'
                                    % time.strftime('%Y%m%d-%H%M%S')))
        with open(os.path.join(run_dir, 'command.sh'), 'w') as f:
            f.write(C.quote(cmd) + '\n')   # for the people reading the run (commands.md)
        _say('[%s] %s: %s\n%s' % (table, exp.name, state or 'start', C.quote(cmd)))
        tic = time.time()
        with open(os.path.join(run_dir, 'console.log'), 'a') as log:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for line in iter(proc.stdout.readline, b''):
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
                log.write(line.decode('utf-8', 'replace'))
            code = proc.wait()
        if code:
            _say('[%s] %s: failed (exit status %d); its log: %s'
                 % (table, exp.name, code, os.path.join(run_dir, 'console.log')))
            return code
        _say('[%s] %s: done in %.0f s' % (table, exp.name, time.time() - tic))

    if args.report:
        out = args.report_dir or os.path.join(env.runs_dir, 'report')
        whole = any(t in ('all', 'classification') for t in args.targets)
        for name in ([None] if whole else targets):
            cmd = _report_command(env, out, name)
            if args.dry_run:
                print('# report %s: %s' % (name or 'all', C.quote(cmd)))
            else:
                code = subprocess.call(cmd)
                if code:
                    return code
    return 0


if __name__ == '__main__':
    sys.exit(main())
