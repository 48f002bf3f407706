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

__all__ = ['Recipe', 'TrainStep', 'evaluate']


class Recipe(object):
    """The loss-side tricks of section 5 for one training run.

    Parameters
    ----------
    classes : int
        Number of classes ``K``.
    label_smoothing : float, default 0.0
        ``eps`` of section 5.2 (paper: 0.1 when on); 0 disables smoothing.
    smoothing_style : {'paper', 'gluoncv'}
        ``'paper'``: eq. (4), off-target ``eps / (K - 1)``. ``'gluoncv'``: ``eps / K``.
    mixup_alpha : float, default 0.0
        ``alpha`` of section 5.4 (paper: 0.2 when on); 0 disables mixup.
    mixup_off_epoch : int, default 0
        Train the last N epochs without mixup (GluonCV).
    num_epochs : int
        Length of the run (for ``mixup_off_epoch``).
    temperature : float, default 20.0
        Distillation temperature ``T`` of eq. (6).
    hard_weight : float or None
        None for eq. (6); GluonCV's weighted blend otherwise.
    """

    def __init__(self, classes, label_smoothing=0.0, smoothing_style='paper', mixup_alpha=0.0,
                 mixup_off_epoch=0, num_epochs=1, temperature=20.0, hard_weight=None):
        self.classes = classes
        self.label_smoothing = label_smoothing
        self.smoothing_style = smoothing_style
        self.mixup_alpha = mixup_alpha
        self.mixup_off_epoch = mixup_off_epoch
        self.num_epochs = num_epochs
        self.temperature = temperature
        self.hard_weight = hard_weight

    def mixup_on(self, epoch):
        """Whether mixup applies in ``epoch`` (0-based)."""
        return self.mixup_alpha > 0 and epoch < self.num_epochs - self.mixup_off_epoch

    def soft_targets(self, epoch, distill):
        """Whether targets are distributions (smoothing, mixup or distillation on)."""
        return self.label_smoothing > 0 or self.mixup_on(epoch) or distill


class TrainStep(object):
    """Forward, backward and update of one batch with the paper's tricks.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        The student network (its parameters on ``devices``).
    trainer : mxnet.gluon.Trainer
        From :meth:`DistContext.make_trainer` (``update_on_kvstore=False``).
    devices : list of mxnet.Context
    recipe : Recipe
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
    """

    def __init__(self, net, trainer, devices, recipe, scaler, dtype='float32', teacher=None,
                 teacher_size=None):
        self.net = net
        self.trainer = trainer
        self.devices = devices
        self.recipe = recipe
        self.scaler = scaler
        self.dtype = data_dtype(dtype)
        self.teacher = teacher
        self.teacher_size = teacher_size
        if teacher is not None:
            self.loss_fn = DistillationLoss(temperature=recipe.temperature,
                                            hard_weight=recipe.hard_weight)
        else:
            self.loss_fn = SoftTargetCrossEntropy()
        self.sparse_loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        # collected once: walking the block tree costs milliseconds per step
        self._params = net.collect_params()

    def _targets(self, label, epoch):
        """Per-device (soft or sparse) targets, before mixup."""
        r = self.recipe
        if not r.soft_targets(epoch, self.teacher is not None):
            return label
        # eq. (4) (or GluonCV's eps/K); eps = 0 gives one-hot, ready to be mixed
        return smooth_labels(label, r.classes, r.label_smoothing, r.smoothing_style,
                             check=False)

    def _teach(self, x):
        """The teacher's float32 logits for the (mixed) float32 batch ``x``."""
        if self.teacher_size and self.teacher_size != x.shape[-1]:
            x = mx.nd.contrib.BilinearResize2D(x, height=self.teacher_size,
                                               width=self.teacher_size, align_corners=False)
        return self.teacher(x.astype(self.dtype, copy=False)).astype('float32', copy=False)

    def __call__(self, data, label, epoch, batch_index, rng=None):
        """Train on one batch.

        Parameters
        ----------
        data : mxnet.nd.NDArray
            ``(N, 3, H, W)`` float32, normalized.
        label : mxnet.nd.NDArray
            ``(N,)`` class indices.
        epoch, batch_index : int
            Position in the run (for mixup scheduling and error messages).
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
        mix = self.recipe.mixup_on(epoch)
        if mix and rng is None:
            raise ValueError('TrainStep: mixup needs the step\'s generator (rng)')
        lam = sample_mixup_lambda(self.recipe.mixup_alpha, rng) if mix else None
        inputs, targets, teacher_out = [], [], []
        for x, y in zip(datas, labels):
            t = self._targets(y, epoch)
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
                elif targets[i].ndim == 2:
                    loss = self.loss_fn(out, targets[i])
                else:
                    loss = self.sparse_loss_fn(out, targets[i])
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
