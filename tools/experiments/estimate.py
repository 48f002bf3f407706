"""How long the proxy rows take on the 2-core CPU of docs/proxy (idle, AVX-512, oneDNN on).

Training throughput (images/s) per network family follows ``peak x b / (b + b0)`` for batch
``b``: a fixed cost per step (``b0`` images' worth) plus a cost per image. ``peak`` and ``b0``
are fitted to the two batches measured per family in docs/proxy (``samples_per_sec`` of the
efficient and baseline rows, 1,437 training images), and the sum is scaled by
:data:`CALIBRATION` so that the rows of docs/proxy come out at the time they took. Tables 8/9
cost a time per training and per test image of the VOC / ADE20K look-alikes. These are
estimates to choose proxy settings with, not measurements.
"""
from .scale import PROXY, family_of

__all__ = ['THROUGHPUT', 'CALIBRATION', 'row_seconds', 'TRAIN_IMAGES', 'VAL_IMAGES']

TRAIN_IMAGES, VAL_IMAGES = 1437, 360
#: family -> (peak images/s, b0): ResNet-18 (32 px) 350 / 155 img/s at batch 64 / 16,
#: MobileNet 281 / 230, Inception-V3 (75 px) 68 / 35 at batch 32 / 8; ResNet-34 (teachers)
#: 200 at batch 64
THROUGHPUT = {'resnet18': (603.0, 46.2), 'resnet34': (344.0, 46.2), 'mobilenet': (303.0, 5.1),
              'inceptionv3': (99.2, 14.7)}
STARTUP = 6.0           # seconds: imports, network construction, hybridization
CALIBRATION = 1.0
#: task -> (startup s, s per training image, s per test image): Faster-RCNN 32 s per epoch of
#: 48 images and 12 s for 24 test images; FCN 0.22 s per image, 1 s for 32 test images
_TRANSFER = {'detection': (10.0, 0.68, 0.5), 'segmentation': (6.0, 0.22, 0.03)}


def _speed(model, batch):
    key = 'resnet34' if model.startswith(('resnet34', 'resnet101', 'resnet152')) else \
        'resnet18' if family_of(model) == 'resnet' else family_of(model)
    peak, b0 = THROUGHPUT[key]
    return peak * batch / float(batch + b0)


def row_seconds(exp, settings=PROXY):
    """Estimated wall time of a proxy :class:`~tools.experiments.rows.Experiment` (Tables 8/9:
    on the look-alike data sets of ``settings``)."""
    epochs = exp.num_epochs
    if exp.task != 'classification':
        start, per_train, per_test = _TRANSFER[exp.task]
        train, test = getattr(settings, exp.task).images
        evals = -(-epochs // exp.flags.get('val_interval', 1))
        return start + epochs * train * per_train + evals * test * per_test
    return CALIBRATION * _classification_seconds(exp, epochs)


def _classification_seconds(exp, epochs):
    speed = _speed(exp.model, exp.global_batch)
    if exp.flags.get('teacher'):       # + the teacher's forward pass (a third of a step)
        size = exp.flags.get('teacher_input_size') or exp.flags.get('input_size', 32)
        teacher = 3 * _speed(exp.flags['teacher'], exp.global_batch) * \
            (float(exp.flags.get('input_size', 32)) / size) ** 2
        speed = 1.0 / (1.0 / speed + 1.0 / teacher)
    val = VAL_IMAGES / (3 * _speed(exp.model, exp.global_batch))
    return STARTUP + epochs * (TRAIN_IMAGES / speed + val)
