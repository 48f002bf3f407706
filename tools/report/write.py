"""Write the report of a runs folder: ``tableN.md``, ``figureN.md`` and their PNGs,
``commands.md`` (the command of every run) and ``README.md`` (everything, in order)."""
import json
import os
import shlex
import time

from tools.experiments import FIGURES, TABLES

from . import figures as F
from .runs import read_run
from .tables import render_table, run_scale

__all__ = ['ORDER', 'write_report']

ORDER = list(TABLES) + list(FIGURES)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write(path, text):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def _names(name):
    return tuple(e.name for e in FIGURES[name].experiments)


def figure3(runs_dir, out):
    fig3a = F.plot_figure3a(os.path.join(out, 'figure3a.png'))
    fig3b = F.plot_figure3b(os.path.join(out, 'figure3b.png'), runs_dir)
    fig = FIGURES['figure3']
    lines = ['## %s' % fig.caption, '',
             '(a) the paper\'s setting: batch 1024, lr 0.4, 5 warmup epochs, 120 epochs, '
             'step decay by 10x at 30, 60, 90 vs cosine decay (gluon_tricks.lr_scheduler).', '',
             '![Figure 3a](%s)' % os.path.basename(fig3a), '']
    if fig3b:
        lines += ['(b) validation top-1 per epoch of `%s` (step) and `%s` (cosine).'
                  % _names('figure3'), '', '![Figure 3b](figure3b.png)', '']
    else:
        lines += ['(b) not run: needs `%s` and `%s` (%s).' % (_names('figure3') + (fig.script,)),
                  '']
    return '\n'.join(lines)


def figure4(runs_dir, out, figure4b=True, num_gpus=0, data_dir=None):
    fig = FIGURES['figure4']
    seen = {F.classes_of(read_run(runs_dir, n)) for n in _names('figure4')} - {None}
    gap = F.plot_figure4a(os.path.join(out, 'figure4a.png'), classes=1000,
                          extra_classes=sorted(seen))
    lines = ['## %s' % fig.caption, '',
             '(a) log((K-1)(1-eps)/eps) for K = 1000 (ImageNet): %.2f at eps = 0.1 (paper: '
             '"around 9.1")%s.' % (gap, ', and for the K of the runs here' if seen - {1000}
                                   else ''),
             '', '![Figure 4a](figure4a.png)', '']
    stats = None
    if figure4b:
        stats = F.plot_figure4b(os.path.join(out, 'figure4b.png'), runs_dir,
                                num_gpus=num_gpus, data_dir=data_dir)
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
        _write(os.path.join(out, 'figure4b.json'), json.dumps(stats, indent=1) + '\n')
    elif not figure4b:
        lines += ['(b) skipped (--no-figure4b).', '']
    else:
        lines += ['(b) not run: needs the checkpoints of `%s` (without label smoothing) and '
                  '`%s` (with it) (%s).' % (_names('figure4') + (fig.script,)), '']
    return '\n'.join(lines)


def commands_md(runs_dir):
    lines = ['# Commands of every run', '',
             'Written by the runner (`tools/experiments/run.py`) into each run directory '
             '(`command.sh`).', '']
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name, 'command.sh')
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            cmd = f.read().strip().replace(REPO + os.sep, '')
        lines += ['### `%s` (%s)' % (name, read_run(runs_dir, name).status), '', '```', cmd,
                  '```', '']
    return '\n'.join(lines)


def readme(runs_dir, out, scale, command, notes=(), produced_by=()):
    lines = ['# Reproduction report', '']
    if scale and 'proxy' in scale:
        lines += ['**Proxy scale.** These tables and figures come from the proxy run '
                  '(`SCALE=proxy`): the same rows and flags as the paper\'s tables with the '
                  'substitutions of `tools/experiments/scale.py`: small networks (ResNet-18 '
                  'variants for ResNet-50, ResNet-34-D as the teacher), scikit-learn\'s 10-class '
                  '8x8 digits upscaled to 32 px (75 px for Inception-V3) in place of ImageNet '
                  'and Places365, digits pasted on 96 px canvases in VOC and ADE20K layouts for '
                  'Tables 8 and 9, smaller batches (the lr by the same linear scaling rule), a '
                  'few epochs, float32 instead of float16, on a 2-core CPU. **They show that the '
                  'pipeline works end to end and that every row learns; they are not ImageNet '
                  'accuracies** and the "diff" columns are not expected to be small.', '']
    elif scale:
        lines += ['Scale: %s.' % scale, '']
    for note in notes:
        lines += [note, '']
    if produced_by:
        lines += ['The runs were produced by:', '', '```'] + list(produced_by) + ['```', '']
    runs = os.path.abspath(runs_dir).replace(REPO + os.sep, '')
    lines += ['Runs: `%s`. Report written %s by `%s`. The exact command of every run is in '
              '[commands.md](commands.md).' % (runs, time.strftime('%Y-%m-%d %H:%M'),
                                               command.replace(REPO + os.sep, '')), '']
    for name in ORDER:
        path = os.path.join(out, name + '.md')
        if os.path.isfile(path):
            with open(path) as f:
                lines += [f.read().rstrip(), '']
    return '\n'.join(lines)


def write_report(runs_dir, out, only=None, figure4b=True, num_gpus=0, data_dir=None,
                 notes=(), produced_by=(), command='python scripts/report.py'):
    """Write the Markdown/PNG files of ``only`` (default: every table and figure), then
    ``commands.md`` and ``README.md``; returns the paths written."""
    os.makedirs(out, exist_ok=True)
    scale = run_scale(runs_dir)
    written = []
    for name in only or ORDER:
        if name in TABLES:
            text = render_table(TABLES[name], runs_dir, scale)
        elif name == 'figure3':
            text = figure3(runs_dir, out)
        else:
            text = figure4(runs_dir, out, figure4b, num_gpus, data_dir)
        path = os.path.join(out, name + '.md')
        _write(path, text + '\n')
        written.append(path)
    _write(os.path.join(out, 'commands.md'), commands_md(runs_dir) + '\n')
    path = os.path.join(out, 'README.md')
    _write(path, readme(runs_dir, out, scale, command, notes, produced_by) + '\n')
    return written + [path]


def shell_command(argv):
    return ' '.join(shlex.quote(a) for a in argv)
