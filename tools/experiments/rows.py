"""Every training run of the paper's Tables 2-9 and Figures 3-4, defined once.

A row is an :class:`Experiment`: its name (the run directory under ``RUNS_DIR``), the task,
the global batch, the data set and the training flags (argparse dests of the training script,
``None`` or ``False`` = flag not given). Rows are built from the two settings of the paper plus
deltas, so that each row reads as its line in the paper::

    r50d_mixup = row('r50d-mixup', EFFICIENT, COSINE, SMOOTH, MIXUP, model='resnet50_v1d')

A run that several tables show (the ResNet-50 baseline is in Tables 2, 3 and 4) is one
object, trained once. :mod:`tools.experiments.tables` says which rows each table shows and
the paper's numbers; :func:`tools.experiments.scale.proxy` maps a row to the CPU proxy.
"""
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Optional

__all__ = ['Experiment', 'row', 'EXPERIMENTS', 'BASELINE', 'EFFICIENT', 'COSINE', 'SMOOTH',
           'MIXUP', 'distill', 'FASTER_RCNN', 'FCN', 'TRANSFER_BACKBONES']

#: The fields of :class:`Experiment` a delta may set besides the training flags.
_FIELDS = ('task', 'global_batch', 'data', 'teacher_row', 'backbone_row')


@dataclass(frozen=True)
class Experiment:
    """One training run.

    Attributes
    ----------
    name : str
        Run directory under ``RUNS_DIR``; unique.
    task : str
        ``classification`` (train_imagenet.py), ``detection`` (train_faster_rcnn.py) or
        ``segmentation`` (train_fcn.py).
    global_batch : int
        Images per optimizer step over all devices; the runner divides it by the devices and
        the training script derives the lr from it (linear scaling, section 3.1).
    data : str
        ``imagenet``, ``places365``, ``voc``, ``ade20k``; at proxy scale ``digits``,
        ``proxy-voc``, ``proxy-ade``. The runner maps it to a folder.
    flags : dict
        Training flags by argparse dest (``num_epochs``, ``lr_mode`` ...), in command order.
    teacher_row : str or None
        Row whose best checkpoint is the distillation teacher (``--teacher-params``, section
        5.3); ``flags['teacher']`` is that row's network.
    backbone_row : str or None
        Row whose best checkpoint is the detector's / FCN's backbone (``--backbone-params``,
        Tables 8, 9); ``flags['backbone']`` is that row's network.
    """
    name: str
    task: str = 'classification'
    global_batch: int = 256
    data: str = 'imagenet'
    flags: dict = field(default_factory=dict)
    teacher_row: Optional[str] = None
    backbone_row: Optional[str] = None

    @property
    def model(self):
        """The trained network (``--model``, or ``--backbone`` for Tables 8/9)."""
        return self.flags.get('model') or self.flags.get('backbone')

    @property
    def num_epochs(self):
        return self.flags['num_epochs']

    @property
    def needs(self):
        """Rows that must finish before this one (teacher, backbone)."""
        return tuple(r for r in (self.teacher_row, self.backbone_row) if r)

    def set(self, **delta):
        """A copy with ``delta`` applied (fields of :data:`_FIELDS` or flags)."""
        return _apply(self, delta)


def _apply(exp, delta):
    fields = {k: v for k, v in delta.items() if k in _FIELDS}
    flags = dict(exp.flags)
    flags.update((k, v) for k, v in delta.items() if k not in _FIELDS)
    return replace(exp, flags=flags, **fields)


def row(name, *deltas, **kw):
    """An :class:`Experiment` named ``name``: ``deltas`` (dicts) then ``kw`` applied in order."""
    exp = Experiment(name)
    for d in deltas + (kw,):
        exp = _apply(exp, d)
    return exp


# ---- the paper's settings -----------------------------------------------------------------
#: Section 2.1 baseline: batch 256 (32 x 8 GPUs), FP32, NAG, lr 0.1 / 10 at 30, 60, 90, 120 ep.
BASELINE = dict(global_batch=256, dtype='float32', lr_mode='step', lr_decay_epoch=(30, 60, 90),
                num_epochs=120)
#: Section 3 efficient setting: batch 1024 (128 x 8), FP16, lr 0.4 (linear scaling), 5 warmup
#: epochs, zero gamma, no bias decay.
EFFICIENT = dict(BASELINE, global_batch=1024, dtype='float16', warmup_epochs=5,
                 last_gamma=True, no_wd=True)
COSINE = dict(lr_mode='cosine', lr_decay_epoch=None)            # section 5.1
SMOOTH = dict(label_smoothing=True, smoothing_eps=0.1)           # section 5.2, eq. (4)
MIXUP = dict(mixup=True, mixup_alpha=0.2, num_epochs=200)        # section 5.4: 200 epochs


def distill(teacher):
    """Section 5.3: eq. (6) with T = 20, the teacher being the best checkpoint of row
    ``teacher`` (its network is the teacher row's model)."""
    return dict(teacher_row=teacher.name, teacher=teacher.model, temperature=20)


R50 = dict(model='resnet50_v1')
R50D = dict(model='resnet50_v1d')
INCEPTION = dict(model='inceptionv3', input_size=299)
MOBILENET = dict(model='mobilenet1.0')


def efficient(net):
    """The efficient setting for network ``net``: zero gamma (section 3.1) exists only in
    residual blocks, so Inception-V3 and MobileNet get the other three heuristics."""
    return dict(EFFICIENT, **net, last_gamma=net['model'].startswith('resnet'))


# ---- Tables 2 and 3: baseline and efficient, three networks ---------------------------------
r50_baseline = row('r50-baseline', R50, BASELINE)
inception_baseline = row('inception-baseline', INCEPTION, BASELINE)
mobilenet_baseline = row('mobilenet-baseline', MOBILENET, BASELINE)
r50_efficient = row('r50-efficient', efficient(R50))

# ---- Table 4: the heuristics one by one at batch 256 and 1024 (step decay, 120 epochs) -----
# "Linear scaling" at 256 is r50_baseline; "+ FP16" at 1024 is r50_efficient.
WARMUP = dict(warmup_epochs=5)
ZERO_GAMMA = dict(last_gamma=True)
NO_BIAS_DECAY = dict(no_wd=True)
FP16 = dict(dtype='float16')
r50_bs256_warmup = row('r50-bs256-warmup', R50, BASELINE, WARMUP)
r50_bs256_zerogamma = row('r50-bs256-zerogamma', R50, BASELINE, WARMUP, ZERO_GAMMA)
r50_bs256_nobiasdecay = row('r50-bs256-nobiasdecay', R50, BASELINE, WARMUP, ZERO_GAMMA,
                            NO_BIAS_DECAY)
r50_bs256_fp16 = row('r50-bs256-fp16', R50, BASELINE, WARMUP, ZERO_GAMMA, NO_BIAS_DECAY, FP16)
BS1024 = dict(global_batch=1024)
r50_bs1024_linear = row('r50-bs1024-linear', R50, BASELINE, BS1024)
r50_bs1024_warmup = row('r50-bs1024-warmup', R50, BASELINE, BS1024, WARMUP)
r50_bs1024_zerogamma = row('r50-bs1024-zerogamma', R50, BASELINE, BS1024, WARMUP, ZERO_GAMMA)
r50_bs1024_nobiasdecay = row('r50-bs1024-nobiasdecay', R50, BASELINE, BS1024, WARMUP,
                             ZERO_GAMMA, NO_BIAS_DECAY)

# ---- Table 5: ResNet-50 tweaks B, C, D with the efficient setting ----------------------------
r50b_efficient = row('r50b-efficient', EFFICIENT, model='resnet50_v1b')
r50c_efficient = row('r50c-efficient', EFFICIENT, model='resnet50_v1c')

# ---- Table 6: refinements stacked; the two ResNet-152-D teachers -----------------------------
R152D = dict(model='resnet152_v1d')
teacher_cos_ls = row('teacher-r152d-cos-ls', R152D, EFFICIENT, COSINE, SMOOTH)
teacher_cos_ls_mixup = row('teacher-r152d-cos-ls-mixup', R152D, EFFICIENT, COSINE, SMOOTH,
                           MIXUP)


def refinements(prefix, net):
    """Table 6's six rows of one network: efficient, + cosine, + label smoothing,
    + distillation (no mixup), + mixup (no distillation), + distillation with mixup."""
    eff = efficient(net)
    return [row(prefix + '-efficient', eff),
            row(prefix + '-cosine', eff, COSINE),
            row(prefix + '-smooth', eff, COSINE, SMOOTH),
            row(prefix + '-distill', eff, COSINE, SMOOTH, distill(teacher_cos_ls)),
            row(prefix + '-mixup', eff, COSINE, SMOOTH, MIXUP),
            row(prefix + '-distill-mixup', eff, COSINE, SMOOTH, MIXUP,
                distill(teacher_cos_ls_mixup))]


(r50d_efficient, r50d_cosine, r50d_smooth, r50d_distill, r50d_mixup,
 r50d_distill_mixup) = refinements('r50d', R50D)
inception_rows = refinements('inception', INCEPTION)
mobilenet_rows = refinements('mobilenet', MOBILENET)
inception_efficient, mobilenet_efficient = inception_rows[0], mobilenet_rows[0]

# ---- Table 7: ResNet-50-D on Places365, efficient and "best" (no distillation) --------------
PLACES = dict(data='places365')
places_efficient = row('places365-r50d-efficient', PLACES, R50D, EFFICIENT)
places_best = row('places365-r50d-best', PLACES, R50D, EFFICIENT, COSINE, SMOOTH, MIXUP)

# ---- Tables 8 and 9: Faster-RCNN and FCN from each backbone ----------------------------------
#: B-standard of Tables 8/9: ResNet-50-B with the baseline setting
r50b_baseline = row('r50b-baseline', BASELINE, model='resnet50_v1b')
#: the backbones of Tables 8 and 9 in the paper's order
TRANSFER_BACKBONES = (r50b_baseline, r50d_efficient, r50d_cosine, r50d_smooth, r50d_distill,
                      r50d_mixup, r50d_distill_mixup)
#: GluonCV's VOC recipe: 1 image x 8 GPUs, lr 0.001 per image, 20 epochs, decay at 14 and 20,
#: 500 warmup iterations, short side 600 / max 1000, VOC07+12 trainval, VOC07 test
FASTER_RCNN = dict(task='detection', data='voc', global_batch=8, num_epochs=20,
                   lr_decay_epoch=(14, 20), warmup_iters=500, short=600, max_size=1000,
                   train_splits='2007_trainval,2012_trainval', val_splits='2007_test')
#: GluonCV's ADE20K FCN recipe: 16 images per step, lr 0.01, poly decay, 120 epochs,
#: base size 520, crop 480
FCN = dict(task='segmentation', data='ade20k', global_batch=16, num_epochs=120, base_size=520,
           crop_size=480)


def transfer(prefix, recipe, backbone):
    return row(prefix + backbone.name, recipe, backbone=backbone.model,
               backbone_row=backbone.name)


detection_rows = [transfer('det-', FASTER_RCNN, b) for b in TRANSFER_BACKBONES]
segmentation_rows = [transfer('seg-', FCN, b) for b in TRANSFER_BACKBONES]

#: every row by name, each defined once above
EXPERIMENTS = OrderedDict((e.name, e) for e in [
    r50_baseline, inception_baseline, mobilenet_baseline, r50_efficient,
    r50_bs256_warmup, r50_bs256_zerogamma, r50_bs256_nobiasdecay, r50_bs256_fp16,
    r50_bs1024_linear, r50_bs1024_warmup, r50_bs1024_zerogamma, r50_bs1024_nobiasdecay,
    r50b_efficient, r50c_efficient, teacher_cos_ls, teacher_cos_ls_mixup,
    r50d_efficient, r50d_cosine, r50d_smooth, r50d_distill, r50d_mixup, r50d_distill_mixup]
    + inception_rows + mobilenet_rows + [places_efficient, places_best, r50b_baseline]
    + detection_rows + segmentation_rows)
