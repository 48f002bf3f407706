"""Learning-rate schedules of "Bag of Tricks" (sections 3.1 and 5.1).

Iteration convention
--------------------
Everything here is indexed by the **iteration**: the 0-based index of the optimizer
step (= the batch) counted over the whole training run, so the first batch of epoch ``e``
is iteration ``e * iters_per_epoch``. :meth:`LRScheduler.lr_at` takes that index and is a
pure function of it (no hidden state), so the lr of a resumed run is exactly the lr the
uninterrupted run would have used.

MXNet's optimizers call their ``lr_scheduler`` with ``num_update``, the number of
updates *including* the one about to be applied: ``Optimizer._update_count`` increments
the per-weight counter (starting at ``begin_num_update``, default 0) *before*
``Optimizer._get_lrs`` calls ``lr_scheduler(self.num_update)``. The first training step
therefore asks for ``num_update = 1``. :meth:`LRScheduler.__call__` maps it back::

    iteration = max(num_update, 1) - 1

so the first batch (``num_update = 1``) gets ``lr_at(0)``, the first warmup value.
(``Trainer.learning_rate`` read before any update calls the scheduler with
``num_update = 0``, which is clamped to the same ``lr_at(0)``; read after ``k`` updates it
reports the lr of the ``k``-th batch, i.e. the lr just applied.) A resumed run restores the
optimizer's update count from its checkpoint, so the schedule continues where it stopped.

Warmup (paper sec. 3.1)
-----------------------
The paper uses the first ``m`` batches to warm up and sets the lr of batch ``i``,
``1 <= i <= m``, to ``i * eta / m``. With ``warmup_lr`` as the start value this is the
straight line from ``warmup_lr`` (before the first batch) to ``base_lr`` (at the last
warmup batch)::

    lr_at(k) = warmup_lr + (base_lr - warmup_lr) * (k + 1) / m,   0 <= k < m

With ``warmup_lr = 0`` it is exactly the paper's ``i eta / m`` (``i = k + 1``). Unlike
GluonCV, ``warmup_lr`` is honoured, and no batch is trained with lr 0.

Decay (paper sec. 5.1)
----------------------
After warmup, ``t = k - m`` counts batches and ``T = total - m`` is the number of batches
after warmup (``total = num_epochs * iters_per_epoch``):

* ``cosine``: ``target + (base - target) * 0.5 * (1 + cos(t pi / T))`` -- eq. (1) for
  ``target_lr = 0``;
* ``poly``: ``target + (base - target) * (1 - t / T) ** power``;
* ``linear``: ``poly`` with ``power = 1``;
* ``step``: ``base * step_factor ** n`` where ``n`` is the number of boundaries
  ``step_epoch * iters_per_epoch`` that are ``<= k`` (absolute iterations, so the decay
  happens exactly at epoch boundaries, independent of the warmup);
* ``constant``: ``base``.

Iterations past the end of training (``k >= total``) return the value at ``k = total``
(``target_lr`` for cosine/poly/linear).
"""
import math
import numbers

import mxnet as mx

__all__ = ['LRScheduler', 'MODES', 'linear_scaled_lr', 'resolve_lr']

#: Schedules understood by :class:`LRScheduler`.
MODES = ('step', 'cosine', 'poly', 'linear', 'constant')


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class LRScheduler(mx.lr_scheduler.LRScheduler):
    """Warmup followed by step / cosine / poly / linear / constant decay.

    Usable directly as ``lr_scheduler`` of an MXNet optimizer (``gluon.Trainer(...,
    {'lr_scheduler': sched})``); see the module docstring for the exact iteration
    convention and formulas.

    Parameters
    ----------
    mode : str
        One of ``'step'``, ``'cosine'``, ``'poly'``, ``'linear'``, ``'constant'``.
    base_lr : float
        The initial learning rate ``eta`` reached at the end of warmup (paper: 0.1 for
        batch 256, linearly scaled, see :func:`linear_scaled_lr`).
    iters_per_epoch : int
        Optimizer steps per epoch.
    num_epochs : int
        Length of training in epochs (warmup included).
    warmup_epochs : float, default 0
        Warmup length in epochs; ``m = round(warmup_epochs * iters_per_epoch)`` batches
        (paper: 5).
    warmup_lr : float, default 0.0
        Start of the linear warmup line (paper: 0). Must be ``<= base_lr``.
    step_epochs : sequence of float, default (30, 60, 90)
        Epochs at whose first batch the lr is multiplied by ``step_factor`` (``'step'``
        only). Must be increasing, after the warmup and not beyond ``num_epochs``.
    step_factor : float, default 0.1
        Multiplicative decay of ``'step'``, in ``(0, 1]``.
    power : float, default 2.0
        Exponent of ``'poly'``.
    target_lr : float, default 0.0
        End value of ``'cosine'``, ``'poly'`` and ``'linear'`` (paper: 0).

    Raises
    ------
    ValueError
        On an unknown mode or inconsistent arguments; the message names the value.
    """

    def __init__(self, mode, base_lr, iters_per_epoch, num_epochs, warmup_epochs=0,
                 warmup_lr=0.0, step_epochs=(30, 60, 90), step_factor=0.1, power=2.0,
                 target_lr=0.0):
        if mode not in MODES:
            raise ValueError('unknown lr mode %r; valid modes: %s' % (mode, ', '.join(MODES)))
        if not _is_number(base_lr) or base_lr <= 0:
            raise ValueError('base_lr must be a positive number, got %r' % (base_lr,))
        if not _is_int(iters_per_epoch) or iters_per_epoch < 1:
            raise ValueError('iters_per_epoch must be a positive integer, got %r'
                             % (iters_per_epoch,))
        if not _is_int(num_epochs) or num_epochs < 1:
            raise ValueError('num_epochs must be a positive integer, got %r' % (num_epochs,))
        if not _is_number(warmup_epochs) or warmup_epochs < 0:
            raise ValueError('warmup_epochs must be a number >= 0, got %r' % (warmup_epochs,))
        if warmup_epochs >= num_epochs:
            raise ValueError('warmup_epochs=%r must be smaller than num_epochs=%r'
                             % (warmup_epochs, num_epochs))
        if not _is_number(warmup_lr) or not 0 <= warmup_lr <= base_lr:
            raise ValueError('warmup_lr must be in [0, base_lr=%r], got %r'
                             % (base_lr, warmup_lr))

        total = num_epochs * iters_per_epoch
        warmup_iters = int(round(warmup_epochs * iters_per_epoch))
        if warmup_iters >= total:  # fractional warmup rounding up to the whole run
            raise ValueError('warmup_epochs=%r leaves no batch after warmup (%d of %d)'
                             % (warmup_epochs, warmup_iters, total))

        step_iters = ()
        if mode == 'step':
            try:
                step_epochs = tuple(step_epochs)
            except TypeError:
                raise ValueError('step_epochs must be a sequence of epochs, got %r'
                                 % (step_epochs,)) from None
            for epoch in step_epochs:
                if not _is_number(epoch):
                    raise ValueError('step epoch %r is not a number' % (epoch,))
                if epoch <= warmup_epochs:
                    raise ValueError('step epoch %r falls inside the warmup '
                                     '(warmup_epochs=%r)' % (epoch, warmup_epochs))
                if epoch > num_epochs:
                    raise ValueError('step epoch %r is beyond num_epochs=%r'
                                     % (epoch, num_epochs))
            if list(step_epochs) != sorted(set(step_epochs)):
                raise ValueError('step_epochs must be strictly increasing, got %r'
                                 % (step_epochs,))
            if not _is_number(step_factor) or not 0 < step_factor <= 1:
                raise ValueError('step_factor must be in (0, 1], got %r' % (step_factor,))
            step_iters = tuple(int(round(e * iters_per_epoch)) for e in step_epochs)
        if mode == 'poly' and (not _is_number(power) or power <= 0):
            raise ValueError('power must be a positive number, got %r' % (power,))
        if mode in ('cosine', 'poly', 'linear') and (
                not _is_number(target_lr) or not 0 <= target_lr <= base_lr):
            raise ValueError('target_lr must be in [0, base_lr=%r], got %r'
                             % (base_lr, target_lr))

        # the MXNet base class keeps base_lr (an optimizer given `learning_rate` overwrites
        # it); its own warmup is disabled, ours is in lr_at
        super(LRScheduler, self).__init__(base_lr=base_lr)
        self.mode = mode
        self.iters_per_epoch = iters_per_epoch
        self.num_epochs = num_epochs
        self.warmup_epochs = warmup_epochs
        self.warmup_lr = warmup_lr
        self.step_epochs = tuple(step_epochs) if mode == 'step' else tuple(step_epochs or ())
        self.step_factor = step_factor
        self.power = power
        self.target_lr = target_lr
        self.total_iters = total
        self.warmup_iters = warmup_iters
        self.step_iters = step_iters

    def lr_at(self, iteration):
        """Learning rate of a training iteration (pure function, no state).

        Parameters
        ----------
        iteration : int
            0-based index of the batch / optimizer step over the whole run.

        Returns
        -------
        float
            The learning rate used for that batch.
        """
        if not _is_int(iteration) or iteration < 0:
            raise ValueError('iteration must be an integer >= 0, got %r' % (iteration,))
        k = min(int(iteration), self.total_iters)
        base, m = self.base_lr, self.warmup_iters
        if k < m:
            # sec. 3.1: batch i = k + 1 of m gets i * eta / m (line from warmup_lr)
            return self.warmup_lr + (base - self.warmup_lr) * (k + 1) / m
        if self.mode == 'constant':
            return base
        if self.mode == 'step':
            n = sum(1 for s in self.step_iters if s <= k)
            return base * self.step_factor ** n
        t, T = k - m, self.total_iters - m
        target = self.target_lr
        if self.mode == 'cosine':
            # eq. (1): eta_t = 1/2 (1 + cos(t pi / T)) eta, generalised to end at target
            return target + (base - target) * 0.5 * (1 + math.cos(math.pi * t / T))
        power = 1.0 if self.mode == 'linear' else self.power
        return target + (base - target) * (1 - t / T) ** power

    def iteration_of(self, num_update):
        """Map MXNet's ``num_update`` (first step = 1) to the 0-based iteration."""
        return max(int(num_update), 1) - 1

    def __call__(self, num_update):
        """Learning rate for MXNet's optimizer update count ``num_update``.

        ``num_update`` counts from 1 (MXNet increments before asking), so this returns
        ``lr_at(num_update - 1)``; ``num_update = 0`` is treated as 1.
        """
        return self.lr_at(self.iteration_of(num_update))

    def __repr__(self):
        return ('LRScheduler(mode=%r, base_lr=%r, iters_per_epoch=%r, num_epochs=%r, '
                'warmup_epochs=%r, warmup_lr=%r, step_epochs=%r, step_factor=%r, power=%r, '
                'target_lr=%r)' % (
                    self.mode, self.base_lr, self.iters_per_epoch, self.num_epochs,
                    self.warmup_epochs, self.warmup_lr, self.step_epochs, self.step_factor,
                    self.power, self.target_lr))


def linear_scaled_lr(global_batch_size, base_lr=0.1, base_batch_size=256):
    """Linear scaling rule (paper sec. 3.1): ``lr = base_lr * global_batch / base_batch``.

    Parameters
    ----------
    global_batch_size : int
        Samples per optimizer step over all devices and workers.
    base_lr : float, default 0.1
        Learning rate for ``base_batch_size`` (paper: 0.1).
    base_batch_size : int, default 256
        Reference batch size (paper: 256).

    Returns
    -------
    float
        The scaled learning rate (0.4 for a global batch of 1024).
    """
    if not _is_int(global_batch_size) or global_batch_size < 1:
        raise ValueError('global_batch_size must be a positive integer, got %r'
                         % (global_batch_size,))
    if not _is_number(base_lr) or base_lr <= 0:
        raise ValueError('base_lr must be a positive number, got %r' % (base_lr,))
    if not _is_int(base_batch_size) or base_batch_size < 1:
        raise ValueError('base_batch_size must be a positive integer, got %r'
                         % (base_batch_size,))
    return base_lr * global_batch_size / base_batch_size  # lr = 0.1 x b / 256


def resolve_lr(lr, global_batch_size, base_lr=0.1, base_batch_size=256,
               batch_description=None):
    """Choose the learning rate and say where it came from.

    Parameters
    ----------
    lr : float or None
        The explicitly requested lr (``--lr``), or None for linear scaling.
    global_batch_size : int
        Samples per optimizer step (per-device batch x devices x workers), computed by
        the caller.
    base_lr, base_batch_size
        See :func:`linear_scaled_lr`.
    batch_description : str, optional
        How the global batch was composed, e.g. ``'128 per device x 8 devices x 1
        worker'``; included in the explanation.

    Returns
    -------
    lr : float
    explanation : str
        E.g. ``'lr 0.4 = 0.1 x 1024 / 256 (linear scaling, global batch 1024 = 128 per
        device x 8 devices x 1 worker)'`` or ``'lr 0.3 given by --lr (linear scaling
        would give 0.4 for global batch 1024)'``.
    """
    scaled = linear_scaled_lr(global_batch_size, base_lr, base_batch_size)
    batch = 'global batch %d' % global_batch_size
    if batch_description:
        batch += ' = %s' % batch_description
    if lr is None:
        return scaled, 'lr %g = %g x %d / %d (linear scaling, %s)' % (
            scaled, base_lr, global_batch_size, base_batch_size, batch)
    if not _is_number(lr) or lr <= 0:
        raise ValueError('lr must be a positive number or None, got %r' % (lr,))
    return float(lr), 'lr %g given by --lr (linear scaling would give %g for %s)' % (
        lr, scaled, batch)
