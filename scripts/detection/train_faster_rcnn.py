"""Train Faster-RCNN on Pascal VOC from one of our classification backbones (paper
section 6.1, Table 8).

Train on VOC 2007 trainval + 2012 trainval, evaluate on VOC 2007 test with the VOC07 11-point
mAP (difficult objects ignored); GluonCV's VOC recipe is the default (20 epochs, lr 0.001 per
image decayed by 10 at epochs 14 and 20, weight decay 5e-4, momentum 0.9, short side 600 /
max 1000) plus the linear warmup the paper takes from Detectron::

    python scripts/detection/prepare_voc.py --archives ~/Downloads
    python scripts/detection/train_faster_rcnn.py --backbone resnet50_v1d \\
        --backbone-params runs/r50d/checkpoint-best/net.params --num-gpus 8 --save-dir runs/frcnn

``--backbone-params`` takes a ``.params`` file of ``train_imagenet.py`` (or a checkpoint
directory, or its ``--save-dir``) or GluonCV's ``.params`` for the same model name. The same
script runs on one device, several devices, or under ``horovodrun`` with ``--horovod``.
Output in SAVE_DIR: ``train.log``, ``metrics.jsonl`` (one line per epoch), checkpoints
(``checkpoint-epochNNNN``, ``checkpoint-best``, resumable with ``--resume``) and
``results.json`` with the final mAP and the AP of every class.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

from gluon_tricks.config import parse_config
from gluon_tricks.sections import first_paragraph
from gluon_tricks.errors import run_main
from gluon_tricks.training import fit


def parse_args(argv=None):
    """The flags as a checked :class:`~gluon_tricks.config.TrainConfig`."""
    return parse_config('detection', argv, __file__, first_paragraph(__doc__))


def main(argv=None):
    """Train, evaluate and report; returns the fields of ``results.json``."""
    from gluon_tricks.training.detection import DetectionTask
    return fit(DetectionTask(), parse_args(argv))


if __name__ == '__main__':
    run_main(main)
