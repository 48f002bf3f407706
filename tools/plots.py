"""Look at runs: the per-epoch records of ``metrics.jsonl`` as curves in a PNG
(``scripts/plot_runs.py``).

Every training script appends one JSON line per epoch to ``SAVE_DIR/metrics.jsonl``
(classification: ``train_loss``, ``train_acc``, ``top1``, ``top5``, ``lr``,
``samples_per_sec``, ``epoch_time`` ...). :func:`plot_runs` draws one panel per metric with one
curve per run, so runs are compared side by side.
"""
import json
import os

from gluon_tricks.curves import is_scalar

__all__ = ['load_metrics', 'plot_runs', 'DEFAULT_PANELS']

#: (metric key, panel title, y-axis label) of the default figure (classification runs)
DEFAULT_PANELS = (
    ('train_loss', 'training loss', 'loss'),
    ('top1', 'validation top-1', 'accuracy'),
    ('top5', 'validation top-5', 'accuracy'),
    ('lr', 'learning rate (end of epoch)', 'lr'),
    ('samples_per_sec', 'training throughput', 'samples/s'),
)


def load_metrics(run):
    """The records of a run: ``run/metrics.jsonl`` (or the given .jsonl file), one dict per
    epoch, in file order. Unreadable lines (a run killed mid-write) are skipped.

    Raises
    ------
    FileNotFoundError
        No metrics file.
    """
    path = run if run.endswith('.jsonl') else os.path.join(run, 'metrics.jsonl')
    if not os.path.isfile(path):
        raise FileNotFoundError('%s has no metrics.jsonl (train with --save-dir %s first)'
                                % (run, run))
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _label(run):
    path = os.path.abspath(run[:-len('/metrics.jsonl')] if run.endswith('metrics.jsonl')
                           else run)
    return os.path.basename(path.rstrip(os.sep)) or path


def plot_runs(runs, out, metrics=None, labels=None, title=None, columns=3, dpi=100,
              panel_size=(4.5, 3.2)):
    """Draw the curves of one or several runs into a PNG.

    Parameters
    ----------
    runs : list of str
        Run directories (``metrics.jsonl`` inside) or ``.jsonl`` files.
    out : str
        PNG path.
    metrics : list of str, optional
        Metric keys, one panel each. Default: those of :data:`DEFAULT_PANELS` that some run
        has, else every numeric key (detection and segmentation runs).
    labels : list of str, optional
        Legend names (default: the directory names).
    title : str, optional
    columns : int
        Panels per row.
    dpi : int
    panel_size : (float, float)
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (closed after saving: its axes and lines can still be inspected).
    """
    import matplotlib
    matplotlib.use('Agg', force=False)
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not runs:
        raise ValueError('no run to plot')
    labels = list(labels) if labels else [_label(r) for r in runs]
    if len(labels) != len(runs):
        raise ValueError('%d labels for %d runs' % (len(labels), len(runs)))
    data = [load_metrics(r) for r in runs]
    present = set()
    for rows in data:
        for row in rows:
            present.update(k for k, v in row.items() if is_scalar(k, v))
    titles = {k: (t, y) for k, t, y in DEFAULT_PANELS}
    if metrics is None:
        metrics = [k for k, _, _ in DEFAULT_PANELS if k in present]
        if not metrics:
            metrics = sorted(present)
    if not metrics:
        raise ValueError('the runs have no numeric metric to plot')
    columns = max(1, min(columns, len(metrics)))
    rows_n = (len(metrics) + columns - 1) // columns
    fig = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows_n), dpi=dpi)
    FigureCanvasAgg(fig)
    for i, key in enumerate(metrics):
        ax = fig.add_subplot(rows_n, columns, i + 1)
        name, ylabel = titles.get(key, (key, key))
        for label, rows in zip(labels, data):
            points = [(r.get('epoch', n + 1), r[key]) for n, r in enumerate(rows)
                      if is_scalar(key, r.get(key))]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, markersize=3,
                        label=label)
        ax.set_title(name)
        ax.set_xlabel('epoch')
        ax.set_ylabel(ylabel)
        if key == 'lr' and any(is_scalar('lr', r.get('lr')) and r['lr'] > 0
                               for rows in data for r in rows):
            ax.set_yscale('log')
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize='small')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(out)
    return fig
