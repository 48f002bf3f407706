"""Looking at runs: plot_runs.py draws metrics.jsonl curves into a PNG, and train_imagenet.py
--tensorboard writes the same scalars as TensorBoard event files (rank 0)."""
import importlib.util
import json
import os

import numpy as np
import pytest

from gluon_tricks.curves import TAGS, TensorBoardWriter
from helpers.tensorboard import read_tensorboard_scalars
from tools.plots import DEFAULT_PANELS, load_metrics, plot_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_run(directory, epochs, seed):
    """A metrics.jsonl as train_imagenet.py writes it (the same keys)."""
    rng = np.random.RandomState(seed)
    os.makedirs(directory)
    rows = []
    for e in range(1, epochs + 1):
        rows.append({'epoch': e, 'train_loss': 2.0 / e + rng.rand() * 0.1,
                     'train_acc': 1 - 1.0 / (e + 1), 'top1': 0.5 + 0.04 * e,
                     'top5': 0.8 + 0.02 * e, 'lr': 0.1 * 0.5 ** e,
                     'samples_per_sec': 100 + rng.rand(), 'epoch_time': 10.0,
                     'skipped_steps': 0, 'val_samples': 50})
    with open(os.path.join(directory, 'metrics.jsonl'), 'w') as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + '\n')
        f.write('{"epoch": 9, "train_lo')  # a line cut by a kill: skipped
    return rows


def test_plot_runs_side_by_side(tmp_path):
    import matplotlib.image as mpimg
    a = _write_run(str(tmp_path / 'baseline'), 5, 0)
    _write_run(str(tmp_path / 'cosine'), 3, 1)
    assert len(load_metrics(str(tmp_path / 'baseline'))) == 5  # the cut line is skipped
    out = str(tmp_path / 'cmp.png')
    fig = _load_script('scripts/plot_runs.py').main(
        [str(tmp_path / 'baseline'), str(tmp_path / 'cosine'), '-o', out, '--dpi', '50'])
    assert os.path.isfile(out)
    # one panel per default metric, one curve per run in each, labelled by directory
    assert [ax.get_title() for ax in fig.axes] == [t for _, t, _ in DEFAULT_PANELS]
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ['baseline', 'cosine']
    loss = fig.axes[0].get_lines()[0]
    assert list(loss.get_xdata()) == [1, 2, 3, 4, 5]
    assert list(loss.get_ydata()) == pytest.approx([r['train_loss'] for r in a])
    assert fig.axes[3].get_yscale() == 'log'  # the learning rate
    # 2 rows x 3 columns of 4.5 x 3.2 inch panels at 50 dpi
    height, width = mpimg.imread(out).shape[:2]
    assert (width, height) == (675, 320)


def test_plot_runs_other_metrics_and_errors(tmp_path):
    run = str(tmp_path / 'seg')
    os.makedirs(run)
    with open(os.path.join(run, 'metrics.jsonl'), 'w') as f:
        for e in (1, 2):
            f.write(json.dumps({'epoch': e, 'mIoU': 0.1 * e, 'pixAcc': 0.5, 'note': 'x'}) + '\n')
    fig = plot_runs([run], str(tmp_path / 'seg.png'))
    assert sorted(ax.get_title() for ax in fig.axes) == ['mIoU', 'pixAcc']
    fig = plot_runs([run], str(tmp_path / 'one.png'), metrics=['mIoU'], labels=['fcn'])
    assert len(fig.axes) == 1 and fig.axes[0].get_lines()[0].get_label() == 'fcn'
    with pytest.raises(FileNotFoundError, match='no metrics.jsonl'):
        plot_runs([str(tmp_path / 'nothing')], str(tmp_path / 'x.png'))
    script = _load_script('scripts/plot_runs.py')
    with pytest.raises(SystemExit):
        script.main([str(tmp_path / 'nothing'), '-o', str(tmp_path / 'x.png')])


def test_tensorboard_writer_round_trip(tmp_path):
    rows = _write_run(str(tmp_path / 'run'), 3, 0)
    with TensorBoardWriter(str(tmp_path / 'tb')) as board:
        for row in rows:
            board.write(row)
    scalars = read_tensorboard_scalars(str(tmp_path / 'tb'))
    for key in ('train_loss', 'top1', 'top5', 'lr', 'samples_per_sec'):
        assert [s for s, _ in scalars[TAGS[key]]] == [1, 2, 3]
        assert [v for _, v in scalars[TAGS[key]]] == pytest.approx([r[key] for r in rows],
                                                                   rel=1e-6)


def test_train_imagenet_tensorboard_writes_the_metrics_scalars(rec_dir, tmp_path):
    train_imagenet = _load_script('scripts/classification/train_imagenet.py')
    save, board = tmp_path / 'run', tmp_path / 'tb'
    train_imagenet.main(['--model', 'mobilenet0.25', '--use-rec', '--data-dir', rec_dir,
                         '--input-size', '32', '--crop-ratio', '0.8', '--batch-size', '32',
                         '-j', '1', '--num-epochs', '2', '--save-dir', str(save),
                         '--tensorboard', str(board)])
    rows = load_metrics(str(save))
    scalars = read_tensorboard_scalars(str(board))
    assert len(rows) == 2
    for key, tag in TAGS.items():
        if key in rows[0]:
            assert [s for s, _ in scalars[tag]] == [1, 2], tag
            assert [v for _, v in scalars[tag]] == pytest.approx([r[key] for r in rows],
                                                                 rel=1e-6), tag
    fig = plot_runs([str(save)], str(tmp_path / 'run.png'))
    assert len(fig.axes) == len(DEFAULT_PANELS)
