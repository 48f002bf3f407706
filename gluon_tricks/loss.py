"""The targets and losses of section 5: label smoothing (5.2), mixup (5.4), cross entropy
against soft targets and distillation (eq. (6)).

Per training batch, labels are smoothed *first* and then mixed, as GluonCV's
``train_imagenet.py`` does when both tricks are on (mixing is linear, so the result is still
a distribution); the loss takes the result::

    y = smooth_labels(label, classes, eps=0.1)        # eq. (4); eps=0: one-hot
    lam = sample_mixup_lambda(0.2, rng)               # Beta(alpha, alpha)
    x, y = mixup(x, y, lam)                           # eqs. (7) and (8)
    with autograd.record():
        loss = SoftTargetCrossEntropy()(net(x), y)
        # or, with a teacher: DistillationLoss(20.0)(net(x), y, teacher(x))

Cross entropy is written ``CE(target, prediction) = -sum_i target_i log prediction_i`` (the
paper's eq. (3) swaps the letters p and q between the text and eq. (4); the meaning is the
same).
"""
import math
import numbers

import numpy as np
from mxnet.gluon.loss import Loss

__all__ = ['SMOOTHING_STYLES', 'smooth_labels', 'smoothing_values', 'theoretical_gap',
           'sample_mixup_lambda', 'mixup', 'SoftTargetCrossEntropy', 'DistillationLoss']

#: ``'paper'``: eq. (4); ``'gluoncv'``: the variant of GluonCV's training scripts.
SMOOTHING_STYLES = ('paper', 'gluoncv')


def _check_classes(classes):
    if not isinstance(classes, numbers.Integral) or isinstance(classes, bool) or classes < 2:
        raise ValueError('classes must be an integer >= 2, got %r' % (classes,))


def _check_eps(eps):
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not 0 <= eps < 1:
        raise ValueError('eps must be a number in [0, 1), got %r' % (eps,))


def smoothing_values(classes, eps=0.1, style='paper'):
    """Target probability of the true class and of every other class.

    Parameters
    ----------
    classes : int
        Number of classes ``K`` (>= 2).
    eps : float, default 0.1
        Smoothing constant in ``[0, 1)``.
    style : {'paper', 'gluoncv'}, default 'paper'
        ``'paper'`` is eq. (4): ``on = 1 - eps``, ``off = eps / (K - 1)``.
        ``'gluoncv'`` is ``on = 1 - eps + eps / K``, ``off = eps / K`` (uniform mass
        ``eps`` spread over all ``K`` classes, the true one included).

    Returns
    -------
    (float, float)
        ``(on, off)``; both styles sum to 1 over the ``K`` classes.
    """
    _check_classes(classes)
    _check_eps(eps)
    if style == 'paper':
        return 1.0 - eps, eps / (classes - 1)  # eq. (4)
    if style == 'gluoncv':
        return 1.0 - eps + eps / classes, eps / classes
    raise ValueError('unknown smoothing style %r; valid styles: %s'
                     % (style, ', '.join(SMOOTHING_STYLES)))


def smooth_labels(label, classes, eps=0.1, style='paper', dtype='float32', check=True):
    """Turn class indices into (smoothed) target distributions.

    Parameters
    ----------
    label : mxnet.nd.NDArray
        Class indices, shape ``(N,)`` (any shape works; a last axis of size ``K`` is
        appended). Integer-valued, in ``[0, K)``.
    classes : int
        Number of classes ``K``.
    eps : float, default 0.1
        Smoothing constant; ``eps = 0`` gives plain one-hot targets.
    style : {'paper', 'gluoncv'}, default 'paper'
        See :func:`smoothing_values`.
    dtype : str, default 'float32'
        Output dtype.
    check : bool, default True
        Verify that the labels are integers in ``[0, K)`` (copies them to the host, i.e.
        synchronises; turn off in a tight GPU loop once the data is trusted).

    Returns
    -------
    mxnet.nd.NDArray
        Shape ``label.shape + (K,)``, each row summing to 1, on ``label``'s context.
    """
    import mxnet as mx
    on, off = smoothing_values(classes, eps, style)
    if not isinstance(label, mx.nd.NDArray):
        label = mx.nd.array(np.asarray(label))
    if check and label.size:
        values = label.asnumpy()
        bad = (values < 0) | (values >= classes) | (values != np.round(values))
        if bad.any():
            raise ValueError('label %r is not a class index in [0, %d)'
                             % (values[bad].flat[0].item(), classes))
    return mx.nd.one_hot(label, depth=classes, on_value=on, off_value=off, dtype=dtype)


def theoretical_gap(eps, classes, style='paper'):
    """Optimal logit gap between the true class and the others under label smoothing.

    Minimising ``CE(q, softmax(z))`` gives ``softmax(z*) = q``, i.e.
    ``z*_i = log q_i + alpha``, so the gap is ``log(on / off)``:

    * ``'paper'``, eq. (5): ``log((K - 1)(1 - eps) / eps)`` -- 9.104 for ``K = 1000``,
      ``eps = 0.1`` (the paper's "around 9.1");
    * ``'gluoncv'``: ``log((1 - eps + eps/K) / (eps/K)) = log(1 + K (1 - eps) / eps)``
      -- 9.105 for ``K = 1000``, ``eps = 0.1``.

    Parameters
    ----------
    eps : float
        Smoothing constant in ``[0, 1)``; ``eps = 0`` gives ``inf``.
    classes : int
        Number of classes ``K``.
    style : {'paper', 'gluoncv'}, default 'paper'

    Returns
    -------
    float
    """
    _check_eps(eps)
    _check_classes(classes)
    if style not in SMOOTHING_STYLES:
        raise ValueError('unknown smoothing style %r; valid styles: %s'
                         % (style, ', '.join(SMOOTHING_STYLES)))
    if eps == 0:
        return math.inf
    if style == 'paper':
        return math.log((classes - 1) * (1 - eps) / eps)  # eq. (5)
    return math.log(1 + classes * (1 - eps) / eps)  # log(on / off), GluonCV targets


def sample_mixup_lambda(alpha=0.2, rng=None):
    """Draw the mixup weight ``lambda ~ Beta(alpha, alpha)`` (paper sec. 5.4).

    Parameters
    ----------
    alpha : float, default 0.2
        Beta parameter (paper: 0.2), > 0.
    rng : numpy.random.RandomState, optional
        Source of randomness, for reproducible runs; None uses numpy's global state.

    Returns
    -------
    float
        ``lambda`` in ``[0, 1]``.
    """
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not alpha > 0 \
            or not math.isfinite(alpha):
        raise ValueError('mixup alpha must be a positive number, got %r' % (alpha,))
    rng = np.random if rng is None else rng
    return float(rng.beta(alpha, alpha))


def mixup(data, soft_labels, lam):
    """Mix a batch with its reverse, eqs. (7) and (8): sample ``i`` with ``j = N - 1 - i``
    (GluonCV's ``X[::-1]``, applied per device slice).

    ``x_hat = lam x_i + (1 - lam) x_j`` and ``y_hat = lam y_i + (1 - lam) y_j``; smooth the
    labels first (:func:`smooth_labels`, ``eps = 0`` for one-hot).

    Parameters
    ----------
    data : mxnet.nd.NDArray
        Inputs, batch on axis 0.
    soft_labels : mxnet.nd.NDArray
        Target distributions, shape ``(N, K)``.
    lam : float
        Mixing weight in ``[0, 1]`` (:func:`sample_mixup_lambda`).

    Returns
    -------
    (mxnet.nd.NDArray, mxnet.nd.NDArray)
        The mixed data and labels.
    """
    import mxnet as mx
    if not isinstance(lam, numbers.Real) or isinstance(lam, bool) or not 0 <= lam <= 1:
        raise ValueError('mixup lambda must be a number in [0, 1], got %r' % (lam,))
    n = data.shape[0]
    if soft_labels.ndim != 2 or soft_labels.shape[0] != n:
        raise ValueError('soft_labels must have shape (N, K) with N=%d (the batch of data), '
                         'got %r; smooth the class indices first' % (n, soft_labels.shape))
    data_j = mx.nd.reverse(data, axis=0)  # GluonCV: X[::-1]
    labels_j = mx.nd.reverse(soft_labels, axis=0)
    mixed_data = lam * data + (1 - lam) * data_j  # eq. (7)
    mixed_labels = lam * soft_labels + (1 - lam) * labels_j  # eq. (8)
    return mixed_data, mixed_labels


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
