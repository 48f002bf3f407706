"""The CPU proxy of the paper's rows: :func:`proxy` maps a full-scale
:class:`~tools.experiments.rows.Experiment` to a small one, nothing else changed:

=============  ==============================================================================
models         ``resnet50_v1{,b,c,d}`` -> ``resnet18_v1{,b,c,d}``; ``resnet101/152_*`` ->
               ``resnet34_*`` (the teachers); ``inceptionv3`` and ``mobilenet1.0`` kept
data           scikit-learn's digits as RecordIO (``digits``) for ImageNet and Places365;
               tiny VOC / ADE20K look-alikes (``proxy-voc``, ``proxy-ade``) for Tables 8/9
input          :attr:`Family.input_size` (32 px; 75 for Inception-V3, its smallest), random
               crops of at least :attr:`ProxySettings.area_min` of the image, no flip; a
               teacher of another family sees the batch at its own size
batch          the paper's global batch / :attr:`Family.batch_div`; the training script
               derives the lr by the same linear scaling rule (:attr:`Family.base_lr` per 256)
epochs         every epoch count (epochs, warmup, step epochs) x :attr:`Family.epochs` / 120
float16        float32 (MXNet 1.9.1 has no float16 GEMM on CPU)
Tables 8/9     :class:`Transfer`: a few epochs on a few dozen images, small images and
               proposals, evaluated after the last epoch only
=============  ==============================================================================

The settings per network family (:data:`PROXY`) are chosen so that every row learns (no row
at chance accuracy); :data:`PROXY_LEGACY` is the proxy of the first report (2 epochs, batch /8
for every network: Inception-V3 and MobileNet stayed at chance at batch 128).
"""
import fnmatch
from dataclasses import dataclass, replace

from .rows import Experiment

__all__ = ['Family', 'Transfer', 'ProxySettings', 'PROXY', 'PROXY_LEGACY', 'PROFILES', 'proxy',
           'proxy_model', 'family_of', 'seed_copies', 'settings']


@dataclass(frozen=True)
class Family:
    """Proxy scale of one network family."""
    epochs: int          # proxy epochs for the paper's 120 (200 -> 5/3 as many)
    batch_div: int       # paper's global batch / batch_div
    input_size: int      # proxy input size in pixels
    base_lr: float = 0.1     # --base-lr (lr per 256 images; the trainer scales it linearly)


@dataclass(frozen=True)
class Transfer:
    """Proxy scale of the Faster-RCNN (Table 8) or FCN (Table 9) runs."""
    epochs: int          # proxy epochs (the step epochs scale with them)
    images: tuple = (12, 6)  # (training, test) images of the VOC / ADE20K look-alike
    batch_div: int = 8   # paper's global batch / batch_div
    base_lr: float = None    # --base-lr; None: the script's (the paper's) value
    val_at_end: bool = False  # evaluate after the last epoch only (--val-interval EPOCHS)


@dataclass(frozen=True)
class ProxySettings:
    families: dict
    area_min: float = 0.5          # random-resized crop: at least half of a digit
    workers: int = 2               # -j of the classification runs
    detection: Transfer = Transfer(1)
    segmentation: Transfer = Transfer(1)
    #: rows (globs) of table ``repeat_in`` trained again with ``seeds`` (run-to-run spread)
    repeat: tuple = ()
    repeat_in: str = 'table6'
    seeds: tuple = (1, 2)


#: Every row should learn (measured on an idle 2-core AVX-512 CPU, docs/proxy). Learning
#: follows lr x steps: the first proxy (:data:`PROXY_LEGACY`, batch / 8) left the batch-128
#: rows near chance, so the batches are / 16 (ResNet and MobileNet: efficient 64, baseline 16;
#: ResNet-18-D reaches 88 % in 2 epochs at 64) and / 32 for Inception-V3 (75 px), which learns
#: slowest: 4 epochs at the paper's base lr (26 % for the step-decay efficient row, 48 % with
#: cosine; base lr 0.2 gave 14 %, 0.4 diverged). Tables 8/9 train a few dozen images for a few
#: epochs and evaluate once at the end (Faster-RCNN: 15 % mAP after 4 epochs of 64 images, 5 %
#: after one; FCN mIoU over ADE20K's 150 classes, of which 11 occur, chance 0.59 %: 0.72 %
#: after 8 epochs at the paper's lr, 0.77 % after 6 at 8x).
PROXY = ProxySettings(
    families={'resnet': Family(epochs=2, batch_div=16, input_size=32),
              'mobilenet': Family(epochs=3, batch_div=16, input_size=32),
              'inceptionv3': Family(epochs=4, batch_div=32, input_size=75)},
    detection=Transfer(epochs=3, images=(48, 24), base_lr=0.004, val_at_end=True),
    segmentation=Transfer(epochs=5, images=(48, 24), base_lr=0.08, val_at_end=True),
    repeat=('r50d-*',))
PROXY_LEGACY = ProxySettings(
    families={'resnet': Family(2, 8, 32), 'mobilenet': Family(2, 8, 32),
              'inceptionv3': Family(2, 8, 75)})
#: ``--proxy-profile`` / ``PROXY_PROFILE`` names
PROFILES = {'default': PROXY, 'legacy': PROXY_LEGACY}

def settings(profile='default', environ=None):
    """The :class:`ProxySettings` of ``profile`` with the overrides of the environment:
    PROXY_EPOCHS and PROXY_BATCH_DIV (every family), PROXY_BASE_LR, PROXY_AREA_MIN,
    PROXY_WORKERS, PROXY_SEEDS (e.g. ``1,2``; empty: no repeats), and for Tables 8/9
    PROXY_TRANSFER_EPOCHS, PROXY_TRANSFER_TRAIN and PROXY_TRANSFER_TEST (images)."""
    e = environ or {}
    s = PROFILES[profile]
    fams = dict(s.families)
    for var, key in (('PROXY_EPOCHS', 'epochs'), ('PROXY_BATCH_DIV', 'batch_div')):
        if e.get(var):
            fams = {k: replace(f, **{key: int(e[var])}) for k, f in fams.items()}
    if e.get('PROXY_BASE_LR'):
        fams = {k: replace(f, base_lr=float(e['PROXY_BASE_LR'])) for k, f in fams.items()}
    over = {'families': fams}
    for var, key, kind in (('PROXY_AREA_MIN', 'area_min', float),
                           ('PROXY_WORKERS', 'workers', int)):
        if e.get(var):
            over[key] = kind(e[var])
    for task in ('detection', 'segmentation'):
        t = getattr(s, task)
        if e.get('PROXY_TRANSFER_EPOCHS'):
            t = replace(t, epochs=int(e['PROXY_TRANSFER_EPOCHS']))
        train, test = t.images
        t = replace(t, images=(int(e.get('PROXY_TRANSFER_TRAIN') or train),
                               int(e.get('PROXY_TRANSFER_TEST') or test)))
        over[task] = t
    if 'PROXY_SEEDS' in e:
        over['seeds'] = tuple(int(x) for x in e['PROXY_SEEDS'].split(',') if x.strip())
    return replace(s, **over)


_DETECTION = dict(short=96, max_size=128, train_splits='2007_trainval', rpn_train_post_nms=300,
                  rpn_test_post_nms=100, rcnn_num_samples=32, warmup_iters=2, num_workers=1,
                  log_interval=1000)
_SEGMENTATION = dict(base_size=96, crop_size=64, warmup_epochs=0.2, num_workers=1,
                     log_interval=1000)
_DATA = {'imagenet': 'digits', 'places365': 'digits', 'voc': 'proxy-voc', 'ade20k': 'proxy-ade'}


def proxy_model(model):
    """The proxy network of a paper network (``resnet50_v1d`` -> ``resnet18_v1d``)."""
    if model.startswith('resnet50_'):
        return 'resnet18_' + model[len('resnet50_'):]
    if model.startswith(('resnet101_', 'resnet152_')):
        return 'resnet34_' + model.split('_', 1)[1]
    return model


def family_of(model):
    if model.startswith('resnet'):
        return 'resnet'
    if model.startswith('mobilenet'):
        return 'mobilenet'
    return model


def _scaled(value, factor):
    return float('%g' % (value * factor))


def proxy(exp, settings=PROXY):
    """``exp`` at proxy scale (a new :class:`Experiment`; the name is kept)."""
    f = dict(exp.flags)
    for key in ('model', 'teacher', 'backbone'):
        if f.get(key):
            f[key] = proxy_model(f[key])
    data = _DATA.get(exp.data, exp.data)
    if exp.task != 'classification':
        t = getattr(settings, exp.task)
        factor = t.epochs / float(f['num_epochs'])
        f['num_epochs'] = t.epochs
        if f.get('lr_decay_epoch'):
            f['lr_decay_epoch'] = tuple(_scaled(e, factor) for e in f['lr_decay_epoch'])
        f.update(_DETECTION if exp.task == 'detection' else _SEGMENTATION)
        if t.base_lr is not None:
            f['base_lr'] = t.base_lr
        if t.val_at_end:
            f['val_interval'] = t.epochs
        batch = max(exp.global_batch // t.batch_div, 1)
        return Experiment(exp.name, exp.task, batch, data, f, exp.teacher_row, exp.backbone_row)

    fam = settings.families[family_of(f['model'])]
    factor = fam.epochs / 120.0
    f['num_epochs'] = max(int(f['num_epochs'] * factor + 0.5), 1)
    if f.get('warmup_epochs'):
        f['warmup_epochs'] = _scaled(f['warmup_epochs'], factor)
    if f.get('lr_decay_epoch'):
        f['lr_decay_epoch'] = tuple(_scaled(e, factor) for e in f['lr_decay_epoch'])
    if f.get('dtype') == 'float16':
        f['dtype'] = 'float32'
    f.pop('input_size', None)
    f['input_size'] = fam.input_size
    if f.get('teacher'):
        # the proxy teacher (ResNet-34-D) learnt at its family's size: at 75 px it would be at
        # chance, so an Inception-V3 student's batch is resized for it
        teacher_size = settings.families[family_of(f['teacher'])].input_size
        if teacher_size != fam.input_size:
            f['teacher_input_size'] = teacher_size
    if fam.base_lr != 0.1:
        f['base_lr'] = fam.base_lr
    f.update(random_area_min=settings.area_min, no_mirror=True, num_workers=settings.workers,
             progress='log', log_interval=1000)
    return Experiment(exp.name, exp.task, max(exp.global_batch // fam.batch_div, 1), data, f,
                      exp.teacher_row, exp.backbone_row)


def seed_copies(exp, table, settings=PROXY):
    """The extra runs of ``exp`` with other seeds (``NAME-seedS``) when ``table`` is
    ``settings.repeat_in`` and ``settings.repeat`` names the row; empty otherwise."""
    if table != settings.repeat_in or \
            not any(fnmatch.fnmatchcase(exp.name, g) for g in settings.repeat):
        return []
    return [replace(exp.set(seed=s), name='%s-seed%d' % (exp.name, s)) for s in settings.seeds]
