"""MobileNet (v1) as a Gluon HybridBlock, weight-compatible with GluonCV's ``mobilenet*``.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", https://arxiv.org/abs/1704.04861. The paper's Table 2 baseline (69.03 top-1)
and Table 3/6 rows use the width multiplier 1.0 (``mobilenet1.0``).

The layers are laid out exactly as in GluonCV (one flat ``features`` sequence of
conv, BN, ReLU triples, then global pooling, and ``output``), so a ``.params`` file written by
GluonCV's ``net.save_parameters`` loads into this network with ``net.load_parameters`` and
gives the same outputs.
"""
from mxnet.gluon import nn

from ._registry import check_no_pretrained, register

__all__ = ['MobileNet', 'MOBILENET_BLOCKS', 'get_mobilenet']

# The 13 depthwise-separable blocks of the paper's Table 1, at width multiplier 1:
# (input channels of the depthwise 3x3 conv, output channels of the pointwise 1x1 conv, stride
# of the depthwise conv). The stem (3x3 conv, 32 channels, stride 2) comes before them.
MOBILENET_BLOCKS = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
)


def _add_conv_bn_relu(seq, in_channels, channels, kernel_size, strides=1, padding=0,
                      groups=1, norm_layer=nn.BatchNorm, norm_kwargs=None):
    """Append conv (no bias) -> norm -> ReLU to ``seq`` as three separate children.

    They are added flat (not wrapped in a sub-block) because GluonCV's parameter names
    (``features.0.weight``, ``features.1.gamma``, ``features.3.weight``, ...) count them so.
    """
    seq.add(nn.Conv2D(channels, kernel_size, strides=strides, padding=padding, groups=groups,
                      use_bias=False, in_channels=in_channels))
    seq.add(norm_layer(in_channels=channels, **(norm_kwargs or {})))
    seq.add(nn.Activation('relu'))


class MobileNet(nn.HybridBlock):
    """MobileNet v1: a 3x3 stem then 13 depthwise-separable conv blocks, global average pool
    and a dense classifier.

    Every convolution is followed by batch normalization and ReLU (not ReLU6). The input is an
    NCHW image batch; 224x224 is the paper's size, but any size works (the network has an
    overall stride of 32 and ends in global pooling).

    Parameters
    ----------
    multiplier : float, default 1.0
        Width multiplier alpha of the paper: every layer has ``int(c * multiplier)`` channels,
        where ``c`` is its channel count in the 1.0 network. GluonCV ships 1.0, 0.75, 0.5
        and 0.25.
    classes : int, default 1000
        Number of output classes.
    norm_layer : type, default mxnet.gluon.nn.BatchNorm
        Normalization layer class, e.g. ``mxnet.gluon.contrib.nn.SyncBatchNorm``; it is called
        with ``in_channels=...`` and ``**norm_kwargs``.
    norm_kwargs : dict or None, default None
        Extra keyword arguments of every ``norm_layer`` (e.g. ``{'num_devices': 4}``).
    **kwargs
        Passed to :class:`mxnet.gluon.HybridBlock` (``prefix``, ``params``).

    Attributes
    ----------
    features : mxnet.gluon.nn.HybridSequential
        Stem, separable blocks, global average pooling and flatten; outputs (N, C) with
        ``C = int(1024 * multiplier)``.
    output : mxnet.gluon.nn.Dense
        The classifier.
    """

    def __init__(self, multiplier=1.0, classes=1000, norm_layer=nn.BatchNorm, norm_kwargs=None,
                 **kwargs):
        super(MobileNet, self).__init__(**kwargs)
        if multiplier <= 0 or int(32 * multiplier) < 1:
            raise ValueError('multiplier must give at least one channel in every layer, '
                             'got %r' % (multiplier,))
        self.multiplier = multiplier

        def width(c):
            return int(c * multiplier)

        conv_kwargs = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix='')
            with self.features.name_scope():
                # stem: full 3x3 conv, stride 2
                _add_conv_bn_relu(self.features, 3, width(32), 3, strides=2, padding=1,
                                  **conv_kwargs)
                for in_c, out_c, stride in MOBILENET_BLOCKS:
                    # depthwise 3x3 (one group per channel), then pointwise 1x1
                    _add_conv_bn_relu(self.features, width(in_c), width(in_c), 3,
                                      strides=stride, padding=1, groups=width(in_c),
                                      **conv_kwargs)
                    _add_conv_bn_relu(self.features, width(in_c), width(out_c), 1,
                                      **conv_kwargs)
                self.features.add(nn.GlobalAvgPool2D())
                self.features.add(nn.Flatten())
            self.output = nn.Dense(classes, in_units=width(MOBILENET_BLOCKS[-1][1]))

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def get_mobilenet(multiplier, pretrained=False, **kwargs):
    """Build a MobileNet v1 with the given width multiplier.

    Parameters
    ----------
    multiplier : float
        Width multiplier (see :class:`MobileNet`).
    pretrained : bool, default False
        Must be false: nothing is downloaded. To use trained weights, load a ``.params``
        file with ``net.load_parameters(path)``.
    **kwargs
        ``classes``, ``norm_layer``, ``norm_kwargs``, ``prefix``, ``params``
        (see :class:`MobileNet`).

    Returns
    -------
    MobileNet
        The network, parameters not yet initialized.

    Raises
    ------
    ValueError
        If ``pretrained`` is true.
    """
    check_no_pretrained('mobilenet%g' % multiplier, pretrained)
    return MobileNet(multiplier, **kwargs)


@register('mobilenet1.0')
def mobilenet1_0(**kwargs):
    """MobileNet v1, width multiplier 1.0 (GluonCV ``mobilenet1.0``); see :func:`get_mobilenet`."""
    return get_mobilenet(1.0, **kwargs)


@register('mobilenet0.75')
def mobilenet0_75(**kwargs):
    """MobileNet v1, width multiplier 0.75 (GluonCV ``mobilenet0.75``); see
    :func:`get_mobilenet`."""
    return get_mobilenet(0.75, **kwargs)


@register('mobilenet0.5')
def mobilenet0_5(**kwargs):
    """MobileNet v1, width multiplier 0.5 (GluonCV ``mobilenet0.5``); see :func:`get_mobilenet`."""
    return get_mobilenet(0.5, **kwargs)


@register('mobilenet0.25')
def mobilenet0_25(**kwargs):
    """MobileNet v1, width multiplier 0.25 (GluonCV ``mobilenet0.25``); see
    :func:`get_mobilenet`."""
    return get_mobilenet(0.25, **kwargs)
