"""Target and batch transforms of section 5: label smoothing (5.2) and mixup (5.4).

Per training batch, labels are smoothed *first* and then mixed, as GluonCV's
``train_imagenet.py`` does when both tricks are on (mixing is linear, so the result is still
a distribution)::

    y = smooth_labels(label, classes, eps=0.1)        # eq. (4); eps=0: one-hot
    lam = sample_mixup_lambda(0.2, rng)               # Beta(alpha, alpha)
    x, y = mixup(x, y, lam)                           # eqs. (7) and (8)

The losses that take these targets are in :mod:`gluon_tricks.loss`.
"""
import math
import numbers

import numpy as np

__all__ = ['SMOOTHING_STYLES', 'smooth_labels', 'smoothing_values', 'theoretical_gap',
           'sample_mixup_lambda', 'mixup']

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
