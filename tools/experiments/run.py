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

Every row runs in a process group of its own under two limits: its wall time (``--row-timeout``,
ROW_TIMEOUT; default at proxy scale ten times the row's estimate, at least 30 minutes; none at
full scale) and the time without any output (``--row-silence``, ROW_SILENCE; default 2 hours:
a training run logs every ``--log-interval`` batches, an evaluation or a data check within
minutes). A row past a limit gets SIGTERM (the training writes a checkpoint), SIGKILL
:data:`STOP_GRACE` seconds later if still alive; it is marked failed, the rows that need it are
skipped, the others run, and the runner exits 1 after the report. Another failure of a row
stops the runner with its exit status. SIGINT/SIGTERM to the runner reach the row.

``--dry-run`` prints, for every row, ``# row NAME (TABLE[, STATUS])`` and the command on the
next line (STATUS: finished, resume or restart); every other line starts with ``#`` (``# report
TABLE: COMMAND``) or is a data preparation command (after ``# proxy DATA data``).
"""
import argparse
import fnmatch
import os
import select
import signal
import subprocess
import sys
import time
from collections import OrderedDict

from . import commands as C
from .rows import EXPERIMENTS
from . import scale as S
from .tables import FIGURES, TABLES, runs_of

__all__ = ['plan', 'main', 'parse_args', 'TARGETS', 'row_time_limit', 'run_row', 'STOP_GRACE']

#: seconds between SIGTERM and SIGKILL for a row past its limit (a checkpoint is written)
STOP_GRACE = 60.0
#: default ``--row-silence``: no output for this long ends a row
ROW_SILENCE = 7200.0
#: seconds a step making the proxy data may take (about a minute on the proxy's CPU)
DATA_TIMEOUT = 3600

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
    p.add_argument('--row-timeout', type=float, default=None, metavar='SECONDS',
                   help='wall time of a row before it is stopped (0: none; default: 10 x its '
                        'estimate, at least 30 min, at proxy scale; none at full scale)')
    p.add_argument('--row-silence', type=float, default=None, metavar='SECONDS',
                   help='time a row may go without output before it is stopped (0: never; '
                        'default %d)' % ROW_SILENCE)
    args = p.parse_args(argv)
    for flag, var in (('row_timeout', 'ROW_TIMEOUT'), ('row_silence', 'ROW_SILENCE')):
        if getattr(args, flag) is None and e.get(var, '').strip():
            try:
                setattr(args, flag, float(e[var]))
            except ValueError:
                p.error('%s=%r is not a number of seconds' % (var, e[var]))
        if getattr(args, flag) is not None and getattr(args, flag) < 0:
            p.error('--%s must be >= 0 seconds (0: no limit), got %g'
                    % (flag.replace('_', '-'), getattr(args, flag)))
    if args.row_silence is None:
        args.row_silence = ROW_SILENCE
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


def row_time_limit(exp, scale, settings, override=None):
    """Seconds row ``exp`` may run (0: no limit): ``override`` (``--row-timeout``) if given,
    else at proxy scale ten times its estimate (:mod:`.estimate`), at least 30 minutes, so a
    slow or shared CPU cannot cut a row that trains; none at full scale (no estimate)."""
    if override is not None:
        return float(override)
    if scale != 'proxy':
        return 0.0
    from .estimate import row_seconds
    return max(1800.0, 10.0 * row_seconds(exp, settings))


def _signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)
    except OSError:                   # ended already
        pass


def run_row(cmd, log, limit=0.0, silence=0.0, out=None):
    """Run ``cmd`` in a new process group, copying its output to ``out`` (default stdout) and
    to the open binary file ``log``; stop it past ``limit`` seconds or after ``silence``
    seconds without output (0: no such limit): SIGTERM to the group, SIGKILL
    :data:`STOP_GRACE` seconds later if it still runs. SIGINT/SIGTERM to this process are
    passed on to the group.

    Returns ``(exit status, why)``; ``why`` (else ``None``) says which limit stopped the row
    and how, or which signal this process passed on.
    """
    out = out or sys.stdout.buffer
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    forwarded, previous = [], {}

    def forward(signum, frame):
        forwarded.append(signum)
        _signal_group(proc, signum)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, forward)
    except ValueError:                # not the main thread: signals stay as they are
        pass
    fd, reading = proc.stdout.fileno(), True
    start = last = time.monotonic()
    why, term_at, killed = None, None, False
    try:
        while reading or proc.poll() is None:
            now = time.monotonic()
            if why is None and limit and now - start > limit:
                why = 'ran longer than its limit of %d s (--row-timeout, ROW_TIMEOUT)' % limit
            elif why is None and silence and reading and now - last > silence:
                why = 'wrote no output for %d s (--row-silence, ROW_SILENCE): hung?' % silence
            if why is not None and term_at is None:
                _signal_group(proc, signal.SIGTERM)
                term_at = now
            elif term_at is not None and not killed and now - term_at > STOP_GRACE:
                _signal_group(proc, signal.SIGKILL)
                killed = True
            if not reading:           # it closed its output but lives on
                time.sleep(0.2)
                continue
            if select.select([fd], [], [], 1.0)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:         # every writer closed: the group has (almost) ended
                    reading = False
                    continue
                last = time.monotonic()
                out.write(chunk)
                out.flush()
                log.write(chunk)
        if why is not None:
            _signal_group(proc, signal.SIGKILL)   # anything the row left behind
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        proc.stdout.close()
    code = proc.wait()
    if why is not None:
        why += '; stopped after %.0f s with SIGTERM%s' % (
            time.monotonic() - start, ' and, %d s later, SIGKILL' % STOP_GRACE if killed else '')
    elif forwarded:
        why = 'stopped by %s' % signal.Signals(forwarded[-1]).name
    return code, why


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
                    try:
                        subprocess.run(s, check=True, stdout=subprocess.DEVNULL,
                                       timeout=DATA_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        _say('[tables] making the proxy data set %s took more than %d s: '
                             'stopped; check %s and run again (command: %s)'
                             % (data, DATA_TIMEOUT, env.folders[data], C.quote(s)))
                        return 1

    failed = []
    for table, exp, cmd in cmds:
        run_dir = env.run_dir(exp.name)
        missing = [n for n in exp.needs if n in failed]
        if missing and not args.dry_run:
            _say('[%s] %s: skipped, it needs row %s, which failed' % (table, exp.name,
                                                                    ', '.join(missing)))
            failed.append(exp.name)
            continue
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
        log_path = os.path.join(run_dir, 'console.log')
        with open(log_path, 'ab') as log:
            code, why = run_row(cmd, log, row_time_limit(exp, args.scale, settings,
                                                         args.row_timeout), args.row_silence)
        if why and why.startswith('stopped by'):
            _say('[%s] %s: %s (exit status %d); continue with the same command'
                 % (table, exp.name, why, code))
            return code or 1
        if why:
            _say('[%s] %s: FAILED: it %s (exit status %d). Its log: %s. The next run of the '
                 'table continues it (from its last checkpoint, if any); the other rows go on.'
                 % (table, exp.name, why, code, log_path))
            failed.append(exp.name)
            continue
        if code:
            _say('[%s] %s: failed (exit status %d); its log: %s'
                 % (table, exp.name, code, log_path))
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
    if failed:
        _say('[tables] %d row(s) failed or skipped: %s' % (len(failed), ', '.join(failed)))
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
