"""A paper table as Markdown: per metric our value, the paper's and ours - paper.

The rows, their runs and the paper's numbers come from :mod:`tools.experiments.tables`. A row
trained with several seeds (``NAME-seedS`` beside ``NAME``) shows the mean over its runs and
the spread (sample standard deviation); consecutive rows of a group whose means differ by less
than their spread are named under the table.
"""
import statistics
from collections import OrderedDict

from tools.experiments import TABLES
from tools.experiments.scale import proxy

from .runs import percent, read_run, seed_runs

__all__ = ['METRICS', 'render_table', 'table_rows', 'metric_value', 'time_per_epoch',
           'format_number', 'run_scale', 'PROXY_NOTE']

#: metric key -> column header
METRICS = OrderedDict([
    ('top1', 'Top-1'), ('top5', 'Top-5'), ('time', 'Time/epoch (min)'),
    ('params', '#params (M)'), ('macs', 'FLOPs (G mult-adds)'),
    ('backbone_top1', 'Backbone top-1'), ('map', 'mAP'), ('pixacc', 'PixAcc'), ('miou', 'mIoU'),
])
_KEYS = {'top1': ('top1',), 'top5': ('top5',), 'map': ('map', 'mAP'),
         'pixacc': ('pixAcc', 'pixacc', 'pix_acc', 'pixel_accuracy'),
         'miou': ('mIoU', 'miou', 'mean_iou')}
PROXY_NOTE = ('*Proxy scale: small networks trained for a few epochs on CPU on tiny data made '
              'from scikit-learn\'s digits. These numbers show that the pipeline runs end to end '
              'and that every row learns; they are not ImageNet (or VOC/ADE20K/Places365) '
              'results and are not expected to match the paper.*')


def time_per_epoch(run, train_images=None):
    """Minutes per training epoch from the measured throughput of ``run``: training images
    (default: ``epoch_time x samples_per_sec`` of its last epoch) / the median
    ``samples_per_sec`` of the epochs after the first (which includes graph building)."""
    ms = [m for m in run.metrics if m.get('samples_per_sec')]
    if not ms:
        return None
    speed = statistics.median(float(m['samples_per_sec']) for m in (ms[1:] or ms))
    if train_images is None:
        train_images = float(ms[-1].get('epoch_time', 0)) * float(ms[-1]['samples_per_sec'])
    return train_images / speed / 60.0 if speed > 0 else None


_SUMMARY = {}


def _summary(model, input_size=None, classes=1000):
    key = (model, input_size, classes)
    if key not in _SUMMARY:
        from gluon_tricks.model_zoo.summary import summarize
        _SUMMARY[key] = summarize(model, input_size, classes=classes)
    return _SUMMARY[key]


def _run_value(run, metric):
    if not (run.metrics or run.results):
        return None
    if metric == 'time':
        return time_per_epoch(run)
    return percent(run.last(*_KEYS[metric]))


def metric_value(row, metric, runs_dir):
    """Our value of ``metric`` for table row ``row``: ``(mean, spread, runs)`` over the row's
    runs with a value (spread None for one run); ``(None, None, 0)`` when there is none."""
    if metric in ('params', 'macs'):
        if not row.model:
            return None, None, 0
        s = _summary(row.model)
        return (s['params_m'] if metric == 'params' else s['macs_g']), None, 1
    if metric == 'backbone_top1':
        runs = seed_runs(runs_dir, row.backbone)[:1] if row.backbone else []
        metric = 'top1'
    else:
        runs = seed_runs(runs_dir, row.run.name)
    values = [v for v in (_run_value(r, metric) for r in runs) if v is not None]
    if not values:
        return None, None, 0
    spread = statistics.stdev(values) if len(values) > 1 else None
    return statistics.mean(values), spread, len(values)


def format_number(value, metric=None):
    """Two decimals (one for the paper's millions), '-' for None."""
    if value is None:
        return '-'
    return '%.1f' % value if metric == 'params' else '%.2f' % value


def table_rows(table, runs_dir):
    """The rows of ``table`` with our values: dicts (label, group, run, status, describe,
    runs, values: metric -> ours / spread / paper / diff)."""
    out = []
    for row in table.rows:
        run = read_run(runs_dir, row.run.name)
        entry = {'label': row.label, 'group': row.group, 'run': row.run.name,
                 'status': run.status, 'describe': run.describe(), 'runs': 1,
                 'values': OrderedDict()}
        for m in table.metrics:
            ours, spread, n = metric_value(row, m, runs_dir)
            if m not in ('params', 'macs', 'backbone_top1'):
                entry['runs'] = max(entry['runs'], n)
            paper = row.paper.get(m)
            diff = None
            if ours is not None and paper is not None:
                diff = round(ours - paper, 2) + 0.0   # + 0.0: no '-0.00'
            entry['values'][m] = {'ours': ours, 'spread': spread, 'paper': paper, 'diff': diff}
        out.append(entry)
    return out


def _ours(v, metric, status):
    if v['ours'] is None:
        if metric in ('params', 'macs', 'backbone_top1'):
            return '-'
        return 'not run' if status == 'not run' else '-'
    text = format_number(v['ours'], metric)
    if v['spread'] is not None:
        text += ' ± %.2f' % v['spread']
    return text


def render_table(table, runs_dir, scale=None):
    """Markdown of ``table`` (a :class:`tools.experiments.Table`)."""
    rows = table_rows(table, runs_dir)
    head = ['Row', 'Run (what was trained)', 'Status']
    for m in table.metrics:
        head += ['%s ours' % METRICS[m], '%s paper' % METRICS[m], 'diff']
    lines = ['## %s' % table.title, '']
    if scale and 'proxy' in scale:
        lines += [PROXY_NOTE, '']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for e in rows:
        label = '%s: %s' % (e['group'], e['label']) if e['group'] else e['label']
        run = '`%s`' % e['run']
        details = [d for d in (e['describe'], '%d seeds' % e['runs'] if e['runs'] > 1 else '')
                   if d]
        if details:
            run += ' (%s)' % ', '.join(details)
        cells = [label, run, e['status']]
        for m, v in e['values'].items():
            cells += [_ours(v, m, e['status']), format_number(v['paper'], m),
                      '-' if v['diff'] is None else '%+.2f' % v['diff']]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    extra = _spread_notes(table, rows) + _table_extra(table, rows, runs_dir)
    if extra:
        lines += extra + ['']
    if table.note:
        lines += [table.note, '']
    lines += ['%s "diff" is ours minus the paper\'s; "a ± s": mean and standard deviation over '
              'the seeds of a row. Rows: `%s`.' % (table.footer, table.script), '']
    return '\n'.join(lines)


def _spread_notes(table, rows):
    """Consecutive rows of a group whose top-1 means differ by less than their spread."""
    notes = []
    for prev, cur in zip(rows, rows[1:]):
        if prev['group'] != cur['group'] or 'top1' not in cur['values']:
            continue
        a, b = prev['values']['top1'], cur['values']['top1']
        spreads = [s for s in (a['spread'], b['spread']) if s is not None]
        if a['ours'] is None or b['ours'] is None or not spreads:
            continue
        delta, spread = b['ours'] - a['ours'], max(spreads)
        verdict = 'less than the run-to-run spread, not a difference' if abs(delta) < spread \
            else 'more than the run-to-run spread'
        notes.append('- %s: "%s" vs "%s": %+.2f top-1, %s (%.2f)'
                     % (cur['group'], cur['label'], prev['label'], delta, verdict, spread))
    return notes


def _table_extra(table, rows, runs_dir):
    lines = []
    if table.name == 'table3':
        by_run = {e['run']: e['values']['time']['ours'] for e in rows}
        for i in range(0, len(table.rows), 2):
            eff, base = table.rows[i], table.rows[i + 1]
            te, tb = by_run[eff.run.name], by_run[base.run.name]
            ours = '%.2fx' % (tb / te) if te and tb else 'not run'
            lines.append('- %s speed-up of the efficient setting: ours %s, paper %.2fx'
                         % (eff.group, ours, base.paper['time'] / eff.paper['time']))
    if table.name == 'table5':
        trained = []
        for row in table.rows:
            run = read_run(runs_dir, row.run.name)
            if run.model and run.model != row.model:
                try:
                    s = _summary(run.model, run.get('input_size'), run.get('classes') or 1000)
                    trained.append('%s -> %s: %.2f M params, %.4f G mult-adds at %d px'
                                   % (row.model, run.model, s['params_m'], s['macs_g'],
                                      s['input_size']))
                except Exception as err:  # pragma: no cover - a model the summary rejects
                    trained.append('%s -> %s (%s)' % (row.model, run.model, err))
        if trained:
            lines.append('Networks actually trained in these runs (the size columns above are '
                         'the paper\'s networks): ' + '; '.join(trained) + '.')
    return lines


def run_scale(runs_dir):
    """``'full'``, ``'proxy'``, ``'full+proxy'`` or None: each run with a configuration is
    compared with its row at full scale (network and epochs)."""
    scales = set()
    for table in TABLES.values():
        for exp in table.experiments:
            run = read_run(runs_dir, exp.name)
            if not run.config:
                continue
            full = run.model == exp.model and run.epochs_total == exp.num_epochs
            small = proxy(exp)
            scales.add('full' if full else 'proxy' if run.model == small.model else 'full')
    return '+'.join(sorted(scales)) or None
