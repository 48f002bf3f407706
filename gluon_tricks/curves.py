"""TensorBoard scalars of a run: :class:`TensorBoardWriter` writes each epoch's
``metrics.jsonl`` record (``--tensorboard`` of the training scripts) through tensorboardX (the
``[tensorboard]`` extra). Plotting runs is a tool: ``scripts/plot_runs.py`` (``tools/plots.py``).
"""
import os

__all__ = ['TensorBoardWriter', 'TAGS', 'is_scalar']

#: TensorBoard tag of each known metric key (others are written as ``other/<key>``)
TAGS = {'train_loss': 'train/loss', 'train_acc': 'train/accuracy', 'top1': 'val/top1',
        'top5': 'val/top5', 'lr': 'train/lr', 'samples_per_sec': 'speed/samples_per_sec',
        'epoch_time': 'speed/epoch_seconds', 'skipped_steps': 'train/skipped_steps',
        'val_samples': 'val/samples'}


def is_scalar(key, value):
    """Whether ``key: value`` of a metrics record is a scalar to draw (a number; not the
    ``epoch``, which is the step)."""
    return key != 'epoch' and isinstance(value, (int, float)) and not isinstance(value, bool)


class TensorBoardWriter(object):
    """Write each epoch's metrics record as TensorBoard scalars (tensorboardX).

    Tags are :data:`TAGS` (``train/loss``, ``val/top1`` ...), the step is the record's
    ``epoch``. Under data parallelism only rank 0 should own one (as for ``metrics.jsonl``).

    Parameters
    ----------
    logdir : str
        Event files go here (``tensorboard --logdir`` it).
    """

    def __init__(self, logdir):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError("--tensorboard needs tensorboardX: pip install -c constraints.txt "
                              "-e '.[tensorboard]'")
        os.makedirs(logdir, exist_ok=True)
        self.logdir = logdir
        self._writer = SummaryWriter(logdir=logdir)

    def write(self, record, step=None):
        """Add every numeric value of ``record`` (except ``epoch``, the step) and flush."""
        step = int(record.get('epoch', 0) if step is None else step)
        for key, value in sorted(record.items()):
            if not is_scalar(key, value):
                continue
            self._writer.add_scalar(TAGS.get(key, 'other/' + key), float(value), step)
        self._writer.flush()

    def close(self):
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
