"""Train FCN on ADE20K from one of our classification backbones (paper section 6.2, Table 9).

GluonCV's FCN with the backbone's stages 3 and 4 dilated (output stride 8) and the auxiliary
head on stage 3, 150 classes, base size 520 and crop 480, SGD with poly decay (power 0.9)
after a linear warmup; pixAcc and mIoU on the validation set after every ``--val-interval``
epochs::

    python scripts/segmentation/prepare_ade20k.py --archive ~/Downloads/ADEChallengeData2016.zip
    python scripts/segmentation/train_fcn.py --backbone resnet50_v1d \\
        --backbone-params runs/r50d/checkpoint-best/net.params --num-gpus 4 --save-dir runs/fcn

Defaults follow GluonCV's ADE20K FCN recipe (16 images per step as 4 GPUs x 4, lr 0.01 for
that batch, 120 epochs, weight decay 1e-4, auxiliary loss weight 0.5); the lr is scaled
linearly with the global batch unless ``--lr`` is given. One script for one device, several
devices and Horovod (``--horovod`` under ``horovodrun``). Output in SAVE_DIR: ``train.log``,
``metrics.jsonl``, checkpoints (``--resume``) and ``results.json`` (pixAcc, mIoU, per-class
IoU).
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

from gluon_tricks.config import parse_config
from gluon_tricks.sections import first_paragraph
from gluon_tricks.errors import run_main
from gluon_tricks.training import fit


def parse_args(argv=None):
    """The flags as a checked :class:`~gluon_tricks.config.TrainConfig`."""
    return parse_config('segmentation', argv, __file__, first_paragraph(__doc__))


def main(argv=None):
    """Train, evaluate and report; returns the fields of ``results.json``."""
    from gluon_tricks.training.segmentation import SegmentationTask
    return fit(SegmentationTask(), parse_args(argv))


if __name__ == '__main__':
    run_main(main)
