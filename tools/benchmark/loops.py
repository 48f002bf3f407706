"""The loops the benchmark times (each has ``name`` and ``run(n)``; see :mod:`.timing`).

* :class:`OurTrainLoop`: :class:`gluon_tricks.engine.TrainStep` wired as in
  ``scripts/classification/train_imagenet.py`` (our model zoo, paper init,
  ``hybridize(static_alloc=True, static_shape=True)``, NAG through
  :meth:`DistContext.make_trainer`, :class:`LossScaler`), meters read once per window
  (the log point).
* :class:`GluonCVTrainLoop`: the per-batch body of GluonCV's ``train_imagenet.py``
  (``gluoncv.model_zoo.get_model(name, pretrained=False)``, ``MSRAPrelu``, the same
  hybridization, ``gluon.Trainer(..., 'nag', ...)`` with GluonCV's ``LRSequential``, and
  ``train_metric.update(label, outputs)`` after every batch: a host synchronisation per batch).
* :class:`InferenceLoop`: a network called on a fixed batch (the in-memory hybridized network,
  or the exported one from :func:`gluon_tricks.export.load_exported`).
"""
import mxnet as mx

from gluon_tricks.data import SyntheticLoader
from gluon_tricks.distributed import DistContext
from gluon_tricks.classifier_config import TricksConfig
from gluon_tricks.engine import TrainStep
from gluon_tricks.lr_scheduler import LRScheduler, linear_scaled_lr
from gluon_tricks.model_zoo import get_initializer, get_model
from gluon_tricks.model_zoo.summary import count_macs
from gluon_tricks.optim import optimizer_params
from gluon_tricks.precision import LossScaler, cast_network, data_dtype, needs_multi_precision
from gluon_tricks.training import Meter

__all__ = ['OurTrainLoop', 'GluonCVTrainLoop', 'InferenceLoop', 'gluoncv_model_list',
           'train_gflops_per_image', 'PAPER_TRAIN_STEPS']

#: Optimizer steps per epoch and epochs used to build the lr schedules of the training loops
#: (any values give the same speed; these are ImageNet's for batch 256 and the paper's 120).
PAPER_TRAIN_STEPS = (1281167 // 256, 120)


def _check_dtype_on(dtype, devices):
    if dtype == 'float16' and all(d.device_type == 'cpu' for d in devices):
        raise ValueError("dtype='float16' cannot train on CPU: MXNet 1.9.1 has no float16 GEMM "
                         "on CPU ('FP16 gemm on cpu not implemented'); use --num-gpus N, or "
                         "float32 / bfloat16 on CPU")


class OurTrainLoop(object):
    """Our training step (:class:`gluon_tricks.engine.TrainStep`) on one synthetic batch.

    Built like ``scripts/classification/train_imagenet.py`` builds it: ``get_model``,
    :func:`~gluon_tricks.precision.cast_network`, the paper's init,
    ``hybridize(static_alloc=True, static_shape=True)``, a dummy forward to finish deferred
    initialization, NAG (momentum 0.9, wd 1e-4) with a step schedule through
    :meth:`DistContext.make_trainer`, and the step's meters read once per :meth:`run`
    (the log point; no host synchronisation per batch).

    Parameters
    ----------
    model : str
        A name of :func:`gluon_tricks.model_zoo.get_model_list`.
    devices : list of mxnet.Context
    batch_size : int
        Per device (as ``--batch-size`` of the training script).
    input_size : int
    dtype : {'float32', 'float16', 'bfloat16'}
        ``'bfloat16'`` needs :func:`gluon_tricks.precision.init_amp` called first.
    classes : int
    label_smoothing : float
        eq. (4) epsilon; 0 trains on sparse labels.
    loss_scale : None, float or 'dynamic'
        :class:`~gluon_tricks.precision.LossScaler` argument (None: no scaling, no check).
    lr : float, optional
        Default: the linear scaling rule ``0.1 x batch / 256``.
    seed : int
        Seed of the synthetic batch (:class:`~gluon_tricks.data.SyntheticLoader`).
    data : tuple of NDArray, optional
        ``(data, label)`` to train on instead of a new synthetic batch.
    """

    name = 'ours'

    def __init__(self, model, devices, batch_size, input_size, dtype='float32', classes=1000,
                 label_smoothing=0.0, loss_scale=None, lr=None, seed=0, data=None):
        _check_dtype_on(dtype, devices)
        self.devices = list(devices)
        self.batch_size = int(batch_size) * len(self.devices)
        net = get_model(model, classes=classes)
        cast_network(net, dtype)
        net.initialize(get_initializer('paper'), ctx=self.devices)
        net.hybridize(static_alloc=True, static_shape=True)
        net(mx.nd.zeros((1, 3, input_size, input_size), ctx=self.devices[0],
                        dtype=data_dtype(dtype)))
        self.net = net
        lr = lr or linear_scaled_lr(self.batch_size)
        steps, epochs = PAPER_TRAIN_STEPS
        sched = LRScheduler('step', lr, steps, epochs, step_epochs=(30, 60, 90))
        self.trainer = DistContext().make_trainer(
            net.collect_params(), 'nag',
            optimizer_params(sched, momentum=0.9, wd=1e-4,
                             multi_precision=needs_multi_precision(dtype)))
        self.scaler = LossScaler(loss_scale)
        tricks = TricksConfig(label_smoothing=label_smoothing > 0,
                              smoothing_eps=label_smoothing)
        self.step = TrainStep(net, self.trainer, self.devices, tricks, classes, 1, self.scaler,
                              dtype)
        if data is None:
            data = next(iter(SyntheticLoader(self.batch_size, self.batch_size, input_size,
                                             classes, seed=seed)))
        self.data, self.label = data
        self.meter = Meter(self.devices[0])
        self.batches = 0
        self.last_meters = None

    def run(self, n):
        """Train ``n`` batches as the training loop does (the step's sums kept on the device,
        :class:`gluon_tricks.training.Meter`), then read them (one synchronisation) and wait
        for the queued work. Returns the number of images."""
        for _ in range(n):
            sums = self.step(self.data, self.label, 0, self.batches)
            self.meter.add(sums, self.batch_size, self.batches)
            self.batches += 1
        (loss_sum, correct), samples, first_bad = self.meter.read()
        mx.nd.waitall()
        if first_bad >= 0:
            raise FloatingPointError('our loop: the loss became NaN/inf at batch %d' % first_bad)
        self.last_meters = {'loss': loss_sum / samples, 'accuracy': correct / samples}
        return n * self.batch_size


def gluoncv_model_list():
    """Names GluonCV's ``get_model`` knows (empty when GluonCV is not installed)."""
    try:
        from gluoncv.model_zoo import get_model_list
    except ImportError:
        return []
    return sorted(get_model_list())


class GluonCVTrainLoop(object):
    """The reference: what GluonCV's ``train_imagenet.py`` does per batch.

    ``gluoncv.model_zoo.get_model(model, pretrained=False, classes=classes)``,
    ``net.cast(dtype)``, ``net.initialize(mx.init.MSRAPrelu())``,
    ``hybridize(static_alloc=True, static_shape=True)``, ``gluon.Trainer(params, 'nag',
    {'wd': 1e-4, 'momentum': 0.9, 'lr_scheduler': LRSequential([...])})`` (plus
    ``multi_precision`` for float16), ``SoftmaxCrossEntropyLoss`` and ``mx.metric.Accuracy``.
    Per batch: ``split_and_load``, the optional ``smooth`` one-hot, forward under
    ``autograd.record``, ``l.backward()`` for each loss, ``trainer.step(batch_size)`` and
    ``train_metric.update(label, outputs)``, which copies the predictions to the host (a
    synchronisation per batch). At the end of :meth:`run`, ``train_metric.get()`` (its log
    line) and a wait for the queued work.

    Parameters are those of :class:`OurTrainLoop` (``label_smoothing`` uses GluonCV's
    ``eps / K`` smoothing, as its script does).
    """

    name = 'reference'

    def __init__(self, model, devices, batch_size, input_size, dtype='float32', classes=1000,
                 label_smoothing=0.0, lr=None, seed=0, data=None):
        import gluoncv
        _check_dtype_on(dtype, devices)
        if model.lower() not in gluoncv_model_list():
            raise ValueError('GluonCV has no model %r, so there is no reference loop for it; '
                             'leave "reference" out of --what' % model)
        self.devices = list(devices)
        self.batch_size = int(batch_size) * len(self.devices)
        self.dtype = dtype
        self.classes = classes
        self.eta = float(label_smoothing)
        net = gluoncv.model_zoo.get_model(model, pretrained=False, classes=classes)
        net.cast(dtype if dtype != 'bfloat16' else 'float32')
        net.hybridize(static_alloc=True, static_shape=True)
        net.initialize(mx.init.MSRAPrelu(), ctx=self.devices)
        self.net = net
        lr = lr or linear_scaled_lr(self.batch_size)
        num_batches, epochs = PAPER_TRAIN_STEPS
        lr_scheduler = gluoncv.utils.LRSequential([
            gluoncv.utils.LRScheduler('linear', base_lr=0, target_lr=lr, nepochs=0,
                                      iters_per_epoch=num_batches),
            gluoncv.utils.LRScheduler('step', base_lr=lr, target_lr=0, nepochs=epochs,
                                      iters_per_epoch=num_batches, step_epoch=[30, 60, 90],
                                      step_factor=0.1, power=2)])
        params = {'wd': 1e-4, 'momentum': 0.9, 'lr_scheduler': lr_scheduler}
        if dtype == 'float16':
            params['multi_precision'] = True
        self.trainer = mx.gluon.Trainer(net.collect_params(), 'nag', params)
        self.loss = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=self.eta == 0)
        self.train_metric = mx.metric.Accuracy()
        if data is None:
            data = next(iter(SyntheticLoader(self.batch_size, self.batch_size, input_size,
                                             classes, seed=seed)))
        self.data, self.label = data
        self.last_metric = None

    def _smooth(self, label):
        # GluonCV's train_imagenet.py `smooth` (eps / K off target)
        return [l.one_hot(self.classes, on_value=1 - self.eta + self.eta / self.classes,
                          off_value=self.eta / self.classes) for l in label]

    def run(self, n):
        """Train ``n`` batches the way GluonCV's script does. Returns the number of images."""
        from mxnet import autograd as ag
        net, L, dtype = self.net, self.loss, ('float16' if self.dtype == 'float16'
                                             else 'float32')
        for _ in range(n):
            data = mx.gluon.utils.split_and_load(self.data, ctx_list=self.devices, batch_axis=0)
            label = mx.gluon.utils.split_and_load(self.label, ctx_list=self.devices,
                                                  batch_axis=0)
            hard_label = label
            if self.eta > 0:
                label = self._smooth(label)
            with ag.record():
                outputs = [net(X.astype(dtype, copy=False)) for X in data]
                loss = [L(yhat, y.astype(dtype, copy=False)) for yhat, y in zip(outputs, label)]
            for l in loss:
                l.backward()
            self.trainer.step(self.batch_size)
            self.train_metric.update(hard_label, outputs)
        self.last_metric = self.train_metric.get()
        mx.nd.waitall()
        return n * self.batch_size


def train_gflops_per_image(model, input_size, classes=1000):
    """Training FLOPs per image: 3 x (multiply-adds of one forward) x 2.

    Forward, backward to the activations and backward to the weights each cost about one
    forward; a multiply-add is two floating-point operations. The multiply-adds are counted
    on the network graph (:func:`gluon_tricks.model_zoo.summary.count_macs`; 4.3 G for
    ResNet-50-D at 224, Table 5).

    Returns
    -------
    (float, float)
        ``(GFLOPs per training image, G multiply-adds per forward)``.
    """
    macs = count_macs(get_model(model, classes=classes), (1, 3, input_size, input_size))
    return 3 * 2 * macs / 1e9, macs / 1e9


class InferenceLoop(object):
    """Forward passes of ``net`` on a fixed batch, each waited for (as a server would)."""

    def __init__(self, name, net, data):
        self.name = name
        self.net = net
        self.data = data

    def call(self):
        """One forward pass, waited for."""
        self.net(self.data).wait_to_read()

    def run(self, n):
        """``n`` forward passes. Returns the number of images."""
        for _ in range(n):
            self.call()
        return n * self.data.shape[0]
