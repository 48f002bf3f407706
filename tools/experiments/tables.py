"""The paper's tables and figures: which rows each shows, in the paper's order, with the
paper's numbers (percent, minutes, millions, G multiply-adds). The runs are the
:class:`~tools.experiments.rows.Experiment` objects of :mod:`tools.experiments.rows`; their
names are written only there.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

from . import rows as R
from .rows import Experiment

__all__ = ['TableRow', 'Table', 'Figure', 'TABLES', 'FIGURES', 'TABLE2_REFERENCE',
           'TABLE7_TEST', 'IMAGENET_TRAIN_IMAGES', 'runs_of']

IMAGENET_TRAIN_IMAGES = 1281167


@dataclass(frozen=True)
class TableRow:
    """One line of a paper table.

    Attributes
    ----------
    label : str
        The row's name in the paper ("+ cosine decay").
    run : Experiment
        The run that gives our numbers (for Tables 8/9 the detector / FCN).
    paper : dict
        Metric -> the paper's value.
    group : str or None
        Sub-heading (network or batch size) shown in the first column.
    model : str or None
        The paper's network for Table 5's size columns (model summary, no training).
    """
    label: str
    run: Experiment
    paper: dict = field(default_factory=dict)
    group: Optional[str] = None
    model: Optional[str] = None

    @property
    def backbone(self):
        """Name of the classification run the downstream run started from (Tables 8/9)."""
        return self.run.backbone_row


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    metrics: tuple
    rows: tuple
    note: str = ''
    footer: str = 'Top-1/top-5: validation accuracy (%) after the last epoch.'
    script: str = ''

    @property
    def experiments(self):
        """The runs of the table in row order (each once)."""
        out = OrderedDict()
        for r in self.rows:
            out.setdefault(r.run.name, r.run)
        return list(out.values())


@dataclass(frozen=True)
class Figure:
    name: str
    caption: str
    rows: tuple             # ((label, Experiment), ...)
    script: str = ''

    @property
    def experiments(self):
        return [e for _, e in self.rows]


def _cls(label, run, top1, top5, **kw):
    return TableRow(label, run, {'top1': top1, 'top5': top5}, **kw)


TABLE2_REFERENCE = {'r50-baseline': (75.3, 92.2), 'inception-baseline': (78.8, 94.4),
                    'mobilenet-baseline': (70.6, None)}
TABLE7_TEST = {'places365-r50d-efficient': (57.18, 87.28), 'places365-r50d-best': (57.63, 87.82)}

# Table 3: (network, efficient run, baseline run, (time, top1, top5) efficient, ... baseline)
_T3 = [('ResNet-50', R.r50_efficient, R.r50_baseline, (4.4, 76.21, 92.97), (13.3, 75.87, 92.70)),
       ('Inception-V3', R.inception_efficient, R.inception_baseline, (8.0, 77.50, 93.60),
        (19.8, 77.32, 93.43)),
       ('MobileNet', R.mobilenet_efficient, R.mobilenet_baseline, (3.7, 71.90, 90.47),
        (6.2, 69.03, 88.71))]
_T4 = {256: [R.r50_baseline, R.r50_bs256_warmup, R.r50_bs256_zerogamma, R.r50_bs256_nobiasdecay,
             R.r50_bs256_fp16],
       1024: [R.r50_bs1024_linear, R.r50_bs1024_warmup, R.r50_bs1024_zerogamma,
              R.r50_bs1024_nobiasdecay, R.r50_efficient]}
_T4_PAPER = {256: [(75.87, 92.70), (76.03, 92.81), (76.19, 93.03), (76.16, 92.97), (76.15, 93.09)],
             1024: [(75.17, 92.54), (75.93, 92.84), (76.37, 92.96), (76.03, 92.86),
                    (76.21, 92.97)]}
_T4_LABELS = ['Linear scaling', '+ LR warmup', '+ Zero gamma', '+ No bias decay', '+ FP16']
_T5 = [('ResNet-50', R.r50_efficient, 'resnet50_v1', (25, 3.8, 76.21, 92.97)),
       ('ResNet-50-B', R.r50b_efficient, 'resnet50_v1b', (25, 4.1, 76.66, 93.28)),
       ('ResNet-50-C', R.r50c_efficient, 'resnet50_v1c', (25, 4.3, 76.87, 93.48)),
       ('ResNet-50-D', R.r50d_efficient, 'resnet50_v1d', (25, 4.3, 77.16, 93.52))]
_T6 = [('ResNet-50-D', [R.r50d_efficient, R.r50d_cosine, R.r50d_smooth, R.r50d_distill,
                        R.r50d_mixup, R.r50d_distill_mixup],
        [(77.16, 93.52), (77.91, 93.81), (78.31, 94.09), (78.67, 94.36), (79.15, 94.58),
         (79.29, 94.63)]),
       ('Inception-V3', R.inception_rows, [(77.50, 93.60), (78.19, 94.06), (78.40, 94.13),
                                           (78.26, 94.01), (78.77, 94.39), (78.34, 94.16)]),
       ('MobileNet', R.mobilenet_rows, [(71.90, 90.53), (72.83, 91.00), (72.93, 91.14),
                                        (71.97, 90.89), (73.28, 91.30), (72.51, 91.02)])]
_T6_LABELS = ['Efficient', '+ cosine decay', '+ label smoothing', '+ distill w/o mixup',
              '+ mixup w/o distill', '+ distill w/ mixup']
_T89_LABELS = ['B-standard', 'D-efficient', '+ cosine', '+ smooth', '+ distill w/o mixup',
               '+ mixup w/o distill', '+ distill w/ mixup']
_T89_TOP1 = [76.14, 77.16, 77.91, 78.34, 78.67, 79.16, 79.29]
_T8 = [77.54, 78.30, 79.23, 80.71, 80.96, 81.10, 81.33]
_T9 = [(78.08, 37.05), (78.88, 38.88), (79.25, 39.33), (78.64, 38.75), (78.97, 38.90),
       (78.47, 37.99), (78.72, 38.40)]
_CLS = 'scripts/classification/tables/%s.sh'

#: The paper's tables: name -> :class:`Table`.
TABLES = OrderedDict((t.name, t) for t in [
    Table('table2', 'Table 2: baseline (batch 256, FP32, step decay, 120 epochs)',
          ('top1', 'top5'),
          (_cls('ResNet-50', R.r50_baseline, 75.87, 92.70),
           _cls('Inception-V3', R.inception_baseline, 77.32, 93.43),
           _cls('MobileNet', R.mobilenet_baseline, 69.03, 88.71)),
          note='The paper\'s "Reference" columns (other implementations): ResNet-50 '
               '75.3 / 92.2, Inception-V3 78.8 / 94.4, MobileNet 70.6 / -.',
          script=_CLS % 'table2'),
    Table('table3', 'Table 3: efficient (batch 1024, FP16) vs baseline (batch 256, FP32): '
          'time per epoch and accuracy', ('time', 'top1', 'top5'),
          tuple(TableRow(setting, run, dict(zip(('time', 'top1', 'top5'), vals)), group=net)
                for net, eff, base, veff, vbase in _T3
                for setting, run, vals in (('Efficient', eff, veff), ('Baseline', base, vbase))),
          note='Time per epoch = training images per epoch / measured training throughput '
               '(samples_per_sec of metrics.jsonl, median over the epochs after the first); '
               'the paper measured 8 V100 GPUs.',
          script=_CLS % 'table3'),
    Table('table4', 'Table 4: the efficient-training heuristics one by one (ResNet-50)',
          ('top1', 'top5'),
          tuple(_cls(label, run, t1, t5, group='BS=%d' % bs)
                for bs in (256, 1024)
                for label, run, (t1, t5) in zip(_T4_LABELS, _T4[bs], _T4_PAPER[bs])),
          script=_CLS % 'table4'),
    Table('table5', 'Table 5: ResNet-50 tweaks (efficient setting)',
          ('params', 'macs', 'top1', 'top5'),
          tuple(TableRow(label, run, dict(zip(('params', 'macs', 'top1', 'top5'), vals)),
                         model=model) for label, run, model, vals in _T5),
          note='#params and FLOPs (multiply-adds, 224x224 input, 1000 classes) are counted on '
               'the paper\'s networks by gluon_tricks.model_zoo.summary '
               '(scripts/classification/summary.py), no training needed.',
          script=_CLS % 'table5'),
    Table('table6', 'Table 6: training refinements stacked one by one', ('top1', 'top5'),
          tuple(_cls(label, run, t1, t5, group=net)
                for net, runs, vals in _T6
                for label, run, (t1, t5) in zip(_T6_LABELS, runs, vals)) +
          (TableRow('Teacher ResNet-152-D, cosine + smoothing', R.teacher_cos_ls,
                    group='Teachers'),
           TableRow('Teacher ResNet-152-D, cosine + smoothing + mixup', R.teacher_cos_ls_mixup,
                    group='Teachers')),
          note='The teachers are not in the paper\'s table (no published accuracy).',
          script=_CLS % 'table6'),
    Table('table7', 'Table 7: ResNet-50-D on MIT Places365 (validation set)', ('top1', 'top5'),
          (_cls('ResNet-50-D Efficient', R.places_efficient, 56.34, 86.87),
           _cls('ResNet-50-D Best', R.places_best, 56.70, 87.33)),
          note='The paper\'s test-set columns (labels only on the Places365 test server): '
               'Efficient 57.18 / 87.28, Best 57.63 / 87.82.',
          script=_CLS % 'table7'),
    Table('table8', 'Table 8: Faster-RCNN on Pascal VOC (VOC07 test mAP) by backbone',
          ('backbone_top1', 'map'),
          tuple(TableRow(label, run, {'backbone_top1': t1, 'map': m})
                for label, run, t1, m in zip(_T89_LABELS, R.detection_rows, _T89_TOP1, _T8)),
          footer='mAP: VOC07 11-point mAP (%) of the final evaluation on VOC 2007 test; '
                 'backbone top-1: the last-epoch validation top-1 (%) of the classification '
                 'run the detector started from.',
          script='scripts/detection/table8.sh'),
    Table('table9', 'Table 9: FCN on ADE20K by backbone', ('backbone_top1', 'pixacc', 'miou'),
          tuple(TableRow(label, run, {'backbone_top1': t1, 'pixacc': p, 'miou': m})
                for label, run, t1, (p, m) in zip(_T89_LABELS, R.segmentation_rows, _T89_TOP1,
                                                  _T9)),
          footer='PixAcc/mIoU (%) of the final evaluation on the ADE20K validation set; '
                 'backbone top-1: the last-epoch validation top-1 (%) of the classification '
                 'run the FCN started from.',
          script='scripts/segmentation/table9.sh'),
])

#: The paper's figures: name -> :class:`Figure`.
FIGURES = OrderedDict((f.name, f) for f in [
    Figure('figure3', 'Figure 3: (a) step vs cosine learning-rate schedules with warmup, batch '
           '1024; (b) validation top-1 per epoch of ResNet-50-D with each schedule',
           (('Step Decay', R.r50d_efficient), ('Cosine Decay', R.r50d_cosine)),
           script=_CLS % 'figure3'),
    Figure('figure4', 'Figure 4: (a) theoretical gap of eq. (5) against eps; (b) gap between '
           'the top logit and the mean of the others on the validation set, without and with '
           'label smoothing (ResNet-50-D)',
           (('w/o label smoothing', R.r50d_cosine), ('w/ label smoothing', R.r50d_smooth)),
           script=_CLS % 'figure4'),
])


def runs_of(name):
    """The rows a table or figure trains (its own runs; dependencies not included)."""
    item = TABLES.get(name) or FIGURES.get(name)
    if item is None:
        raise KeyError('unknown table or figure %r; known: %s'
                       % (name, ', '.join(list(TABLES) + list(FIGURES))))
    return item.experiments
