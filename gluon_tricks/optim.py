"""Optimizer setup of the paper: NAG with momentum 0.9 and weight decay 1e-4 (section 2.1),
and "no bias decay" (section 3.1).

No bias decay, selected by role
-------------------------------
Section 3.1 applies weight decay "only to the weights in convolution and fully-connected
layers. Other parameters, including the biases and gamma and beta in BN layers, are left
unregularized." GluonCV implements this with the name regex ``.*beta|.*gamma|.*bias``, which
depends on the implicit name prefixes of the parameters (a conv whose prefix happens to start
with ``beta`` loses its weight decay; a custom layer whose weight is called ``gamma_weight``
too). Here the selection is made by *role*: the block tree is walked and every parameter is
classified by the kind of layer that owns it and the attribute it is registered under:

* convolutions (any ``nn.Conv1D/2D/3D`` and their ``Transpose`` variants, i.e. subclasses of
  Gluon's ``_Conv``), ``nn.Dense`` and the contrib deformable convolutions: their weights
  keep the decay, their biases get ``wd_mult = 0``;
* normalization layers (``nn.BatchNorm`` and every subclass of Gluon's ``_BatchNorm``,
  ``contrib.nn.SyncBatchNorm``, ``nn.InstanceNorm``, ``nn.LayerNorm``, ``nn.GroupNorm``,
  plus any class whose MRO contains a class with one of these names, e.g. a third-party
  ``SyncBatchNorm``): ``gamma`` and ``beta`` get ``wd_mult = 0``; running statistics are
  not trained (``grad_req='null'``) and are reported as such;
* anything else (unknown layer kinds such as ``PReLU`` or ``Embedding`` or a custom block)
  keeps its weight decay and is *reported* in :attr:`DecaySelection.unknown`, so that a
  training script can log it instead of guessing.

MXNet reads ``Parameter.wd_mult`` at every update (``Optimizer._get_wds`` multiplies ``wd`` by
the ``wd_mult`` of the parameter owning the index), so :func:`apply_no_bias_decay` may be
called before or after the :class:`mxnet.gluon.Trainer` is created.

NAG in MXNet 1.9.1
------------------
``optimizer='nag'`` runs the fused ``nag_mom_update`` kernel in place (``out=weight``). Read
from the kernel (``src/operator/optimizer_op-inl.h``, ``NAGMomKernel``) and checked
numerically on 1.9.1 (``tests/test_optim.py``), one update with learning rate ``lr``, momentum
``mu``, weight decay ``wd`` and rescaled gradient ``g = rescale_grad * grad`` is::

    w_new = w + mu**2 * m - (1 + mu) * lr * (g + wd * w)
    m_new = mu * m - lr * (g + wd * w_new)

``m`` is a velocity that already contains the learning rate (so a change of ``lr`` only acts
on new gradients), and because the kernel writes the weight before it updates the momentum,
the decay term of the *momentum* uses the already-updated weight ``w_new``. This differs from
the docstring of ``mxnet.optimizer.NAG`` (``state = momentum * state + grad + wd * weight;
weight -= lr * (grad + momentum * state)``) when ``lr`` changes between steps and in that
``w``/``w_new`` detail; with ``wd = 0`` (the biases under no bias decay) and a constant
``lr`` both forms give the same weights. The multi-precision kernel (``mp_nag_mom_update``)
computes the same formula on the float32 master copy and writes ``float16(w_new)`` to the
weight.
"""
import warnings
import weakref

import numpy as np
from mxnet import gluon
from mxnet.gluon import nn

__all__ = ['DecaySelection', 'no_weight_decay_params', 'apply_no_bias_decay',
           'optimizer_params', 'make_trainer', 'LINEAR_TYPES', 'NORM_TYPES',
           'NORM_CLASS_NAMES']


def _optional_types():
    extra_linear, extra_norm = [], []
    try:
        from mxnet.gluon.contrib.cnn import DeformableConvolution, ModulatedDeformableConvolution
        extra_linear += [DeformableConvolution, ModulatedDeformableConvolution]
    except ImportError:  # pragma: no cover - present in mxnet 1.9.1
        pass
    try:
        from mxnet.gluon.contrib.nn import SyncBatchNorm
        extra_norm.append(SyncBatchNorm)
    except ImportError:  # pragma: no cover - present in mxnet 1.9.1
        pass
    return extra_linear, extra_norm


_EXTRA_LINEAR, _EXTRA_NORM = _optional_types()
# Gluon's private base classes: every Conv1D/2D/3D(+Transpose) derives from _Conv, every
# BatchNorm flavour (BatchNorm, BatchNormReLU, SyncBatchNorm) from _BatchNorm.
_CONV_BASE = getattr(nn.conv_layers, '_Conv', nn.Conv2D)
_BN_BASE = getattr(nn.basic_layers, '_BatchNorm', nn.BatchNorm)

#: Layers whose weights are decayed and whose biases are not (section 3.1).
LINEAR_TYPES = tuple([_CONV_BASE, nn.Conv1D, nn.Conv2D, nn.Conv3D, nn.Conv1DTranspose,
                      nn.Conv2DTranspose, nn.Conv3DTranspose, nn.Dense] + _EXTRA_LINEAR)
#: Normalization layers: gamma and beta are not decayed (section 3.1).
NORM_TYPES = tuple([_BN_BASE, nn.BatchNorm, nn.InstanceNorm, nn.LayerNorm, nn.GroupNorm]
                   + _EXTRA_NORM)
#: Class names recognised as normalization layers anywhere in a block's MRO (covers
#: implementations that do not derive from MXNet's classes, e.g. other SyncBatchNorms).
NORM_CLASS_NAMES = frozenset(['_BatchNorm', 'BatchNorm', 'SyncBatchNorm', 'BatchNormReLU',
                              'InstanceNorm', 'LayerNorm', 'GroupNorm'])

# attribute name (as registered on the owning block) -> decayed?
_LINEAR_ROLES = {'weight': True, 'bias': False,
                 'deformable_conv_weight': True, 'deformable_conv_bias': False,
                 'offset_weight': True, 'offset_bias': False}
_NORM_ROLES = {'gamma': False, 'beta': False}


class DecaySelection(object):
    """Which parameters are decayed, by role. All names are structural names, the keys of
    ``net.save_parameters`` (e.g. ``layer1.0.conv1.weight``).

    Attributes
    ----------
    no_decay : list of str
        Biases of conv/dense layers and gamma/beta of normalization layers (``wd_mult = 0``).
    decay : list of str
        Weights of conv/dense layers (keep ``wd_mult``).
    unknown : list of str
        Trainable parameters of other layer kinds: they keep weight decay and are listed
        so that they can be reported.
    frozen : list of str
        Parameters with ``grad_req == 'null'`` (e.g. BN running statistics): never updated.
    roles : dict
        Structural name -> ``'<LayerClass>.<attribute>'`` of the owning layer.
    params : dict
        Structural name -> :class:`mxnet.gluon.Parameter`.
    """

    def __init__(self):
        self.no_decay, self.decay, self.unknown, self.frozen = [], [], [], []
        self.roles, self.params = {}, {}

    def summary(self):
        """A short human-readable line, e.g. for the training log."""
        text = ('weight decay on %d parameter(s) (conv/dense weights), none on %d '
                '(biases, norm gamma/beta)%s'
                % (len(self.decay), len(self.no_decay), '; %d not trained by the optimizer '
                   '(BatchNorm running statistics ...)' % len(self.frozen) if self.frozen
                   else ''))
        if self.unknown:
            text += ('; %d parameter(s) of unrecognised layers keep weight decay: %s'
                     % (len(self.unknown), ', '.join('%s (%s)' % (n, self.roles[n])
                                                     for n in self.unknown)))
        return text

    def __repr__(self):
        return 'DecaySelection(%s)' % self.summary()


def _children(block):
    for child in block._children.values():
        # mxnet 1.x stores the blocks, 2.x weak references
        yield child() if isinstance(child, weakref.ref) else child


def _is_norm(block, norm_types):
    if isinstance(block, norm_types):
        return True
    return any(cls.__name__ in NORM_CLASS_NAMES for cls in type(block).__mro__)


def no_weight_decay_params(net, linear_types=LINEAR_TYPES, norm_types=NORM_TYPES):
    """Classify the parameters of ``net`` for no bias decay (section 3.1), without
    changing anything.

    Parameters
    ----------
    net : mxnet.gluon.Block
    linear_types : tuple of type
        Layer classes whose ``weight`` is decayed and ``bias`` is not.
    norm_types : tuple of type
        Normalization layer classes whose ``gamma`` and ``beta`` are not decayed.

    Returns
    -------
    DecaySelection
    """
    linear_types, norm_types = tuple(linear_types), tuple(norm_types)
    names = {}  # id(param) -> first structural name
    params = {}
    for name, param in net._collect_params_with_prefix().items():
        if id(param) not in names:
            names[id(param)] = name
            params[name] = param
    # parameters created with ``self.params.get`` but never assigned to an attribute have no
    # structural name (and are not written by save_parameters): list them by their full name
    for param in net.collect_params().values():
        if id(param) not in names:
            names[id(param)] = param.name
            params[param.name] = param

    role_of = {}  # structural name -> (role string, decayed: bool or None for unknown)
    stack = [net]
    seen = set()
    while stack:
        block = stack.pop()
        if id(block) in seen:
            continue
        seen.add(id(block))
        kind = type(block).__name__
        if isinstance(block, linear_types):
            table = _LINEAR_ROLES
        elif _is_norm(block, norm_types):
            table = _NORM_ROLES
        else:
            table = {}
        for attr, param in block._reg_params.items():
            name = names.get(id(param))
            if name is None or name in role_of:
                continue  # shared parameter: first owner wins
            role_of[name] = ('%s.%s' % (kind, attr), table.get(attr))
        stack.extend(reversed(list(_children(block))))

    sel = DecaySelection()
    sel.params = params
    for name, param in params.items():
        role, decayed = role_of.get(name, ('<unowned>', None))
        sel.roles[name] = role
        if param.grad_req == 'null':
            sel.frozen.append(name)
        elif decayed is None:
            sel.unknown.append(name)
        elif decayed:
            sel.decay.append(name)
        else:
            sel.no_decay.append(name)
    return sel


def apply_no_bias_decay(net, linear_types=LINEAR_TYPES, norm_types=NORM_TYPES):
    """Set ``wd_mult = 0`` on the biases and normalization gamma/beta of ``net``
    (section 3.1, "no bias decay"). Conv/dense weights and unknown parameters are not
    touched (they keep their ``wd_mult``, 1 by default).

    Returns
    -------
    DecaySelection
        What was selected; log :meth:`DecaySelection.summary` and check ``unknown``.
    """
    sel = no_weight_decay_params(net, linear_types, norm_types)
    for name in sel.no_decay:
        sel.params[name].wd_mult = 0.0
    return sel


def optimizer_params(lr_scheduler=None, base_lr=None, momentum=0.9, wd=1e-4,
                     multi_precision=False):
    """Keyword arguments for ``gluon.Trainer(params, 'nag', optimizer_params(...))``.

    Defaults are the paper's (section 2.1): Nesterov momentum 0.9, weight decay 1e-4.

    Parameters
    ----------
    lr_scheduler : mxnet.lr_scheduler.LRScheduler or None
        Learning rate schedule (warmup, step or cosine). It is pickled with the optimizer by
        ``Trainer.save_states``, so it must be a module-level class (no lambdas).
    base_lr : float or None
        Initial learning rate; the paper's is ``0.1 x batch / 256`` (linear scaling rule,
        section 3.1). MXNet's ``Optimizer`` *overwrites* ``lr_scheduler.base_lr`` with
        ``learning_rate``; to avoid that trap ``None`` takes the scheduler's ``base_lr`` and
        a value that differs from it raises ``ValueError``.
    momentum : float
    wd : float
        Weight decay (L2 coefficient) before the per-parameter ``wd_mult``.
    multi_precision : bool
        Keep float32 master weights (and float32 momentum) for float16 parameters
        (section 3.2). Needed for ``dtype='float16'``; harmless for float32 parameters.

    Returns
    -------
    dict
    """
    if base_lr is None:
        if lr_scheduler is None:
            raise ValueError('give base_lr or an lr_scheduler (whose base_lr is used)')
        base_lr = lr_scheduler.base_lr
    elif lr_scheduler is not None and getattr(lr_scheduler, 'base_lr', base_lr) != base_lr:
        raise ValueError('base_lr=%r differs from lr_scheduler.base_lr=%r; MXNet would '
                         'silently overwrite the scheduler\'s base_lr with base_lr'
                         % (base_lr, lr_scheduler.base_lr))
    if not base_lr > 0:
        raise ValueError('base_lr must be positive, got %r' % (base_lr,))
    if not 0 <= momentum < 1:
        raise ValueError('momentum must be in [0, 1), got %r' % (momentum,))
    if wd < 0:
        raise ValueError('wd must be >= 0, got %r' % (wd,))
    params = {'learning_rate': base_lr, 'momentum': momentum, 'wd': wd,
              'multi_precision': bool(multi_precision)}
    if lr_scheduler is not None:
        params['lr_scheduler'] = lr_scheduler
    return params


def make_trainer(params, opt_params, optimizer='nag', kvstore='device',
                 update_on_kvstore=False):
    """A ``gluon.Trainer`` usable with :class:`gluon_tricks.precision.LossScaler`.

    ``update_on_kvstore=False`` (the default here, not MXNet's) keeps the optimizer on the
    workers, which is what lets ``LossScaler.step`` call ``allreduce_grads()``, check the
    gradients for overflow and then ``update()``; ``'nag'`` is the paper's optimizer. For
    Horovod build ``hvd.DistributedTrainer`` instead (it never updates on a kvstore).

    Parameters
    ----------
    params : mxnet.gluon.Block or ParameterDict
        A network (its ``collect_params()`` are used) or parameters.
    opt_params : dict
        From :func:`optimizer_params`.
    """
    if isinstance(params, gluon.Block):
        params = params.collect_params()
    if opt_params.get('multi_precision') is False:
        low = [p.name for p in params.values() if np.dtype(p.dtype) == np.float16]
        if low:
            warnings.warn('%d float16 parameter(s) without multi_precision: the optimizer will '
                          'accumulate in float16 (section 3.2 keeps a float32 master copy)'
                          % len(low))
    return gluon.Trainer(params, optimizer, opt_params, kvstore=kvstore,
                         update_on_kvstore=update_on_kvstore)
