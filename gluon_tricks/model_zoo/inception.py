"""Inception-V3 as a Gluon HybridBlock, weight-compatible with GluonCV's ``inceptionv3``.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
https://arxiv.org/abs/1512.00567. The bag-of-tricks paper trains and evaluates it at
299x299 (Table 2 baseline 77.32 top-1).

The blocks nest exactly as in GluonCV (``features.7.3.1.0.weight`` is the 1x1 conv of the
pooling branch of the first A block), so a ``.params`` file written by GluonCV's
``net.save_parameters`` loads into this network with ``net.load_parameters``.
"""
from mxnet.gluon import nn

from ._registry import check_no_pretrained, register

__all__ = ['Inception3', 'BasicConv', 'Concat', 'inception_v3']

# Inception-V3 uses a larger BN epsilon than MXNet's default 1e-5 (as GluonCV and the
# original TensorFlow model do).
INCEPTION_BN_EPSILON = 1e-3


class BasicConv(nn.HybridSequential):
    """Conv (no bias) -> norm (epsilon 1e-3 unless ``norm_kwargs`` says otherwise) -> ReLU.

    A sequence with children ``0``, ``1``, ``2``, as GluonCV's parameter names expect.

    Parameters
    ----------
    in_channels : int
        Input channels.
    channels : int
        Output channels.
    kernel_size : int or tuple of int
        Convolution kernel size.
    strides : int or tuple of int, default 1
        Convolution stride.
    padding : int or tuple of int, default 0
        Zero padding of the convolution.
    norm_layer : type, default mxnet.gluon.nn.BatchNorm
        Normalization layer class.
    norm_kwargs : dict or None, default None
        Extra keyword arguments of ``norm_layer``; they override the epsilon of 1e-3.
    """

    def __init__(self, in_channels, channels, kernel_size, strides=1, padding=0,
                 norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super(BasicConv, self).__init__(**kwargs)
        norm_kwargs = dict({'epsilon': INCEPTION_BN_EPSILON}, **(norm_kwargs or {}))
        with self.name_scope():
            self.add(nn.Conv2D(channels, kernel_size, strides=strides, padding=padding,
                               use_bias=False, in_channels=in_channels))
            self.add(norm_layer(in_channels=channels, **norm_kwargs))
            self.add(nn.Activation('relu'))
        self.out_channels = channels


class Concat(nn.HybridSequential):
    """Feed the input to every child and concatenate their outputs along channels (axis 1)."""

    def hybrid_forward(self, F, x):
        return F.concat(*[block(x) for block in self._children.values()], dim=1)


def _branch(in_channels, convs, pool=None, norm_layer=nn.BatchNorm, norm_kwargs=None):
    """One branch of an inception block: an optional 3x3 pooling, then ``BasicConv`` layers.

    Parameters
    ----------
    in_channels : int
        Input channels of the branch.
    convs : sequence of tuple
        ``(channels, kernel_size, strides, padding)`` of each conv, applied in order.
    pool : {None, 'avg', 'max'}
        ``'avg'``: 3x3 average pool, stride 1, padding 1 (zero padding counted in the mean,
        MXNet's default); ``'max'``: 3x3 max pool, stride 2, no padding.

    Returns
    -------
    tuple of (mxnet.gluon.nn.HybridSequential, int)
        The branch and its output channels.
    """
    seq = nn.HybridSequential(prefix='')
    if pool == 'avg':
        seq.add(nn.AvgPool2D(pool_size=3, strides=1, padding=1, count_include_pad=True))
    elif pool == 'max':
        seq.add(nn.MaxPool2D(pool_size=3, strides=2))
    elif pool is not None:
        raise ValueError('pool must be None, "avg" or "max", got %r' % (pool,))
    channels = in_channels
    for out_channels, kernel_size, strides, padding in convs:
        seq.add(BasicConv(channels, out_channels, kernel_size, strides, padding,
                          norm_layer=norm_layer, norm_kwargs=norm_kwargs, prefix=''))
        channels = out_channels
    return seq, channels


class _InceptionBlock(Concat):
    """Base of the inception blocks: a :class:`Concat` that records ``out_channels``."""

    def __init__(self, in_channels, norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super(_InceptionBlock, self).__init__(**kwargs)
        self._norm = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        self.in_channels = in_channels
        self.out_channels = 0

    def _add_branch(self, convs, pool=None, in_channels=None, parent=None):
        # builds a branch and adds it to `parent` (default: this block)
        branch, channels = _branch(self.in_channels if in_channels is None else in_channels,
                                   convs, pool, **self._norm)
        (self if parent is None else parent).add(branch)
        return branch, channels


class InceptionA(_InceptionBlock):
    """35x35 block (paper Fig. 5): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1.

    Outputs ``224 + pool_features`` channels at the input's resolution.
    """

    def __init__(self, in_channels, pool_features, **kwargs):
        super(InceptionA, self).__init__(in_channels, **kwargs)
        with self.name_scope():
            outs = [self._add_branch([(64, 1, 1, 0)])[1],
                    self._add_branch([(48, 1, 1, 0), (64, 5, 1, 2)])[1],
                    self._add_branch([(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)])[1],
                    self._add_branch([(pool_features, 1, 1, 0)], pool='avg')[1]]
        self.out_channels = sum(outs)


class InceptionB(_InceptionBlock):
    """Grid reduction 35x35 -> 17x17 (paper Fig. 10): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2.

    Outputs ``480 + in_channels`` channels.
    """

    def __init__(self, in_channels, **kwargs):
        super(InceptionB, self).__init__(in_channels, **kwargs)
        with self.name_scope():
            outs = [self._add_branch([(384, 3, 2, 0)])[1],
                    self._add_branch([(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 2, 0)])[1],
                    self._add_branch([], pool='max')[1]]
        self.out_channels = sum(outs)


class InceptionC(_InceptionBlock):
    """17x17 block with factorized 7x7 convs (paper Fig. 6, n = 7).

    Branches: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1; outputs 768 channels.

    Parameters
    ----------
    channels_7x7 : int
        Width of the inner 7x1/1x7 convs (128, 160, 160, 192 in the four C blocks).
    """

    def __init__(self, in_channels, channels_7x7, **kwargs):
        super(InceptionC, self).__init__(in_channels, **kwargs)
        c7 = channels_7x7
        with self.name_scope():
            outs = [self._add_branch([(192, 1, 1, 0)])[1],
                    self._add_branch([(c7, 1, 1, 0), (c7, (1, 7), 1, (0, 3)),
                                      (192, (7, 1), 1, (3, 0))])[1],
                    self._add_branch([(c7, 1, 1, 0), (c7, (7, 1), 1, (3, 0)),
                                      (c7, (1, 7), 1, (0, 3)), (c7, (7, 1), 1, (3, 0)),
                                      (192, (1, 7), 1, (0, 3))])[1],
                    self._add_branch([(192, 1, 1, 0)], pool='avg')[1]]
        self.out_channels = sum(outs)


class InceptionD(_InceptionBlock):
    """Grid reduction 17x17 -> 8x8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2.

    Outputs ``512 + in_channels`` channels.
    """

    def __init__(self, in_channels, **kwargs):
        super(InceptionD, self).__init__(in_channels, **kwargs)
        with self.name_scope():
            outs = [self._add_branch([(192, 1, 1, 0), (320, 3, 2, 0)])[1],
                    self._add_branch([(192, 1, 1, 0), (192, (1, 7), 1, (0, 3)),
                                      (192, (7, 1), 1, (3, 0)), (192, 3, 2, 0)])[1],
                    self._add_branch([], pool='max')[1]]
        self.out_channels = sum(outs)


class InceptionE(_InceptionBlock):
    """8x8 block with expanded filter banks (paper Fig. 7); outputs 2048 channels.

    Branches: 1x1 | 1x1 then (1x3 | 3x1) | 1x1-3x3 then (1x3 | 3x1) | avgpool-1x1.
    The two split branches are sequences of [branch, Concat of two branches], the nesting
    GluonCV's parameter names encode (e.g. ``features.16.1.1.0.0.0.weight`` is the 1x3 conv
    of the second branch of the first E block).
    """

    def __init__(self, in_channels, **kwargs):
        super(InceptionE, self).__init__(in_channels, **kwargs)
        with self.name_scope():
            outs = [self._add_branch([(320, 1, 1, 0)])[1]]
            for stem_convs in ([(384, 1, 1, 0)], [(448, 1, 1, 0), (384, 3, 1, 1)]):
                seq = nn.HybridSequential(prefix='')
                _, mid = self._add_branch(stem_convs, parent=seq)
                split = Concat(prefix='')
                split_outs = [
                    self._add_branch([(384, (1, 3), 1, (0, 1))], in_channels=mid,
                                     parent=split)[1],
                    self._add_branch([(384, (3, 1), 1, (1, 0))], in_channels=mid,
                                     parent=split)[1]]
                seq.add(split)
                self.add(seq)
                outs.append(sum(split_outs))
            outs.append(self._add_branch([(192, 1, 1, 0)], pool='avg')[1])
        self.out_channels = sum(outs)


class Inception3(nn.HybridBlock):
    """Inception-V3 classifier (without the auxiliary head, as in GluonCV).

    The input is an NCHW batch of 299x299 images, the size it was designed, trained and
    evaluated at (the feature map before pooling is then 8x8). Other sizes work down to
    75x75 (final map 1x1) because the last pooling is global: GluonCV pools with a fixed
    ``AvgPool2D(8)`` instead, which is identical at 299x299 (and up to 330x330) but fails
    below 299 and silently pools only the top-left 8x8 window of larger maps.

    Parameters
    ----------
    classes : int, default 1000
        Number of output classes.
    norm_layer : type, default mxnet.gluon.nn.BatchNorm
        Normalization layer class, e.g. ``mxnet.gluon.contrib.nn.SyncBatchNorm``; it is called
        with ``in_channels=...``, ``epsilon=1e-3`` and ``**norm_kwargs``.
    norm_kwargs : dict or None, default None
        Extra keyword arguments of every ``norm_layer`` (may override ``epsilon``).
        Not modified.
    partial_bn : bool, default False
        Freeze the batch statistics of every norm layer except the first
        (``use_global_stats=True``, which ``norm_layer`` must accept): during training they
        normalize with their running mean and variance, which stay fixed. GluonCV's class
        has the same option, but its ``inception_v3`` factory drops the argument.
    dropout : float, default 0.5
        Dropout rate before the classifier.
    **kwargs
        Passed to :class:`mxnet.gluon.HybridBlock` (``prefix``, ``params``).

    Attributes
    ----------
    features : mxnet.gluon.nn.HybridSequential
        Stem, the 11 inception blocks, global average pooling and dropout; outputs
        (N, 2048, 1, 1).
    output : mxnet.gluon.nn.Dense
        The classifier (flattens its input).
    """

    def __init__(self, classes=1000, norm_layer=nn.BatchNorm, norm_kwargs=None,
                 partial_bn=False, dropout=0.5, **kwargs):
        super(Inception3, self).__init__(**kwargs)
        first_norm = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        rest_kwargs = dict(norm_kwargs or {})
        if partial_bn:
            rest_kwargs['use_global_stats'] = True
        norm = dict(norm_layer=norm_layer, norm_kwargs=rest_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            with self.features.name_scope():
                # stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35
                self.features.add(BasicConv(3, 32, 3, strides=2, **first_norm))
                self.features.add(BasicConv(32, 32, 3, **norm))
                self.features.add(BasicConv(32, 64, 3, padding=1, **norm))
                self.features.add(nn.MaxPool2D(pool_size=3, strides=2))
                self.features.add(BasicConv(64, 80, 1, **norm))
                self.features.add(BasicConv(80, 192, 3, **norm))
                self.features.add(nn.MaxPool2D(pool_size=3, strides=2))
                # inception blocks: 3 x A (35x35), B, 4 x C (17x17), D, 2 x E (8x8)
                blocks = [(InceptionA, dict(pool_features=32)),
                          (InceptionA, dict(pool_features=64)),
                          (InceptionA, dict(pool_features=64)),
                          (InceptionB, {}),
                          (InceptionC, dict(channels_7x7=128)),
                          (InceptionC, dict(channels_7x7=160)),
                          (InceptionC, dict(channels_7x7=160)),
                          (InceptionC, dict(channels_7x7=192)),
                          (InceptionD, {}),
                          (InceptionE, {}),
                          (InceptionE, {})]
                channels = 192
                for block_cls, args in blocks:
                    block = block_cls(channels, **dict(args, **norm))
                    self.features.add(block)
                    channels = block.out_channels
                self.features.add(nn.GlobalAvgPool2D())
                self.features.add(nn.Dropout(dropout))
            self.output = nn.Dense(classes, in_units=channels)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


@register('inceptionv3')
def inception_v3(pretrained=False, **kwargs):
    """Build Inception-V3 (GluonCV ``inceptionv3``); expects 299x299 input.

    Parameters
    ----------
    pretrained : bool, default False
        Must be false: nothing is downloaded. To use trained weights, load a ``.params``
        file with ``net.load_parameters(path)``.
    **kwargs
        ``classes``, ``norm_layer``, ``norm_kwargs``, ``partial_bn``, ``dropout``,
        ``prefix``, ``params`` (see :class:`Inception3`).

    Returns
    -------
    Inception3
        The network, parameters not yet initialized.

    Raises
    ------
    ValueError
        If ``pretrained`` is true.
    """
    check_no_pretrained('inceptionv3', pretrained)
    return Inception3(**kwargs)
