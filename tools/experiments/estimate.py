"""How long the proxy rows take on the 2-core CPU the first proxy report ran on.

Training throughput (images/s) per network family follows ``peak x b / (b + b0)`` for batch
``b``: a fixed cost per step (``b0`` images' worth) plus a cost per image. ``peak`` and
``b0`` are fitted to the two batches measured per family in docs/proxy (Table 3 of the first
report: time per epoch at batch 128 and 32, 1,437 training images, 2 shared cores), and the
sum is scaled by :data:`CALIBRATION` so that the first proxy's rows come out at the 41 minutes
they took. These are estimates to choose proxy settings with, not measurements.
"""
from .scale import family_of

__all__ = ['THROUGHPUT', 'CALIBRATION', 'row_seconds', 'TRAIN_IMAGES', 'VAL_IMAGES']

TRAIN_IMAGES, VAL_IMAGES = 1437, 360
#: family -> (peak images/s, b0): resnet18 72.6 / 68.4 img/s at batch 128 / 32, MobileNet
#: 218 / 83, Inception-V3 (75 px) 13.5 / 12.1; ResNet-34 (teachers) about 0.55 x ResNet-18
THROUGHPUT = {'resnet18': (74.1, 2.7), 'resnet34': (40.8, 2.7), 'mobilenet': (476.0, 152.0),
              'inceptionv3': (14.0, 5.1)}
STARTUP = 6.0           # seconds: imports, network construction, hybridization
CALIBRATION = 0.69      # the first proxy's 38 classification runs: 41 min, this model 59.6
_TRANSFER = {'detection': 32.0, 'segmentation': 3.0}   # one proxy epoch (first report)


def _speed(model, batch):
    key = 'resnet34' if model.startswith(('resnet34', 'resnet101', 'resnet152')) else \
        'resnet18' if family_of(model) == 'resnet' else family_of(model)
    peak, b0 = THROUGHPUT[key]
    return peak * batch / float(batch + b0)


def row_seconds(exp):
    """Estimated wall time of a proxy :class:`~tools.experiments.rows.Experiment`."""
    epochs = exp.num_epochs
    if exp.task != 'classification':
        return STARTUP + epochs * _TRANSFER[exp.task]
    return CALIBRATION * _classification_seconds(exp, epochs)


def _classification_seconds(exp, epochs):
    speed = _speed(exp.model, exp.global_batch)
    if exp.flags.get('teacher'):       # + the teacher's forward pass (a third of a step)
        teacher = 3 * _speed(exp.flags['teacher'], exp.global_batch)
        speed = 1.0 / (1.0 / speed + 1.0 / teacher)
    val = VAL_IMAGES / (3 * _speed(exp.model, exp.global_batch))
    return STARTUP + epochs * (TRAIN_IMAGES / speed + val)
