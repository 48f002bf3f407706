"""Train an ImageNet classifier with the paper's bag of tricks.

One training path for one device, several devices and Horovod (``--horovod`` under
``horovodrun``). Flags follow GluonCV's ``train_imagenet.py``; every constant of the paper is
a named flag whose default is the paper's baseline (section 2.1), and the tricks of
sections 3 and 5 are switched on by flags::

    # efficient setting (section 3) + cosine + label smoothing, 8 GPUs x 128
    python scripts/classification/train_imagenet.py --model resnet50_v1d --num-gpus 8 \\
        --batch-size 128 --dtype float16 --warmup-epochs 5 --last-gamma --no-wd \\
        --lr-mode cosine --label-smoothing --use-rec --data-dir ~/data/imagenet

The learning rate defaults to the linear scaling rule 0.1 x global_batch / 256; ``--lr``
overrides it.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

from gluon_tricks.config import parse_config
from gluon_tricks.sections import first_paragraph
from gluon_tricks.errors import run_main
from gluon_tricks.training import fit


def parse_args(argv=None):
    """The flags as a checked :class:`~gluon_tricks.config.TrainConfig`."""
    return parse_config('classification', argv, __file__, first_paragraph(__doc__))


def main(argv=None):
    """Train, evaluate and report; returns the fields of ``results.json``."""
    from gluon_tricks.training.classification import ClassificationTask
    return fit(ClassificationTask(), parse_args(argv))


if __name__ == '__main__':
    run_main(main)
