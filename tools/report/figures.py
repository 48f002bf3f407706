"""The paper's figures: 3a (step vs cosine schedules), 3b (validation top-1 per epoch),
4a (the theoretical gap of eq. (5)), 4b (logit gaps over the validation set of two
checkpoints, without and with label smoothing)."""
import math
import os
import tempfile
from collections import OrderedDict

from tools.experiments.tables import FIGURES, IMAGENET_TRAIN_IMAGES

from .runs import percent, read_run

__all__ = ['plot_figure3a', 'plot_figure3b', 'plot_figure4a', 'plot_figure4b', 'logit_gaps',
           'classes_of', 'data_config', 'figure_runs']


def classes_of(run):
    """Classes of the run's network: its configuration, else its best checkpoint."""
    if run.get('classes'):
        return int(run.get('classes'))
    if run.params_file:
        from gluon_tricks.model_zoo.io import classes_in_params
        try:
            return classes_in_params(run.params_file)
        except (ValueError, OSError):
            return None
    return None


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_figure3a(out, batch_size=1024, num_epochs=120, warmup_epochs=5,
                  num_samples=IMAGENET_TRAIN_IMAGES, step_epochs=(30, 60, 90)):
    """Figure 3a: step and cosine decay with linear warmup (the paper's setting by default)."""
    from gluon_tricks.lr_scheduler import LRScheduler, resolve_lr
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


def figure_runs(name):
    """``[(label, run name)]`` of a figure of :data:`tools.experiments.FIGURES`."""
    return [(label, exp.name) for label, exp in FIGURES[name].rows]


def plot_figure3b(out, runs_dir, runs=None):
    """Figure 3b: validation top-1 per epoch of the runs; None when none has metrics."""
    curves = []
    for label, name in runs or figure_runs('figure3'):
        run = read_run(runs_dir, name)
        if run.metrics:
            curves.append((label, name, run))
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, name, run in curves:
        ax.plot([m['epoch'] for m in run.metrics], [percent(m['top1']) for m in run.metrics],
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
    from gluon_tricks.loss import theoretical_gap
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


def data_config(run, data_dir=None):
    """The :class:`~gluon_tricks.data.DataConfig` of ``run`` (its ``config.json`` fields by
    name); ``data_dir`` when the run does not say where its data is (a checkpoint's
    configuration leaves the folder out)."""
    import dataclasses
    from gluon_tricks.data import DataConfig
    names = {f.name for f in dataclasses.fields(DataConfig)}
    values = {k: v for k, v in run.config.items() if k in names}
    if data_dir and not values.get('data_dir'):
        values['data_dir'] = data_dir
    return DataConfig(**values)


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


def logit_gaps(run, num_gpus=0, batch_size=64, max_batches=None, data_dir=None):
    """Gap between the largest logit and the mean of the others for every validation image
    of ``run`` (its best checkpoint, its own validation data and preprocessing).

    Returns
    -------
    numpy.ndarray
        One gap per validation image.
    """
    import mxnet as mx
    import numpy as np
    from gluon_tricks.data import build_loaders
    from gluon_tricks.model_zoo.io import load_model
    if run.params_file is None:
        raise FileNotFoundError('%s has no checkpoint-best/net.params' % run.path)
    ctx = [mx.gpu(i) for i in range(num_gpus)] if num_gpus > 0 else [mx.cpu()]
    with tempfile.TemporaryDirectory() as tmp:
        net = load_model(run.model, _float32_params(run.params_file, tmp), ctx=ctx)
    net.hybridize(static_alloc=True)
    cfg = data_config(run, data_dir)
    cfg.num_workers = min(cfg.num_workers or 4, 4)
    _, val = build_loaders(cfg, batch_size=batch_size, seed=0, progress=False)
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


def plot_figure4b(out, runs_dir, runs=None, num_gpus=0, eps=0.1, data_dir=None):
    """Figure 4b: histograms of :func:`logit_gaps` of the runs; returns ``{run: stats}`` or
    None when no run has a checkpoint."""
    import numpy as np
    from gluon_tricks.loss import theoretical_gap
    found = []
    for label, name in runs or figure_runs('figure4'):
        run = read_run(runs_dir, name)
        if run.params_file and run.config:
            found.append((label, run, logit_gaps(run, num_gpus, data_dir=data_dir)))
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
    classes = classes_of(found[0][1]) or 1000
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
