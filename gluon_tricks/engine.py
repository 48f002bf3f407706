"""The classification step with the paper's tricks, and top-1/top-5 evaluation.

Single device, several devices and Horovod all go through :class:`TrainStep` and
:func:`evaluate`; what differs (the trainer, the collectives) comes from
:class:`gluon_tricks.distributed.DistContext`. Nothing here synchronises with the host per
batch: a step returns its loss sum and correct count as device arrays (the loop reads them
at log points, :class:`gluon_tricks.training.Meter`).
"""
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from .loss import (DistillationLoss, SoftTargetCrossEntropy, mixup, sample_mixup_lambda,
                   smooth_labels)
from .precision import data_dtype

__all__ = ['TrainStep', 'DeviceNormalize', 'evaluate', 'topk_counts']


class DeviceNormalize(gluon.HybridBlock):
    """Steps 5-6 of section 2.1 on the device, for uint8 training batches: ``(x + offset -
    mean) / std`` with each sample's PCA lighting offset (N, 3) (the loaders' ``uint8``
    batches). Hybridized by :class:`TrainStep`, so MXNet fuses it into one kernel on GPUs."""

    def __init__(self, mean, std):
        super(DeviceNormalize, self).__init__()
        with self.name_scope():
            self.mean = self.params.get_constant(
                'mean', mx.nd.array(np.asarray(mean, np.float32).reshape((1, 3, 1, 1))))
            self.inv_std = self.params.get_constant('inv_std', mx.nd.array(
                (1.0 / np.asarray(std, np.float64)).astype(np.float32).reshape((1, 3, 1, 1))))

    def hybrid_forward(self, F, x, offset, mean, inv_std):
        shift = F.broadcast_sub(F.reshape(offset, (0, 0, 1, 1)), mean)
        return F.broadcast_mul(F.broadcast_add(F.cast(x, 'float32'), shift), inv_std)


class TrainStep(object):
    """Forward, backward and update of one batch with the paper's tricks.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        The student network (its parameters on ``devices``).
    trainer : mxnet.gluon.Trainer
        From :meth:`DistContext.make_trainer` (``update_on_kvstore=False``).
    devices : list of mxnet.Context
    tricks : gluon_tricks.classifier_config.TricksConfig
        The refinements of section 5 (``--label-smoothing``, ``--mixup``, distillation).
    classes : int
        Number of classes ``K`` (eq. (4)).
    num_epochs : int
        Length of the run (mixup stops ``--mixup-off-epoch`` epochs before its end).
    scaler : gluon_tricks.precision.LossScaler
        Loss scaling and overflow handling (section 3.2); a no-op scaler for float32.
    dtype : str
        Network input dtype (``'float32'``, ``'float16'``; bfloat16 runs through AMP with
        float32 inputs).
    teacher : mxnet.gluon.HybridBlock, optional
        Distillation teacher (section 5.3), evaluated without gradient on the same,
        possibly mixed, batch.
    teacher_size : int, optional
        Bilinearly resize the batch to ``teacher_size`` pixels for the teacher (the resolution
        it was trained at); default: the teacher sees the student's input.
    normalize : tuple, optional
        ``(mean, std)``: the batches are uint8 with lighting offsets, normalized on each
        device (:class:`DeviceNormalize`).
    """

    def __init__(self, net, trainer, devices, tricks, classes, num_epochs, scaler,
                 dtype='float32', teacher=None, teacher_size=None, normalize=None):
        self.net = net
        self.trainer = trainer
        self.devices = devices
        self.tricks, self.classes, self.num_epochs = tricks, int(classes), int(num_epochs)
        self.scaler = scaler
        self.dtype = data_dtype(dtype)
        self.teacher = teacher
        self.teacher_size = teacher_size
        # the loss, chosen once: soft targets whenever a trick makes them (in the epochs after
        # mixup's last they are one-hot, whose cross entropy is sparse CE bit for bit)
        self.soft = teacher is not None or tricks.label_smoothing or tricks.mixup
        if teacher is not None:
            self.loss_fn = DistillationLoss(temperature=tricks.temperature,
                                            hard_weight=tricks.hard_weight)
        elif self.soft:
            self.loss_fn = SoftTargetCrossEntropy()
        else:
            self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.normalize = None
        if normalize is not None:
            self.normalize = DeviceNormalize(*normalize)
            self.normalize.initialize(ctx=devices)
            self.normalize.hybridize(static_alloc=True, static_shape=True)
        # collected once: walking the block tree costs milliseconds per step
        self._params = net.collect_params()

    def _targets(self, label):
        """Per-device (soft or sparse) targets, before mixup."""
        t = self.tricks
        if not self.soft:
            return label
        # eq. (4) (or GluonCV's eps/K); eps = 0 gives one-hot, ready to be mixed
        return smooth_labels(label, self.classes, t.smoothing_eps if t.label_smoothing else 0.0,
                             t.smoothing_style, check=False)

    def _teach(self, x):
        """The teacher's float32 logits for the (mixed) float32 batch ``x``."""
        if self.teacher_size and self.teacher_size != x.shape[-1]:
            x = mx.nd.contrib.BilinearResize2D(x, height=self.teacher_size,
                                               width=self.teacher_size, align_corners=False)
        return self.teacher(x.astype(self.dtype, copy=False)).astype('float32', copy=False)

    def __call__(self, data, label, epoch, batch_index, rng=None, offsets=None):
        """Train on one batch.

        Parameters
        ----------
        data : mxnet.nd.NDArray
            ``(N, 3, H, W)`` float32, normalized (uint8, not yet, with ``normalize``).
        label : mxnet.nd.NDArray
            ``(N,)`` class indices.
        epoch, batch_index : int
            Position in the run (for mixup scheduling and error messages).
        offsets : mxnet.nd.NDArray, optional
            ``(N, 3)`` lighting offsets of a uint8 batch (with ``normalize``).
        rng : numpy.random.RandomState
            Source of this step's mixup lambda: the step's own generator of
            :func:`~gluon_tricks.training.loop.seed_step` (a function of the position, for exact
            resume). Needed when mixup is on.

        Returns
        -------
        list of mxnet.nd.NDArray
            ``[loss_sum, correct]`` over the batch, on the first device (not synchronised):
            the summed per-sample loss and the top-1 hits against the unmixed labels. (An
            overflowing float16 step is skipped by the loss scaler, ``scaler.num_skipped``.)
        """
        datas = gluon.utils.split_and_load(data, self.devices, even_split=False)
        labels = gluon.utils.split_and_load(label, self.devices, even_split=False)
        if self.normalize is not None:
            parts = gluon.utils.split_and_load(offsets, self.devices, even_split=False)
            datas = [self.normalize(x, o) for x, o in zip(datas, parts)]
        mix = self.tricks.mixup_on(epoch, self.num_epochs)
        if mix and rng is None:
            raise ValueError('TrainStep: mixup needs the step\'s generator (rng)')
        lam = sample_mixup_lambda(self.tricks.mixup_alpha, rng) if mix else None
        inputs, targets, teacher_out = [], [], []
        for x, y in zip(datas, labels):
            t = self._targets(y)
            if mix:
                # section 5.4, eqs. (7)-(8): each device's slice is paired with its reverse
                x, t = mixup(x, t, lam)
            inputs.append(x.astype(self.dtype, copy=False))
            targets.append(t)
            if self.teacher is not None:
                teacher_out.append(self._teach(x))
        loss_sums, corrects = [], []
        with autograd.record():
            losses = []
            for i, x in enumerate(inputs):
                out = self.net(x).astype('float32', copy=False)
                if self.teacher is not None:
                    loss = self.loss_fn(out, targets[i], teacher_out[i])
                else:
                    loss = self.loss_fn(out, targets[i])
                losses.append(loss)
                with autograd.pause():
                    loss_sums.append(loss.sum().as_in_context(self.devices[0]))
                    corrects.append((out.argmax(axis=1) == labels[i]).sum()
                                    .as_in_context(self.devices[0]))
            scaled = [self.scaler.scale_loss(loss) for loss in losses]
        autograd.backward(scaled)
        self.scaler.step(self.trainer, data.shape[0], self._params)
        if len(loss_sums) == 1:
            return [loss_sums[0], corrects[0]]
        return [mx.nd.add_n(*loss_sums), mx.nd.add_n(*corrects)]


def topk_counts(logits, labels, topk=5):
    """``[top-1 hits, top-k hits, samples]`` of one batch as a float32 NDArray on the logits'
    device (no host synchronisation): the one top-k of training, ``evaluate.py`` and the tests.
    ``k`` is ``min(topk, classes)``; ties go to the lower class index (``mx.nd.topk``)."""
    out = logits.astype('float32', copy=False)
    top = mx.nd.topk(out, axis=1, k=min(topk, out.shape[1]))  # (n, k) indices, best first
    hit = top == labels.astype('float32', copy=False).reshape((-1, 1))
    return mx.nd.concat(hit[:, 0].sum().reshape((1,)), hit.sum().reshape((1,)),
                        mx.nd.full((1,), out.shape[0], ctx=out.context), dim=0)


def evaluate(net, loader, devices, dist=None, dtype='float32', topk=5):
    """Top-1 and top-k accuracy over a whole validation set.

    With Horovod the counts of every rank are summed, so the result equals one process over
    the same data.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    loader : iterable
        Yields ``(data, label)`` batches.
    devices : list of mxnet.Context
    dist : gluon_tricks.distributed.DistContext, optional
    dtype : str
    topk : int, default 5

    Returns
    -------
    dict
        ``top1``, ``top5`` (fractions), ``correct1``, ``correctk``, ``total``.
    """
    ctx = devices[0]
    counts = mx.nd.zeros((3,), ctx=ctx)
    for batch in loader:
        data, label = batch[0], batch[1]
        datas = gluon.utils.split_and_load(data, devices, even_split=False)
        labels = gluon.utils.split_and_load(label, devices, even_split=False)
        for x, y in zip(datas, labels):
            out = net(x.astype(data_dtype(dtype), copy=False))
            counts += topk_counts(out, y, topk).as_in_context(ctx)
    totals = counts.asnumpy().astype(np.float64)
    if dist is not None:
        totals = dist.allreduce_sum(totals)
    c1, ck, total = (float(v) for v in totals)
    return {'top1': c1 / max(total, 1), 'top5': ck / max(total, 1),
            'correct1': int(round(c1)), 'correctk': int(round(ck)), 'total': int(round(total))}
