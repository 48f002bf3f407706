"""Write the paper's tables and figures from the runs of scripts/classification/tables/*.sh.

For each table: ``OUT/tableN.md`` with our result, the paper's and the difference per row
("not run" for rows without metrics). Figures: ``figure3a.png`` (step vs cosine schedules),
``figure3b.png`` (validation top-1 per epoch), ``figure4a.png`` (theoretical gap against
eps), ``figure4b.png`` (logit-gap histograms over the validation set, which loads the two
checkpoints and runs their validation data), each with a ``figureN.md``. ``OUT/README.md``
collects everything and ``OUT/commands.md`` lists the exact command of every run::

    python scripts/report.py --runs runs/full --out runs/full/report
    python scripts/report.py --runs runs/proxy --out docs/proxy --only table4,figure4
"""
import argparse
import json
import os
import shlex
import sys
import time

from gluon_tricks import report as rep

ORDER = list(rep.TABLES) + list(rep.FIGURES)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', required=True, help='RUNS_DIR of the table scripts')
    parser.add_argument('--out', required=True, help='output folder for Markdown and PNG files')
    parser.add_argument('--only', default='',
                        help='comma-separated subset of: %s (default: all)' % ', '.join(ORDER))
    parser.add_argument('--num-gpus', type=int, default=0,
                        help='GPUs for the validation pass of Figure 4b (default 0: CPU)')
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
    return args


def _write(path, text):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def figure3(args, scale):
    fig3a = rep.plot_figure3a(os.path.join(args.out, 'figure3a.png'))
    fig3b = rep.plot_figure3b(os.path.join(args.out, 'figure3b.png'), args.runs)
    caption, runs = rep.FIGURES['figure3']
    lines = ['## %s' % caption, '',
             '(a) the paper\'s setting: batch 1024, lr 0.4, 5 warmup epochs, 120 epochs, '
             'step decay by 10x at 30, 60, 90 vs cosine decay (gluon_tricks.lr_scheduler).', '',
             '![Figure 3a](%s)' % os.path.basename(fig3a), '']
    if fig3b:
        lines += ['(b) validation top-1 per epoch of `%s` (step) and `%s` (cosine).' % tuple(runs),
                  '', '![Figure 3b](figure3b.png)', '']
    else:
        lines += ['(b) not run: needs `%s` and `%s` (scripts/classification/tables/figure3.sh).'
                  % tuple(runs), '']
    return '\n'.join(lines)


def figure4(args, scale):
    classes_seen = set()
    for name in rep.FIGURES['figure4'][1]:
        run = rep.read_run(args.runs, name)
        k = rep._classes_of(run)
        if k:
            classes_seen.add(k)
    gap = rep.plot_figure4a(os.path.join(args.out, 'figure4a.png'), classes=1000,
                            extra_classes=sorted(classes_seen))
    caption, runs = rep.FIGURES['figure4']
    lines = ['## %s' % caption, '',
             '(a) log((K-1)(1-eps)/eps) for K = 1000 (ImageNet): %.2f at eps = 0.1 (paper: '
             '"around 9.1")%s.' % (gap, ', and for the K of the runs here' if classes_seen - {1000}
                                   else ''),
             '', '![Figure 4a](figure4a.png)', '']
    stats = None
    if not args.no_figure4b:
        stats = rep.plot_figure4b(os.path.join(args.out, 'figure4b.png'), args.runs,
                                  num_gpus=args.num_gpus)
    if stats:
        lines += ['(b) gap between the top logit and the mean of the other logits over the '
                  'validation set (best checkpoints).', '', '![Figure 4b](figure4b.png)', '',
                  '| Run | Model | Images | Mean gap | Median gap | Theoretical (eps 0.1) |',
                  '|---|---|---|---|---|---|']
        for name, s in stats.items():
            lines.append('| `%s` | %s | %d | %.2f | %.2f | %.2f (K=%d) |'
                         % (name, s['label'], s['images'], s['mean'], s['median'],
                            s['theoretical_gap'], s['classes']))
        lines.append('')
        _write(os.path.join(args.out, 'figure4b.json'), json.dumps(stats, indent=1) + '\n')
    elif args.no_figure4b:
        lines += ['(b) skipped (--no-figure4b).', '']
    else:
        lines += ['(b) not run: needs the checkpoints of `%s` (without label smoothing) and `%s` '
                  '(with it) (scripts/classification/tables/figure4.sh).' % tuple(runs), '']
    return '\n'.join(lines)


def commands_md(runs_dir):
    lines = ['# Commands of every run', '',
             'Written by `scripts/classification/tables/common.sh` into each run directory '
             '(`command.sh`).', '']
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name, 'command.sh')
        if not os.path.isfile(path):
            continue
        run = rep.read_run(runs_dir, name)
        with open(path) as f:
            cmd = f.read().strip().replace(REPO + os.sep, '')
        lines += ['### `%s` (%s, %s)' % (name, run.meta.get('table', '?'), run.status), '',
                  '```', cmd, '```', '']
    return '\n'.join(lines)


def readme(args, scale):
    lines = ['# Reproduction report', '']
    if scale and 'proxy' in scale:
        lines += ['**Proxy scale.** These tables and figures come from the proxy run '
                  '(`SCALE=proxy`): the same rows and flags as the paper\'s tables, but small '
                  'networks (ResNet-18 variants for ResNet-50, ResNet-34-D as the teacher), '
                  'scikit-learn\'s 10-class 8x8 digits upscaled to 32 px (75 px for '
                  'Inception-V3) in place of ImageNet and Places365, digits pasted on 96 px '
                  'canvases in VOC and ADE20K layouts for Tables 8 and 9, batches divided by 8, '
                  'every epoch count scaled from 120 to a couple of epochs, float32 instead of '
                  'float16, on a 2-core CPU shared with other jobs. '
                  '**They show that the pipeline works end to end (training, skipping, '
                  'report, figures); they are not ImageNet accuracies** and the "diff" columns '
                  'are not expected to be small.', '']
    elif scale:
        lines += ['Scale: %s.' % scale, '']
    for note in args.note:
        lines += [note, '']
    shown, skip = [], False
    for a in sys.argv[1:]:
        if skip or a.startswith('--produced-by') or a.startswith('--note'):
            skip = a in ('--produced-by', '--note')
            continue
        shown.append(a)
    cmd = ' '.join(shlex.quote(a) for a in ['python', 'scripts/report.py'] + shown)
    if args.produced_by:
        lines += ['The runs were produced by:', '', '```'] + args.produced_by + ['```', '']
    runs = os.path.abspath(args.runs).replace(REPO + os.sep, '')
    lines += ['Runs: `%s`. Report written %s by `%s`. The exact command of every run is in '
              '[commands.md](commands.md).' % (runs, time.strftime('%Y-%m-%d %H:%M'),
                                               cmd.replace(REPO + os.sep, '')), '']
    for name in ORDER:
        path = os.path.join(args.out, name + '.md')
        if os.path.isfile(path):
            with open(path) as f:
                lines += [f.read().rstrip(), '']
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    scale = rep.run_scale(args.runs)
    written = []
    for name in args.only:
        if name in rep.TABLES:
            text = rep.render_table(rep.TABLES[name], args.runs, scale)
        elif name == 'figure3':
            text = figure3(args, scale)
        else:
            text = figure4(args, scale)
        path = os.path.join(args.out, name + '.md')
        _write(path, text + '\n')
        written.append(path)
    _write(os.path.join(args.out, 'commands.md'), commands_md(args.runs) + '\n')
    _write(os.path.join(args.out, 'README.md'), readme(args, scale) + '\n')
    for path in written:
        print('wrote %s' % path)
    print('wrote %s' % os.path.join(args.out, 'README.md'))
    return written


if __name__ == '__main__':
    main()
