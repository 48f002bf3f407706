"""Write the paper's tables and figures from the runs of the table scripts.

For each table ``OUT/tableN.md`` with our result, the paper's and the difference per row ("not
run" for rows without metrics; mean and spread for rows trained with several seeds); Figures
3 and 4 as PNGs with a ``figureN.md`` each (4b evaluates two checkpoints on their validation
set); ``OUT/commands.md`` (the command of every run) and ``OUT/README.md`` (everything)::

    python scripts/report.py --runs runs/full --out runs/full/report
    python scripts/report.py --runs runs/proxy --out docs/proxy --only table4,figure4
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tools.report import ORDER, write_report  # noqa: E402
from tools.report.write import shell_command  # noqa: E402
from gluon_tricks.sections import first_paragraph


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('--runs', required=True, help='RUNS_DIR of the table scripts')
    parser.add_argument('--out', required=True, help='output folder for Markdown and PNG files')
    parser.add_argument('--only', default='',
                        help='comma-separated subset of: %s (default: all)' % ', '.join(ORDER))
    parser.add_argument('--num-gpus', type=int, default=0,
                        help='GPUs for the validation pass of Figure 4b (default 0: CPU)')
    parser.add_argument('--data-dir', default=None,
                        help='validation data of Figure 4b when a run does not name its own '
                             '(default: RUNS/data/rec, the proxy digits, when it exists)')
    parser.add_argument('--produced-by', action='append', default=[], metavar='COMMAND',
                        help='a command that produced the runs, listed in README.md '
                             '(repeatable)')
    parser.add_argument('--note', action='append', default=[], metavar='TEXT',
                        help='a paragraph added to README.md (repeatable)')
    parser.add_argument('--no-figure4b', action='store_true',
                        help='skip Figure 4b (it evaluates two checkpoints on the validation set)')
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(',') if s.strip()] or list(ORDER)
    unknown = [s for s in args.only if s not in ORDER]
    if unknown:
        parser.error('unknown --only entries %s; valid: %s' % (', '.join(unknown),
                                                               ', '.join(ORDER)))
    if not os.path.isdir(args.runs):
        parser.error('--runs %s is not a directory' % args.runs)
    if args.data_dir is None and os.path.isdir(os.path.join(args.runs, 'data', 'rec')):
        args.data_dir = os.path.join(args.runs, 'data', 'rec')
    return args


def main(argv=None):
    args = parse_args(argv)
    shown = [a for a in (sys.argv[1:] if argv is None else argv)]
    command = shell_command(['python', 'scripts/report.py'] + _without(shown, ('--produced-by',
                                                                              '--note')))
    for path in write_report(args.runs, args.out, args.only, not args.no_figure4b,
                             args.num_gpus, args.data_dir, args.note, args.produced_by, command):
        print('wrote %s' % path)


def _without(argv, flags):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        elif not any(a.startswith(f + '=') for f in flags):
            out.append(a)
    return out


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
