"""ResNet v1 and the paper's model tweaks (He et al., 2018, section 4, Figure 2).

One configurable :class:`ResNetV1` covers every variant; the named models are thin entry
points:

======================  ==========================================================
``resnet*_v1``          ResNet-A: stride 2 on the first 1x1 conv of path A
``resnet*_v1b``         ResNet-B: stride 2 moved to the 3x3 conv of path A (4.1)
``resnet*_v1c``         ResNet-C: B + 3x3 deep stem, widths 32-32-64 (4.2)
``resnet*_v1d``         ResNet-D: C + 2x2 avg-pool then 1x1 conv on path B (4.3)
``resnet*_v1e``         D with a deep stem of width 64 (GluonCV)
``resnet*_v1s``         C with a deep stem of width 64 (GluonCV, segmentation backbone)
======================  ==========================================================

The children are named as in GluonCV's ``ResNetV1b`` (``conv1``, ``bn1``, ``layer1`` ...
``fc``), so ``.params`` files load both ways between a ``_v1b`` ... ``_v1s`` model and GluonCV's
same-named one. GluonCV's ResNet-A (``resnet*_v1``, class ``ResNetV1``) uses another layout
(``features.N``/``output``): our ``resnet*_v1`` writes its files in that layout
(:meth:`ResNetV1.save_parameters`) and reads both (:meth:`ResNetV1.load_parameters`), through
one name table (``_V1_TOP``/``_V1_BODY``) read in either direction.
"""
import functools
import re

import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from ._registry import check_no_pretrained, register
from .io import first_copy

__all__ = ['ResNetV1', 'BasicBlock', 'Bottleneck', 'get_resnet']


class _Identity(HybridBlock):
    """A parameter-free placeholder keeping child indices aligned with GluonCV."""

    def hybrid_forward(self, F, x):
        return x


def _norm(norm_layer, norm_kwargs, channels, zero_gamma=False):
    kwargs = dict(norm_kwargs)
    if zero_gamma:
        # Section 3.1 "Zero gamma": the block starts as an identity mapping.
        kwargs['gamma_initializer'] = 'zeros'
    return norm_layer(in_channels=channels, **kwargs)


class BasicBlock(HybridBlock):
    """Residual block of two 3x3 convolutions (ResNet-18/34).

    Parameters
    ----------
    planes : int
        Output channels.
    strides : int
        Stride of the first 3x3 convolution.
    dilation : int
        Dilation of the first 3x3 convolution.
    previous_dilation : int
        Dilation of the second 3x3 convolution.
    downsample : HybridBlock or None
        Path B when the shape changes.
    last_gamma : bool
        Zero-initialise the gamma of the block's last BatchNorm.
    """
    expansion = 1

    def __init__(self, planes, strides=1, dilation=1, previous_dilation=1, downsample=None,
                 last_gamma=False, norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super(BasicBlock, self).__init__(**kwargs)
        norm_kwargs = norm_kwargs or {}
        with self.name_scope():
            self.conv1 = nn.Conv2D(planes, 3, strides, padding=dilation, dilation=dilation,
                                   use_bias=False)
            self.bn1 = _norm(norm_layer, norm_kwargs, planes)
            self.relu1 = nn.Activation('relu')
            self.conv2 = nn.Conv2D(planes, 3, 1, padding=previous_dilation,
                                   dilation=previous_dilation, use_bias=False)
            self.bn2 = _norm(norm_layer, norm_kwargs, planes, zero_gamma=last_gamma)
            self.relu2 = nn.Activation('relu')
            self.downsample = downsample

    def hybrid_forward(self, F, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + residual)


class Bottleneck(HybridBlock):
    """Bottleneck residual block: 1x1 -> 3x3 -> 1x1 (ResNet-50/101/152), Figure 1/2.

    Parameters
    ----------
    planes : int
        Channels of the 3x3 convolution; the block outputs ``4 * planes``.
    strides : int
        Stride of the block's path A.
    stride_on_1x1 : bool
        ResNet-A (True): the stride sits on the first 1x1 conv, which then skips 3/4 of
        the input. ResNet-B and later (False): on the 3x3 conv (section 4.1).
    conv_bias : bool
        Give the two 1x1 convolutions a bias, as GluonCV's ResNet-A (``BottleneckV1``) has.
    dilation : int
        Dilation of the 3x3 convolution.
    downsample : HybridBlock or None
        Path B when the shape changes.
    last_gamma : bool
        Zero-initialise the gamma of ``bn3`` (section 3.1).
    """
    expansion = 4

    def __init__(self, planes, strides=1, dilation=1, previous_dilation=1, downsample=None,
                 last_gamma=False, norm_layer=nn.BatchNorm, norm_kwargs=None,
                 stride_on_1x1=False, conv_bias=False, **kwargs):
        super(Bottleneck, self).__init__(**kwargs)
        norm_kwargs = norm_kwargs or {}
        s1, s3 = (strides, 1) if stride_on_1x1 else (1, strides)
        with self.name_scope():
            self.conv1 = nn.Conv2D(planes, 1, s1, use_bias=conv_bias)
            self.bn1 = _norm(norm_layer, norm_kwargs, planes)
            self.relu1 = nn.Activation('relu')
            self.conv2 = nn.Conv2D(planes, 3, s3, padding=dilation, dilation=dilation,
                                   use_bias=False)
            self.bn2 = _norm(norm_layer, norm_kwargs, planes)
            self.relu2 = nn.Activation('relu')
            self.conv3 = nn.Conv2D(planes * 4, 1, 1, use_bias=conv_bias)
            self.bn3 = _norm(norm_layer, norm_kwargs, planes * 4, zero_gamma=last_gamma)
            self.relu3 = nn.Activation('relu')
            self.downsample = downsample

    def hybrid_forward(self, F, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + residual)


class ResNetV1(HybridBlock):
    """ResNet v1 with the paper's tweaks as options (section 4).

    Parameters
    ----------
    block : {BasicBlock, Bottleneck}
        Residual block type.
    layers : list of int
        Number of blocks in each of the four stages.
    classes : int, default 1000
        Number of output classes.
    stem_type : {'default', 'deep'}
        ``'default'``: one 7x7 conv, stride 2. ``'deep'``: three 3x3 convs with widths
        ``stem_width, stem_width, 2 * stem_width``, the first with stride 2 (ResNet-C).
    stem_width : int, default 32
        Width of the deep stem (32 in the paper, 64 for GluonCV's ``_v1e``/``_v1s``).
    avg_down : bool, default False
        ResNet-D path B: 2x2 average pooling with stride 2, then a 1x1 conv with stride 1.
    stride_on_1x1 : bool, default False
        ResNet-A: stride on the first 1x1 conv of path A instead of the 3x3 conv
        (bottleneck blocks only; a basic block strides its first 3x3 conv either way).
    conv_bias : bool, default False
        Bias on the bottleneck's 1x1 convs (GluonCV ``resnet*_v1`` compatibility; bottleneck
        blocks only).
    last_gamma : bool, default False
        Zero gamma (section 3.1): zero-initialise the last BN of every residual block.
    dilated : bool, default False
        Stages 3 and 4 keep their resolution and use dilation 2 and 4 instead (output
        stride 8, for segmentation).
    norm_layer : type, default mxnet.gluon.nn.BatchNorm
        Normalisation layer class (e.g. ``mxnet.gluon.contrib.nn.SyncBatchNorm``).
    norm_kwargs : dict, optional
        Extra arguments of every normalisation layer.
    use_global_stats : bool, default False
        BN uses its running statistics in training too (frozen BN for detection).
    final_drop : float, default 0.0
        Dropout before the classifier.
    save_layout : {'v1b', 'gluoncv_v1'}, default 'v1b'
        Keys of the files that :meth:`save_parameters` writes: our children's names (those of
        GluonCV's ``ResNetV1b``), or GluonCV's ``ResNetV1`` layout (``features.N``/``output``,
        the ``resnet*_v1`` default) so that GluonCV's ``resnet*_v1`` loads them.
        :meth:`load_parameters` reads both.
    """

    def __init__(self, block, layers, classes=1000, stem_type='default', stem_width=32,
                 avg_down=False, stride_on_1x1=False, conv_bias=False, last_gamma=False,
                 dilated=False, norm_layer=nn.BatchNorm, norm_kwargs=None,
                 use_global_stats=False, final_drop=0.0, save_layout='v1b', **kwargs):
        super(ResNetV1, self).__init__(**kwargs)
        if stem_type not in ('default', 'deep'):
            raise ValueError("stem_type must be 'default' or 'deep', got %r" % (stem_type,))
        if save_layout not in ('v1b', 'gluoncv_v1'):
            raise ValueError("save_layout must be 'v1b' or 'gluoncv_v1', got %r"
                             % (save_layout,))
        self._save_layout = save_layout
        if len(layers) != 4:
            raise ValueError('layers must list 4 stage depths, got %r' % (layers,))
        norm_kwargs = dict(norm_kwargs or {})
        if use_global_stats:
            norm_kwargs['use_global_stats'] = True
        self._block_kwargs = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                                  last_gamma=last_gamma)
        if issubclass(block, Bottleneck):  # ResNet-A's 1x1 options (a BasicBlock has no 1x1)
            self._block_kwargs.update(stride_on_1x1=stride_on_1x1, conv_bias=conv_bias)
        self._avg_down = avg_down
        self.inplanes = 2 * stem_width if stem_type == 'deep' else 64
        with self.name_scope():
            if stem_type == 'deep':
                # Section 4.2 (ResNet-C): the 7x7 conv becomes three 3x3 convs.
                self.conv1 = nn.HybridSequential(prefix='conv1')
                with self.conv1.name_scope():
                    for i, width in enumerate((stem_width, stem_width, 2 * stem_width)):
                        self.conv1.add(nn.Conv2D(width, 3, 2 if i == 0 else 1, padding=1,
                                                 use_bias=False))
                        if i < 2:
                            self.conv1.add(_norm(norm_layer, norm_kwargs, width))
                            self.conv1.add(nn.Activation('relu'))
            else:
                self.conv1 = nn.Conv2D(64, 7, 2, padding=3, use_bias=False)
            self.bn1 = _norm(norm_layer, norm_kwargs, self.inplanes)
            self.relu = nn.Activation('relu')
            self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            self.layer1 = self._make_layer(1, block, 64, layers[0], 1, 1)
            self.layer2 = self._make_layer(2, block, 128, layers[1], 2, 1)
            self.layer3 = self._make_layer(3, block, 256, layers[2], 1 if dilated else 2,
                                           2 if dilated else 1)
            self.layer4 = self._make_layer(4, block, 512, layers[3], 1 if dilated else 2,
                                           4 if dilated else 1)
            self.avgpool = nn.GlobalAvgPool2D()
            self.flat = nn.Flatten()
            self.drop = nn.Dropout(final_drop) if final_drop > 0 else None
            self.fc = nn.Dense(classes, in_units=512 * block.expansion)

    def _make_layer(self, stage, block, planes, blocks, strides, dilation):
        out_channels = planes * block.expansion
        downsample = None
        if strides != 1 or self.inplanes != out_channels:
            downsample = nn.HybridSequential(prefix='down%d_' % stage)
            with downsample.name_scope():
                if self._avg_down:
                    # Section 4.3 (ResNet-D): average pooling does the downsampling so the
                    # 1x1 conv sees every input pixel. Without a stride (dilated stages) the
                    # pool is an identity, kept so parameter indices match GluonCV.
                    if strides != 1:
                        downsample.add(nn.AvgPool2D(pool_size=strides, strides=strides,
                                                    ceil_mode=True, count_include_pad=False))
                    else:
                        downsample.add(_Identity())
                    downsample.add(nn.Conv2D(out_channels, 1, 1, use_bias=False))
                else:
                    downsample.add(nn.Conv2D(out_channels, 1, strides, use_bias=False))
                downsample.add(_norm(self._block_kwargs['norm_layer'],
                                     self._block_kwargs['norm_kwargs'], out_channels))
        layer = nn.HybridSequential(prefix='layers%d_' % stage)
        with layer.name_scope():
            # In a dilated stage the first block keeps the previous stage's dilation
            # (1 for dilation 2, 2 for dilation 4), as in GluonCV and DeepLab.
            layer.add(block(planes, strides, dilation=max(1, dilation // 2),
                            previous_dilation=dilation, downsample=downsample,
                            **self._block_kwargs))
            self.inplanes = out_channels
            for _ in range(1, blocks):
                layer.add(block(planes, 1, dilation=dilation, previous_dilation=dilation,
                                **self._block_kwargs))
        return layer

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.flat(self.avgpool(x))
        if self.drop is not None:
            x = self.drop(x)
        return self.fc(x)

    def file_keys(self):
        """Structural name (``layer1.0.conv2.weight``) -> the key that :meth:`save_parameters`
        writes it under (``features.4.0.body.3.weight`` for the ``'gluoncv_v1'`` layout)."""
        keys = self._collect_params_with_prefix()
        if self._save_layout == 'gluoncv_v1':
            return {k: _v1_key(k, to_gluoncv=True) for k in keys}
        return {k: k for k in keys}

    def save_parameters(self, filename, deduplicate=False):
        """:meth:`mxnet.gluon.Block.save_parameters` under the keys of :meth:`file_keys`, with
        the first device's copy of each parameter (:func:`~gluon_tricks.model_zoo.io.first_copy`).

        ``resnet*_v1`` writes GluonCV's ``ResNetV1`` layout, so the file loads strictly into
        GluonCV's same-named model; every other variant writes our (= GluonCV's
        ``ResNetV1b``) names. Saving a larger network that contains this one is unaffected.
        """
        params = self._collect_params_with_prefix()
        if deduplicate:  # as MXNet: a shared parameter is stored once
            reverse = {v: k for k, v in params.items()}
            params = {k: v for v, k in reverse.items()}
        keys = self.file_keys()
        arg_dict = {keys[k]: first_copy(v) for k, v in params.items()}
        save_fn = mx.npx.save if mx.util.is_np_array() else mx.nd.save
        save_fn(filename, arg_dict)

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False,
                        cast_dtype=False, dtype_source='current'):
        """Load parameters saved by this class or by GluonCV's same-named model.

        Files in GluonCV's ``ResNetV1`` layout (``features.N...``/``output``: GluonCV's
        ``resnet*_v1`` and ours since they save in it) are renamed to our layout first. Other
        files (our older ``resnet*_v1`` checkpoints, every ``_v1b`` ... ``_v1s``) load as they
        are.

        Parameters
        ----------
        filename : str
            A ``.params`` file written by ``save_parameters``.
        ctx, allow_missing, ignore_extra, cast_dtype, dtype_source
            As in :meth:`mxnet.gluon.Block.load_parameters`.
        """
        loaded = mx.nd.load(filename)
        if isinstance(loaded, dict) and any(k.startswith('features.') for k in loaded):
            loaded = {_v1_key(k, to_gluoncv=False): v for k, v in loaded.items()}
            params = self._collect_params_with_prefix()
            missing = sorted(set(params) - set(loaded))
            extra = sorted(set(loaded) - set(params))
            if (missing and not allow_missing) or (extra and not ignore_extra):
                raise ValueError(
                    "%s does not fit %s: missing %s, unexpected %s. Was it saved by another "
                    "model (or depth)?" % (filename, getattr(self, 'model_name', self.name),
                                           missing[:5], extra[:5]))
            for name, value in loaded.items():
                if name in params:
                    params[name]._load_init(value, ctx, cast_dtype=cast_dtype,
                                            dtype_source=dtype_source)
            return
        try:
            super(ResNetV1, self).load_parameters(
                filename, ctx=ctx, allow_missing=allow_missing, ignore_extra=ignore_extra,
                cast_dtype=cast_dtype, dtype_source=dtype_source)
        except AssertionError as err:
            raise ValueError('%s does not fit %s: %s' % (
                filename, getattr(self, 'model_name', self.name), str(err)[:500]))


# GluonCV's ResNetV1 (resnet*_v1) <-> our children: one table, read left to right on load and
# right to left on save. GluonCV: features = [conv, bn, relu, maxpool, stage1..4, pool],
# output = the classifier; a block's body = [conv, bn, relu, conv, bn(, relu, conv, bn)] and
# its downsample = [conv, bn] as ours.
_V1_TOP = (('features.0', 'conv1'), ('features.1', 'bn1'), ('features.4', 'layer1'),
           ('features.5', 'layer2'), ('features.6', 'layer3'), ('features.7', 'layer4'),
           ('output', 'fc'))
_V1_BODY = (('body.0', 'conv1'), ('body.1', 'bn1'), ('body.3', 'conv2'), ('body.4', 'bn2'),
            ('body.6', 'conv3'), ('body.7', 'bn3'))


def _swap_prefix(key, table, to_gluoncv):
    for theirs, ours in table:
        src, dst = (ours, theirs) if to_gluoncv else (theirs, ours)
        if key.startswith(src + '.'):
            return dst + key[len(src):]
    return key


def _v1_key(key, to_gluoncv):
    """One structural name in the other layout: ``layer1.0.conv2.weight`` (ours) <->
    ``features.4.0.body.3.weight`` (GluonCV ``ResNetV1``); unknown names stay as they are."""
    key = _swap_prefix(key, _V1_TOP, to_gluoncv)
    stage = r'features\.[4-7]' if to_gluoncv else r'layer[1-4]'
    m = re.match(r'(%s\.\d+\.)(.*)$' % stage, key)
    if m:
        key = m.group(1) + _swap_prefix(m.group(2), _V1_BODY, to_gluoncv)
    return key


_SPECS = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
          50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3]),
          152: (Bottleneck, [3, 8, 36, 3])}

# variant -> the tweaks of section 4 that it applies
_VARIANTS = {
    'v1': dict(stride_on_1x1=True, conv_bias=True,            # ResNet-A, saved in
               save_layout='gluoncv_v1'),                     # GluonCV's ResNetV1 layout
    'v1b': dict(),                                          # ResNet-B
    'v1c': dict(stem_type='deep', stem_width=32),           # ResNet-C
    'v1d': dict(stem_type='deep', stem_width=32, avg_down=True),  # ResNet-D
    'v1e': dict(stem_type='deep', stem_width=64, avg_down=True),
    'v1s': dict(stem_type='deep', stem_width=64),
}


def get_resnet(num_layers, variant='v1d', pretrained=False, **kwargs):
    """Build a ResNet of the given depth and variant.

    Parameters
    ----------
    num_layers : {18, 34, 50, 101, 152}
        Depth.
    variant : {'v1', 'v1b', 'v1c', 'v1d', 'v1e', 'v1s'}
        Which of the paper's tweaks to apply (see the module docstring).
    pretrained : bool, default False
        Not supported (nothing is downloaded): load a ``.params`` file instead.
    **kwargs
        Options of :class:`ResNetV1` (``classes``, ``last_gamma``, ``dilated`` ...).
    """
    check_no_pretrained('resnet%s_%s' % (num_layers, variant), pretrained)
    if num_layers not in _SPECS:
        raise ValueError('num_layers must be one of %s, got %r' % (sorted(_SPECS), num_layers))
    if variant not in _VARIANTS:
        raise ValueError('variant must be one of %s, got %r' % (sorted(_VARIANTS), variant))
    block, layers = _SPECS[num_layers]
    options = dict(_VARIANTS[variant])
    options.update(kwargs)
    return ResNetV1(block, layers, **options)


def _register_all():
    for depth in _SPECS:
        for variant in _VARIANTS:
            if depth < 50 and variant in ('v1e', 'v1s'):
                continue

            register('resnet%d_%s' % (depth, variant))(
                functools.partial(get_resnet, depth, variant))


_register_all()
