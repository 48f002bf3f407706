"""Reports of the paper's tables and figures from run directories.

A *run directory* is what ``scripts/classification/tables/*.sh`` leave for one row of a table
(``RUNS_DIR/<row>``): ``metrics.jsonl`` written by the training script (one JSON object per
epoch), ``checkpoint-best/net.params``, and three small files written by ``common.sh``:
``argv.txt`` (the training script's arguments, one per line), ``command.sh`` (the whole
command) and ``row.txt`` (``key=value``: row, table, scale, devices, global_batch).

This module holds the paper's numbers as data (:data:`TABLES`), reads runs
(:func:`read_run`), renders each table as Markdown with our result, the paper's and the
difference (:func:`render_table`), and draws Figures 3 and 4 (:func:`plot_figure3a` ...).
``scripts/report.py`` is the command line around it.
"""
import argparse
import glob
import json
import math
import os
import statistics
import tempfile
from collections import OrderedDict

__all__ = ['Row', 'Table', 'TABLES', 'FIGURES', 'TABLE2_REFERENCE', 'TABLE7_TEST',
           'IMAGENET_TRAIN_IMAGES', 'RunInfo', 'read_run', 'argv_value', 'run_scale',
           'metric_value', 'render_table', 'table_rows', 'plot_figure3a', 'plot_figure3b',
           'plot_figure4a', 'logit_gaps', 'plot_figure4b', 'format_number']

IMAGENET_TRAIN_IMAGES = 1281167


class Row(object):
    """One row of a paper table.

    Parameters
    ----------
    label : str
        The row's name in the paper ("+ cosine decay").
    run : str or None
        Run directory name under ``RUNS_DIR`` (a row of the table scripts); for Tables 8/9
        the downstream run.
    paper : dict
        Metric key -> the paper's value (percent, minutes, millions, G multiply-adds).
    model : str, optional
        ``get_model`` name of the paper's network (Table 5's size columns).
    backbone : str, optional
        Classification run whose top-1 goes into the ``backbone_top1`` column (Tables 8/9).
    group : str, optional
        Sub-heading (network or batch size) shown in the first column.
    """

    def __init__(self, label, run, paper, model=None, backbone=None, group=None):
        self.label, self.run, self.paper = label, run, dict(paper)
        self.model, self.backbone, self.group = model, backbone, group

    def __repr__(self):
        return 'Row(%r, %r)' % (self.label, self.run)


class Table(object):
    """A paper table: its rows and the metric columns (each: ours, paper, difference)."""

    def __init__(self, name, title, metrics, rows, note='', script=None, footer=None):
        self.name, self.title, self.metrics, self.rows = name, title, list(metrics), rows
        self.note = note
        self.footer = footer or ('Top-1/top-5: validation accuracy (%) after the last epoch.')
        self.script = script or 'scripts/classification/tables/%s.sh' % name

    def runs(self):
        """Every run directory the table reads (rows and backbones)."""
        out = []
        for r in self.rows:
            for name in (r.run, r.backbone):
                if name and name not in out:
                    out.append(name)
        return out


#: metric key -> (column header, unit shown after our value or '')
METRICS = OrderedDict([
    ('top1', ('Top-1', '')), ('top5', ('Top-5', '')),
    ('time', ('Time/epoch (min)', '')),
    ('params', ('#params (M)', '')), ('macs', ('FLOPs (G mult-adds)', '')),
    ('backbone_top1', ('Backbone top-1', '')),
    ('map', ('mAP', '')), ('pixacc', ('PixAcc', '')), ('miou', ('mIoU', '')),
])


def _r(label, run, top1, top5, **kw):
    return Row(label, run, {'top1': top1, 'top5': top5}, **kw)


TABLE2_REFERENCE = {'r50-baseline': (75.3, 92.2), 'inception-baseline': (78.8, 94.4),
                    'mobilenet-baseline': (70.6, None)}
TABLE7_TEST = {'places365-r50d-efficient': (57.18, 87.28), 'places365-r50d-best': (57.63, 87.82)}

_T3 = [('ResNet-50', 'r50', (4.4, 76.21, 92.97), (13.3, 75.87, 92.70)),
       ('Inception-V3', 'inception', (8.0, 77.50, 93.60), (19.8, 77.32, 93.43)),
       ('MobileNet', 'mobilenet', (3.7, 71.90, 90.47), (6.2, 69.03, 88.71))]

_T6 = OrderedDict([
    ('ResNet-50-D', ('r50d', [(77.16, 93.52), (77.91, 93.81), (78.31, 94.09), (78.67, 94.36),
                              (79.15, 94.58), (79.29, 94.63)])),
    ('Inception-V3', ('inception', [(77.50, 93.60), (78.19, 94.06), (78.40, 94.13),
                                    (78.26, 94.01), (78.77, 94.39), (78.34, 94.16)])),
    ('MobileNet', ('mobilenet', [(71.90, 90.53), (72.83, 91.00), (72.93, 91.14), (71.97, 90.89),
                                 (73.28, 91.30), (72.51, 91.02)])),
])
_T6_STEPS = [('Efficient', 'efficient'), ('+ cosine decay', 'cosine'),
             ('+ label smoothing', 'smooth'), ('+ distill w/o mixup', 'distill'),
             ('+ mixup w/o distill', 'mixup'), ('+ distill w/ mixup', 'distill-mixup')]

_T89_BACKBONES = [('B-standard', 'r50b-baseline', 76.14), ('D-efficient', 'r50d-efficient', 77.16),
                  ('+ cosine', 'r50d-cosine', 77.91), ('+ smooth', 'r50d-smooth', 78.34),
                  ('+ distill w/o mixup', 'r50d-distill', 78.67),
                  ('+ mixup w/o distill', 'r50d-mixup', 79.16),
                  ('+ distill w/ mixup', 'r50d-distill-mixup', 79.29)]
_T8 = [77.54, 78.30, 79.23, 80.71, 80.96, 81.10, 81.33]
_T9 = [(78.08, 37.05), (78.88, 38.88), (79.25, 39.33), (78.64, 38.75), (78.97, 38.90),
       (78.47, 37.99), (78.72, 38.40)]


def _table4_rows():
    paper = {256: [(75.87, 92.70), (76.03, 92.81), (76.19, 93.03), (76.16, 92.97), (76.15, 93.09)],
             1024: [(75.17, 92.54), (75.93, 92.84), (76.37, 92.96), (76.03, 92.86),
                    (76.21, 92.97)]}
    rows = []
    for bs in (256, 1024):
        runs = ['r50-baseline' if bs == 256 else 'r50-bs1024-linear', 'r50-bs%d-warmup' % bs,
                'r50-bs%d-zerogamma' % bs, 'r50-bs%d-nobiasdecay' % bs,
                'r50-bs256-fp16' if bs == 256 else 'r50-efficient']
        labels = ['Linear scaling', '+ LR warmup', '+ Zero gamma', '+ No bias decay', '+ FP16']
        for label, run, (t1, t5) in zip(labels, runs, paper[bs]):
            rows.append(_r(label, run, t1, t5, group='BS=%d' % bs))
    return rows


#: The paper's tables as data: name -> :class:`Table`.
TABLES = OrderedDict([
    ('table2', Table('table2', 'Table 2: baseline (batch 256, FP32, step decay, 120 epochs)',
                     ['top1', 'top5'],
                     [_r('ResNet-50', 'r50-baseline', 75.87, 92.70, model='resnet50_v1'),
                      _r('Inception-V3', 'inception-baseline', 77.32, 93.43, model='inceptionv3'),
                      _r('MobileNet', 'mobilenet-baseline', 69.03, 88.71, model='mobilenet1.0')],
                     note='The paper\'s "Reference" columns (other implementations): ResNet-50 '
                          '75.3 / 92.2, Inception-V3 78.8 / 94.4, MobileNet 70.6 / -.')),
    ('table3', Table('table3', 'Table 3: efficient (batch 1024, FP16) vs baseline (batch 256, '
                     'FP32): time per epoch and accuracy', ['time', 'top1', 'top5'],
                     [Row(setting, '%s-%s' % (prefix, setting.lower()),
                          dict(zip(('time', 'top1', 'top5'), vals)), group=net)
                      for net, prefix, eff, base in _T3
                      for setting, vals in (('Efficient', eff), ('Baseline', base))],
                     note='Time per epoch = training images per epoch / measured training '
                          'throughput (samples_per_sec of metrics.jsonl, median over the '
                          'epochs after the first); the paper measured 8 V100 GPUs.')),
    ('table4', Table('table4', 'Table 4: the efficient-training heuristics one by one '
                     '(ResNet-50)', ['top1', 'top5'], _table4_rows())),
    ('table5', Table('table5', 'Table 5: ResNet-50 tweaks (efficient setting)',
                     ['params', 'macs', 'top1', 'top5'],
                     [Row(label, run, dict(zip(('params', 'macs', 'top1', 'top5'), vals)),
                          model=model)
                      for label, run, model, vals in (
                          ('ResNet-50', 'r50-efficient', 'resnet50_v1', (25, 3.8, 76.21, 92.97)),
                          ('ResNet-50-B', 'r50b-efficient', 'resnet50_v1b',
                           (25, 4.1, 76.66, 93.28)),
                          ('ResNet-50-C', 'r50c-efficient', 'resnet50_v1c',
                           (25, 4.3, 76.87, 93.48)),
                          ('ResNet-50-D', 'r50d-efficient', 'resnet50_v1d',
                           (25, 4.3, 77.16, 93.52)))],
                     note='#params and FLOPs (multiply-adds, 224x224 input, 1000 classes) are '
                          'counted on the paper\'s networks by gluon_tricks.model_zoo.summary '
                          '(scripts/classification/summary.py), no training needed.')),
    ('table6', Table('table6', 'Table 6: training refinements stacked one by one',
                     ['top1', 'top5'],
                     [_r(label, '%s-%s' % (prefix, suffix), t1, t5, group=net)
                      for net, (prefix, vals) in _T6.items()
                      for (label, suffix), (t1, t5) in zip(_T6_STEPS, vals)] +
                     [Row('Teacher ResNet-152-D, cosine + smoothing', 'teacher-r152d-cos-ls', {},
                          group='Teachers'),
                      Row('Teacher ResNet-152-D, cosine + smoothing + mixup',
                          'teacher-r152d-cos-ls-mixup', {}, group='Teachers')],
                     note='The teachers are not in the paper\'s table (no published accuracy).')),
    ('table7', Table('table7', 'Table 7: ResNet-50-D on MIT Places365 (validation set)',
                     ['top1', 'top5'],
                     [_r('ResNet-50-D Efficient', 'places365-r50d-efficient', 56.34, 86.87),
                      _r('ResNet-50-D Best', 'places365-r50d-best', 56.70, 87.33)],
                     note='The paper\'s test-set columns (labels only on the Places365 test '
                          'server): Efficient 57.18 / 87.28, Best 57.63 / 87.82.')),
    ('table8', Table('table8', 'Table 8: Faster-RCNN on Pascal VOC (VOC07 test mAP) by backbone',
                     ['backbone_top1', 'map'],
                     [Row(label, 'det-' + run, {'backbone_top1': t1, 'map': m}, backbone=run)
                      for (label, run, t1), m in zip(_T89_BACKBONES, _T8)],
                     script='scripts/detection/table8.sh',
                     footer='mAP: VOC07 11-point mAP (%) of the final evaluation on VOC 2007 '
                            'test; backbone top-1: the last-epoch validation top-1 (%) of the '
                            'classification run the detector started from.')),
    ('table9', Table('table9', 'Table 9: FCN on ADE20K by backbone', ['backbone_top1', 'pixacc',
                                                                       'miou'],
                     [Row(label, 'seg-' + run, {'backbone_top1': t1, 'pixacc': p, 'miou': m},
                          backbone=run)
                      for (label, run, t1), (p, m) in zip(_T89_BACKBONES, _T9)],
                     script='scripts/segmentation/table9.sh',
                     footer='PixAcc/mIoU (%) of the final evaluation on the ADE20K validation '
                            'set; backbone top-1: the last-epoch validation top-1 (%) of the '
                            'classification run the FCN started from.')),
])

#: figure name -> (caption, the runs it reads)
FIGURES = OrderedDict([
    ('figure3', ('Figure 3: (a) step vs cosine learning-rate schedules with warmup, batch 1024; '
                 '(b) validation top-1 per epoch of ResNet-50-D with each schedule',
                 ['r50d-efficient', 'r50d-cosine'])),
    ('figure4', ('Figure 4: (a) theoretical gap of eq. (5) against eps; (b) gap between the top '
                 'logit and the mean of the others on the validation set, without and with '
                 'label smoothing (ResNet-50-D)', ['r50d-cosine', 'r50d-smooth'])),
])


# ---- reading runs ---------------------------------------------------------------------------

class RunInfo(object):
    """What a run directory holds.

    Attributes
    ----------
    name, path : str
    exists : bool
    metrics : list of dict
        ``metrics.jsonl`` lines, exactly one per epoch (:func:`gluon_tricks.runlog.read_metrics`:
        anything else is an error; ``--resume`` repairs the file).
    argv : list of str
        The training script's arguments (``argv.txt``), empty when unknown.
    meta : dict
        ``row.txt``.
    results : dict
        ``results.json`` (detection/segmentation scripts), empty when absent.
    """

    def __init__(self, name, path):
        self.name, self.path = name, path
        self.exists = os.path.isdir(path)
        self.metrics, self.argv, self.meta, self.results = [], [], {}, {}
        if not self.exists:
            return
        mpath = os.path.join(path, 'metrics.jsonl')
        if os.path.isfile(mpath):
            from .runlog import read_metrics
            self.metrics = read_metrics(mpath)   # one line per epoch, else MetricsError
        apath = os.path.join(path, 'argv.txt')
        if os.path.isfile(apath):
            with open(apath) as f:
                self.argv = [line.rstrip('\n') for line in f if line.rstrip('\n')]
        rpath = os.path.join(path, 'row.txt')
        if os.path.isfile(rpath):
            with open(rpath) as f:
                for line in f:
                    if '=' in line:
                        k, v = line.rstrip('\n').split('=', 1)
                        self.meta[k] = v
        jpath = os.path.join(path, 'results.json')
        if os.path.isfile(jpath):
            try:
                with open(jpath) as f:
                    self.results = json.load(f)
            except ValueError:
                self.results = {}

    @property
    def epochs_done(self):
        return int(self.metrics[-1].get('epoch', len(self.metrics))) if self.metrics else 0

    @property
    def epochs_total(self):
        value = argv_value(self.argv, '--num-epochs') or argv_value(self.argv, '--epochs')
        return int(value) if value else None

    @property
    def finished(self):
        total = self.epochs_total
        return bool(self.metrics) and (total is None or self.epochs_done >= total)

    @property
    def status(self):
        """``'not run'``, ``'k/N epochs'`` (unfinished) or ``'finished'``."""
        if not self.metrics:
            return 'not run'
        if self.finished:
            return 'finished'
        return '%d/%s epochs' % (self.epochs_done, self.epochs_total or '?')

    @property
    def model(self):
        return argv_value(self.argv, '--model') or argv_value(self.argv, '--backbone')

    @property
    def params_file(self):
        path = os.path.join(self.path, 'checkpoint-best', 'net.params')
        return path if os.path.isfile(path) else None

    def describe(self):
        """Short description of what was trained: ``resnet18_v1, 32 px, batch 32, 2 ep``."""
        if not self.argv:
            return ''
        parts = [self.model or '?']
        size = argv_value(self.argv, '--input-size')
        if size:
            parts.append('%s px' % size)
        if self.meta.get('global_batch'):
            parts.append('batch %s' % self.meta['global_batch'])
        dtype = argv_value(self.argv, '--dtype')
        if dtype:
            parts.append(dtype)
        if self.epochs_total:
            parts.append('%d ep' % self.epochs_total)
        return ', '.join(parts)


def argv_value(argv, flag):
    """The value after the last ``flag`` in ``argv`` (``True`` for a bare flag), or None."""
    value = None
    for i, a in enumerate(argv):
        if a == flag:
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            value = nxt if nxt is not None and not nxt.startswith('--') else True
    return value


def read_run(runs_dir, name):
    """:class:`RunInfo` of ``runs_dir/name``."""
    return RunInfo(name, os.path.join(runs_dir, name))


def run_scale(runs_dir):
    """``'proxy'``, ``'full'``, a mix (``'full+proxy'``) or None, from the runs' ``row.txt``."""
    scales = set()
    for path in glob.glob(os.path.join(runs_dir, '*', 'row.txt')):
        with open(path) as f:
            for line in f:
                if line.startswith('scale='):
                    scales.add(line.strip().split('=', 1)[1])
    return '+'.join(sorted(scales)) or None


def _percent(value):
    if value is None:
        return None
    value = float(value)
    return value * 100 if value <= 1.0 else value


def _first_key(record, keys):
    for k in keys:
        if k in record and record[k] is not None:
            return record[k]
    return None


def _last_with(metrics, keys):
    for rec in reversed(metrics):
        v = _first_key(rec, keys)
        if v is not None:
            return v
    return None


def time_per_epoch(run, train_images=None):
    """Minutes per training epoch from the measured throughput of ``run``.

    ``train_images`` defaults to the images the run trained per epoch (``epoch_time x
    samples_per_sec`` of its last epoch). The throughput is the median ``samples_per_sec``
    of the epochs after the first (the first includes graph building), or the first epoch's
    when there is only one.
    """
    ms = [m for m in run.metrics if m.get('samples_per_sec')]
    if not ms:
        return None
    speeds = [float(m['samples_per_sec']) for m in (ms[1:] if len(ms) > 1 else ms)]
    speed = statistics.median(speeds)
    if train_images is None:
        last = ms[-1]
        train_images = float(last.get('epoch_time', 0)) * float(last['samples_per_sec'])
    return train_images / speed / 60.0 if speed > 0 else None


_SUMMARY_CACHE = {}


def _summary(model):
    if model not in _SUMMARY_CACHE:
        from .model_zoo.summary import summarize
        _SUMMARY_CACHE[model] = summarize(model)
    return _SUMMARY_CACHE[model]


def metric_value(row, metric, runs_dir):
    """Our value of ``metric`` for ``row`` (None when the run has not produced it)."""
    if metric in ('params', 'macs'):
        if not row.model:
            return None
        s = _summary(row.model)
        return s['params_m'] if metric == 'params' else s['macs_g']
    if metric == 'backbone_top1':
        run = read_run(runs_dir, row.backbone) if row.backbone else None
        return _percent(run.metrics[-1].get('top1')) if run and run.metrics else None
    run = read_run(runs_dir, row.run) if row.run else None
    if run is None or not (run.metrics or run.results):
        return None
    if metric in ('top1', 'top5'):
        return _percent(_last_with(run.metrics, [metric]))
    if metric == 'time':
        return time_per_epoch(run)
    if metric == 'map':
        v = _first_key(run.results, ['map', 'mAP'])
        return _percent(v if v is not None else _last_with(run.metrics, ['map', 'mAP']))
    keys = {'pixacc': ['pixAcc', 'pixacc', 'pix_acc', 'pixel_accuracy'],
            'miou': ['mIoU', 'miou', 'mean_iou']}[metric]
    v = _first_key(run.results, keys)
    return _percent(v if v is not None else _last_with(run.metrics, keys))


def format_number(value, metric=None):
    """Two decimals (one for the paper's minutes/millions style values), '-' for None."""
    if value is None:
        return '-'
    if metric == 'params':
        return '%.1f' % value
    return '%.2f' % value


def table_rows(table, runs_dir):
    """Rows of a table with our values: list of dicts (label, group, run, status,
    describe, and per metric ``ours``/``paper``/``diff``)."""
    out = []
    for row in table.rows:
        run = read_run(runs_dir, row.run) if row.run else None
        entry = {'label': row.label, 'group': row.group, 'run': row.run,
                 'status': run.status if run else '-',
                 'describe': run.describe() if run else '', 'values': OrderedDict()}
        for m in table.metrics:
            ours = metric_value(row, m, runs_dir)
            if m in ('params', 'macs') and row.model is None:
                ours = None
            paper = row.paper.get(m)
            diff = None
            if ours is not None and paper is not None:
                diff = round(ours - paper, 2) + 0.0  # + 0.0: no '-0.00'
                diff = 0.0 if diff == 0 else diff
            entry['values'][m] = {'ours': ours, 'paper': paper, 'diff': diff}
        out.append(entry)
    return out


def render_table(table, runs_dir, scale=None):
    """Markdown of one table: per metric our value, the paper's and ours - paper."""
    rows = table_rows(table, runs_dir)
    head = ['Row', 'Run (what was trained)', 'Status']
    for m in table.metrics:
        name = METRICS[m][0]
        head += ['%s ours' % name, '%s paper' % name, 'diff']
    lines = ['## %s' % table.title, '']
    if scale and 'proxy' in scale:
        lines += ['*Proxy scale: small networks trained for a few epochs on CPU on tiny data made '
                  'from scikit-learn\'s digits. These numbers show that the pipeline runs end to '
                  'end; they are not ImageNet (or VOC/ADE20K/Places365) results and are not '
                  'expected to match the paper.*', '']
    lines += ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for e in rows:
        label = '%s: %s' % (e['group'], e['label']) if e['group'] else e['label']
        run = '`%s`' % e['run'] if e['run'] else '-'
        if e['describe']:
            run += ' (%s)' % e['describe']
        cells = [label, run, e['status']]
        for m, v in e['values'].items():
            ours = format_number(v['ours'], m)
            if v['ours'] is None and m not in ('params', 'macs', 'backbone_top1'):
                ours = 'not run' if e['status'] == 'not run' else '-'
            cells += [ours, format_number(v['paper'], m),
                      '-' if v['diff'] is None else '%+.2f' % v['diff']]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines.append('')
    extra = _table_extra(table, rows, runs_dir)
    if extra:
        lines += extra + ['']
    if table.note:
        lines += [table.note, '']
    lines += ['%s "diff" is ours minus the paper\'s. Rows: `%s`.' % (table.footer, table.script),
              '']
    return '\n'.join(lines)


def _table_extra(table, rows, runs_dir):
    lines = []
    if table.name == 'table3':
        for net, prefix, eff, base in _T3:
            te = next((e['values']['time']['ours'] for e in rows
                       if e['run'] == '%s-efficient' % prefix), None)
            tb = next((e['values']['time']['ours'] for e in rows
                       if e['run'] == '%s-baseline' % prefix), None)
            ours = '%.2fx' % (tb / te) if te and tb else 'not run'
            lines.append('- %s speed-up of the efficient setting: ours %s, paper %.2fx'
                         % (net, ours, base[0] / eff[0]))
    if table.name == 'table5':
        trained = []
        for row in table.rows:
            run = read_run(runs_dir, row.run)
            if run.model and run.model != row.model:
                size = argv_value(run.argv, '--input-size')
                try:
                    from .model_zoo.summary import summarize
                    s = summarize(run.model, int(size) if size and size is not True else None,
                                  classes=_classes_of(run) or 1000)
                    trained.append('%s -> %s: %.2f M params, %.4f G mult-adds at %d px'
                                   % (row.model, run.model, s['params_m'], s['macs_g'],
                                      s['input_size']))
                except Exception as err:  # pragma: no cover - a model the summary rejects
                    trained.append('%s -> %s (%s)' % (row.model, run.model, err))
        if trained:
            lines.append('Networks actually trained in these runs (the size columns above are '
                         'the paper\'s networks): ' + '; '.join(trained) + '.')
    return lines


def _classes_of(run):
    if run.params_file:
        from .model_zoo.io import classes_in_params
        try:
            return classes_in_params(run.params_file)
        except (ValueError, OSError):
            return None
    return None


# ---- figures --------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_figure3a(out, batch_size=1024, num_epochs=120, warmup_epochs=5,
                  num_samples=IMAGENET_TRAIN_IMAGES, step_epochs=(30, 60, 90)):
    """Figure 3a: step and cosine decay with linear warmup (the paper's setting by default)."""
    from .lr_scheduler import LRScheduler, resolve_lr
    plt = _plt()
    lr, _ = resolve_lr(None, batch_size)
    ipe = int(math.ceil(num_samples / float(batch_size)))
    scheds = OrderedDict([
        ('Step Decay', LRScheduler('step', lr, ipe, num_epochs, warmup_epochs=warmup_epochs,
                                   step_epochs=step_epochs)),
        ('Cosine Decay', LRScheduler('cosine', lr, ipe, num_epochs,
                                     warmup_epochs=warmup_epochs))])
    total = num_epochs * ipe
    stride = max(1, total // 4000)
    iters = sorted(set(range(0, total, stride)) | {total - 1} |
                   {int(e * ipe) + d for e in step_epochs for d in (-1, 0) if 0 < e * ipe < total})
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, s in scheds.items():
        ax.plot([k / float(ipe) for k in iters], [s.lr_at(k) for k in iters], label=name)
    ax.set_xlabel('Epoch')
    ax.set_ylabel('Learning Rate')
    ax.set_xlim(0, num_epochs)
    ax.set_ylim(0, lr * 1.05)
    ax.set_title('batch %d (lr %g by linear scaling), %g warmup epochs'
                 % (batch_size, lr, warmup_epochs), fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_figure3b(out, runs_dir, runs=(('Step Decay', 'r50d-efficient'),
                                       ('Cosine Decay', 'r50d-cosine'))):
    """Figure 3b: validation top-1 per epoch of the runs; None when none has metrics."""
    curves = []
    for label, name in runs:
        run = read_run(runs_dir, name)
        if run.metrics:
            curves.append((label, name, run))
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, name, run in curves:
        ax.plot([m['epoch'] for m in run.metrics], [_percent(m['top1']) for m in run.metrics],
                marker='o' if len(run.metrics) < 20 else None,
                label='%s (%s, %s)' % (label, name, run.describe()))
    ax.set_xlabel('Epoch')
    ax.set_ylabel('Top-1 validation accuracy (%)')
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_figure4a(out, classes=1000, eps_value=0.1, extra_classes=()):
    """Figure 4a: theoretical gap ``log((K-1)(1-eps)/eps)`` against eps; returns the gap at
    ``eps_value`` for ``classes``."""
    import numpy as np
    from .loss import theoretical_gap
    plt = _plt()
    eps = np.linspace(0.01, 0.99, 400)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in [classes] + [c for c in extra_classes if c != classes]:
        gaps = [max(theoretical_gap(float(e), int(k)), 0.0) if e < (k - 1.0) / k else 0.0
                for e in eps]
        ax.plot(eps, gaps, label='K = %d' % k, linestyle='-' if k == classes else '--')
    g = theoretical_gap(eps_value, classes)
    ax.plot([eps_value], [g], 'o', color='C3')
    ax.annotate('%.1f at eps = %g' % (g, eps_value), (eps_value, g), xytext=(10, 5),
                textcoords='offset points')
    ax.set_xlabel('eps')
    ax.set_ylabel('theoretical gap  log((K-1)(1-eps)/eps)')
    ax.set_xlim(0, 1)
    ax.set_ylim(0, None)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return g


def _data_args(argv):
    """The data flags of a run's training command (for its validation loader)."""
    from . import data as gdata
    parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    gdata.add_data_args(parser)
    args, _ = parser.parse_known_args(argv)
    return args


def _float32_params(params_file, workdir):
    """``params_file``, or a float32 copy of it in ``workdir`` when it holds float16 arrays
    (FP16 training saves float16 weights)."""
    import mxnet as mx
    import numpy as np
    arrays = mx.nd.load(params_file)
    if not any(v.dtype == np.float16 for v in arrays.values()):
        return params_file
    path = os.path.join(workdir, 'float32.params')
    mx.nd.save(path, {k: v.astype('float32') for k, v in arrays.items()})
    return path


def logit_gaps(run, num_gpus=0, batch_size=64, max_batches=None):
    """Gap between the largest logit and the mean of the others for every validation image
    of ``run`` (its best checkpoint, its own validation data and preprocessing).

    Returns
    -------
    numpy.ndarray
        One gap per validation image.
    """
    import mxnet as mx
    import numpy as np
    from .data import build_loaders
    from .model_zoo.io import load_model
    if run.params_file is None:
        raise FileNotFoundError('%s has no checkpoint-best/net.params' % run.path)
    ctx = [mx.gpu(i) for i in range(num_gpus)] if num_gpus > 0 else [mx.cpu()]
    with tempfile.TemporaryDirectory() as tmp:
        net = load_model(run.model, _float32_params(run.params_file, tmp), ctx=ctx)
    net.hybridize(static_alloc=True)
    args = _data_args(run.argv)
    args.num_workers = min(getattr(args, 'num_workers', 4) or 4, 4)
    _, val = build_loaders(args, batch_size=batch_size, seed=0, progress=False)
    gaps = []
    for i, batch in enumerate(val):
        if max_batches is not None and i >= max_batches:
            break
        data = batch[0]
        valid = batch[2] if len(batch) > 2 else data.shape[0]
        if valid < data.shape[0]:
            data = data[:valid]
        if valid == 0:
            continue
        z = net(data.as_in_context(ctx[0])).astype('float32').asnumpy().astype(np.float64)
        top = z.max(axis=1)
        rest = (z.sum(axis=1) - top) / (z.shape[1] - 1)
        gaps.append(top - rest)
    return np.concatenate(gaps) if gaps else np.zeros((0,))


def plot_figure4b(out, runs_dir, runs=(('w/o label smoothing', 'r50d-cosine'),
                                       ('w/ label smoothing', 'r50d-smooth')),
                  num_gpus=0, eps=0.1):
    """Figure 4b: histograms of :func:`logit_gaps` of the runs; returns ``{run: stats}`` or
    None when no run has a checkpoint."""
    import numpy as np
    from .loss import theoretical_gap
    found = []
    for label, name in runs:
        run = read_run(runs_dir, name)
        if run.params_file and run.argv:
            found.append((label, run, logit_gaps(run, num_gpus)))
    if not found:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    hi = max(float(np.percentile(g, 99.5)) for _, _, g in found if g.size) if any(
        g.size for _, _, g in found) else 1.0
    bins = np.linspace(min(0.0, min(float(g.min()) for _, _, g in found if g.size)),
                       hi * 1.05 + 1e-6, 60)
    stats = OrderedDict()
    for label, run, g in found:
        ax.hist(g, bins=bins, alpha=0.55, density=True, label='%s (%s)' % (label, run.name))
        stats[run.name] = {'label': label, 'images': int(g.size),
                           'mean': float(g.mean()) if g.size else None,
                           'median': float(np.median(g)) if g.size else None}
    classes = _classes_of(found[0][1]) or 1000
    theory = theoretical_gap(eps, classes)
    ax.axvline(theory, color='k', linestyle='--', linewidth=1,
               label='theoretical gap %.2f (K=%d, eps=%g)' % (theory, classes, eps))
    ax.set_xlabel('top logit - mean of the other logits')
    ax.set_ylabel('density')
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    for s in stats.values():
        s['theoretical_gap'] = theory
        s['classes'] = classes
    return stats
