"""The losses of section 5: cross entropy against soft targets and distillation (eq. (6)).

Cross entropy is written ``CE(target, prediction) = -sum_i target_i log prediction_i`` (the
paper's eq. (3) swaps the letters p and q between the text and eq. (4); the meaning is the
same). The soft targets come from :mod:`gluon_tricks.data.targets` (label smoothing, mixup)::

    with autograd.record():
        loss = SoftTargetCrossEntropy()(net(x), y)
        # or, with a teacher: DistillationLoss(20.0)(net(x), y, teacher(x))
"""
import math
import numbers

from mxnet.gluon.loss import Loss

__all__ = ['SoftTargetCrossEntropy', 'DistillationLoss']


def _soft_cross_entropy(F, logits, target, axis):
    # CE(target, softmax(logits)) = -sum_i target_i log softmax(logits)_i
    return -F.sum(target * F.log_softmax(logits, axis=axis), axis=axis)


class SoftTargetCrossEntropy(Loss):
    """Cross entropy against soft targets: ``-sum_i q_i log softmax(z)_i`` per sample.

    The same value as ``gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)``; the
    target ``q`` is a distribution per sample (smoothed and/or mixed labels).

    Parameters
    ----------
    axis : int, default -1
        The class axis.
    weight : float or None
        Global scalar weight of the loss.
    batch_axis : int, default 0
        The batch axis; the loss is averaged over all other axes.

    Inputs
    ------
    pred : logits ``z``, shape ``(N, K)``.
    label : targets ``q``, shape ``(N, K)``.
    sample_weight : optional, broadcastable to ``(N, 1)``.

    Outputs
    -------
    loss : shape ``(N,)``.
    """

    def __init__(self, axis=-1, weight=None, batch_axis=0, **kwargs):
        super(SoftTargetCrossEntropy, self).__init__(weight, batch_axis, **kwargs)
        self._axis = axis

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        # pylint: disable=arguments-differ
        loss = F.expand_dims(_soft_cross_entropy(F, pred, label, self._axis), axis=self._axis)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


def _apply_weighting(F, loss, weight=None, sample_weight=None):
    if sample_weight is not None:
        loss = F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        loss = loss * weight
    return loss


class DistillationLoss(Loss):
    """Knowledge-distillation loss, paper eq. (6).

    With ``p`` the (possibly smoothed / mixed) true distribution, ``z`` the student's and
    ``r`` the teacher's logits and ``T`` the temperature:

    * ``hard_weight=None`` (the paper, eq. (6))::

          CE(p, softmax(z)) + T^2 CE(softmax(r / T), softmax(z / T))

    * ``hard_weight=w`` (GluonCV's ``DistillationSoftmaxCrossEntropyLoss``)::

          (1 - w) T^2 CE(softmax(r / T), softmax(z / T)) + w CE(p, softmax(z))

      GluonCV's script uses ``w = 0.5``, i.e. half of eq. (6). Its loss takes the teacher
      *probabilities* ``softmax(r / T)`` computed by the script; this one takes the
      teacher logits ``r`` and applies the temperature itself.

    No gradient flows into the teacher logits (``stop_gradient``). The ``T^2`` factor
    keeps the soft term's gradient magnitude independent of ``T`` (Hinton et al.).

    Parameters
    ----------
    temperature : float, default 20.0
        ``T`` (paper: 20).
    hard_weight : float in [0, 1] or None, default None
        None for eq. (6); a number for GluonCV's weighted blend.
    axis : int, default -1
        The class axis.
    weight : float or None
        Global scalar weight.
    batch_axis : int, default 0

    Inputs
    ------
    pred : student logits ``z``, shape ``(N, K)``.
    label : true distribution ``p``, shape ``(N, K)``.
    teacher_pred : teacher logits ``r``, shape ``(N, K)``.

    Outputs
    -------
    loss : shape ``(N,)``.
    """

    def __init__(self, temperature=20.0, hard_weight=None, axis=-1, weight=None, batch_axis=0,
                 **kwargs):
        if not isinstance(temperature, numbers.Real) or isinstance(temperature, bool) \
                or not temperature > 0 or not math.isfinite(temperature):
            raise ValueError('temperature must be a positive number, got %r' % (temperature,))
        if hard_weight is not None and (
                not isinstance(hard_weight, numbers.Real) or isinstance(hard_weight, bool)
                or not 0 <= hard_weight <= 1):
            raise ValueError('hard_weight must be None or a number in [0, 1], got %r'
                             % (hard_weight,))
        super(DistillationLoss, self).__init__(weight, batch_axis, **kwargs)
        self._temperature = float(temperature)
        self._hard_weight = hard_weight
        self._axis = axis

    def hybrid_forward(self, F, pred, label, teacher_pred, sample_weight=None):
        # pylint: disable=arguments-differ
        T, axis = self._temperature, self._axis
        hard = _soft_cross_entropy(F, pred, label, axis)  # CE(p, softmax(z))
        teacher_prob = F.softmax(F.stop_gradient(teacher_pred) / T, axis=axis)
        # CE(softmax(r/T), softmax(z/T))
        soft = _soft_cross_entropy(F, pred / T, teacher_prob, axis)
        if self._hard_weight is None:
            loss = hard + (T ** 2) * soft  # eq. (6)
        else:
            w = self._hard_weight
            loss = (1 - w) * (T ** 2) * soft + w * hard  # GluonCV's blend
        loss = _apply_weighting(F, F.expand_dims(loss, axis=axis), self._weight,
                                sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)
