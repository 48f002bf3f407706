"""Transfer learning (paper section 6): our classification backbones inside GluonCV's
Faster-RCNN and FCN.

:func:`load_backbone` builds a ResNet of the zoo by name and fills it from a classification
checkpoint, configured for the downstream task:

* ``task='detection'``: every BatchNorm uses its running statistics, in training too
  (``use_global_stats=True``), as GluonCV's ``faster_rcnn_resnet50_v1b_voc`` does -- detection
  batches (one or two images per device) are too small to estimate batch statistics;
* ``task='segmentation'``: stages 3 and 4 are dilated (dilation 2 and 4, no striding), output
  stride 8, as in the paper's FCN (section 6.2, "dilation network strategy on stage-3 and
  stage-4") and GluonCV's ``SegBaseModel``;
* ``task='classification'``: the plain network.

The checkpoint may be

* a ``.params`` file written by ``scripts/classification/train_imagenet.py`` (its
  ``checkpoint-best/net.params`` or ``checkpoint-epochNNNN/net.params``), by
  ``save_parameters`` of our model, or by ``save_parameters`` of GluonCV's model of the same
  name (``resnet50_v1b``, ``resnet50_v1d`` ..., and GluonCV's ``resnet*_v1`` layout);
* a checkpoint directory holding ``net.params``;
* a training ``--save-dir``: its ``checkpoint-best`` (or, without one, the latest checkpoint).

Dilation and frozen statistics change no parameter, so every such file fits the task-specific
network of the same name. A file that does not fit raises :class:`BackboneMismatchError`
naming the model, the file, what differs, and which model the file looks like.
"""
import os
import re

import mxnet as mx

from .errors import UserError
from .model_zoo import get_model, get_model_list
from .model_zoo.io import describe_mismatch, load_params

__all__ = ['TASKS', 'BackboneMismatchError', 'resolve_params_file', 'describe_params',
           'load_backbone', 'backbone_stages', 'stage_channels']

#: Downstream tasks understood by :func:`load_backbone`.
TASKS = ('classification', 'detection', 'segmentation')

# (block kind, blocks per stage) -> depth, as in gluon_tricks.model_zoo.resnet
_DEPTHS = {('basic', (2, 2, 2, 2)): 18, ('basic', (3, 4, 6, 3)): 34,
           ('bottleneck', (3, 4, 6, 3)): 50, ('bottleneck', (3, 4, 23, 3)): 101,
           ('bottleneck', (3, 8, 36, 3)): 152}
# (deep stem width or None, avg_down) -> variant suffix
_VARIANTS = {(None, False): 'v1b', (32, False): 'v1c', (32, True): 'v1d', (64, True): 'v1e',
             (64, False): 'v1s'}
#: The children of a ResNet that a downstream model takes over, in forward order.
_STAGES = ('conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4')


class BackboneMismatchError(UserError, ValueError):
    """A backbone checkpoint that does not fit the requested model."""


# --------------------------------------------------------------------------- checkpoint files
def resolve_params_file(path):
    """The ``.params`` file meant by ``path``.

    Parameters
    ----------
    path : str
        A ``.params`` file; a checkpoint directory holding ``net.params``; or a training
        ``--save-dir`` of ``train_imagenet.py`` (its ``checkpoint-best``, else the checkpoint
        that ``checkpoint-latest.json`` names).

    Returns
    -------
    str
        Path of the parameter file.

    Raises
    ------
    FileNotFoundError
        When nothing usable is found; the message lists what was looked for.
    """
    path = os.path.expanduser(str(path))
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError('backbone parameters %s do not exist' % path)
    candidates = [os.path.join(path, 'net.params'),
                  os.path.join(path, 'checkpoint-best', 'net.params')]
    for cand in candidates:
        if os.path.isfile(cand):
            return cand
    pointer = os.path.join(path, 'checkpoint-latest.json')
    if os.path.isfile(pointer):
        from .checkpoint import CheckpointManager
        latest = CheckpointManager(path).load_latest()
        if latest is not None:
            return latest.params_path
    raise FileNotFoundError(
        'no backbone parameters in directory %s: looked for %s and checkpoint-latest.json'
        % (path, ', '.join(candidates)))


def _mxnet_message(err):
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    useful = [line for line in lines if 'Check failed' in line or 'Error' in line]
    return (useful or lines or [type(err).__name__])[-1][:300]


def _load_arrays(filename, name=None):
    try:
        arrays = mx.nd.load(filename)
    except mx.base.MXNetError as err:
        raise BackboneMismatchError('%s is not a readable MXNet .params file%s (%s)'
                                    % (filename, ' for backbone %s' % name if name else '',
                                       _mxnet_message(err)))
    if not isinstance(arrays, dict):
        raise BackboneMismatchError('%s holds no named parameters (a list of %d arrays): not '
                                    'a file written by save_parameters' % (filename, len(arrays)))
    # files exported from a symbol carry 'arg:'/'aux:' prefixes
    return {k.split(':', 1)[-1]: v for k, v in arrays.items()}


def describe_params(filename):
    """Guess which zoo ResNet a ``.params`` file was saved from.

    Parameters
    ----------
    filename : str

    Returns
    -------
    dict
        ``name`` (e.g. ``'resnet50_v1d'``, or None when the keys are not a ResNet's),
        ``depth``, ``variant``, ``blocks`` (per stage), ``classes`` and ``layout``
        (``'v1b'``: our/GluonCV ResNetV1b names, ``'gluoncv_v1'``: GluonCV's
        ``features.N`` layout).
    """
    keys = _load_arrays(filename)
    info = {'name': None, 'depth': None, 'variant': None, 'blocks': None, 'layout': None,
            'classes': None}
    if 'fc.weight' in keys:
        info['classes'] = int(keys['fc.weight'].shape[0])
    elif 'output.weight' in keys:
        info['classes'] = int(keys['output.weight'].shape[0])
    if any(k.startswith('features.') for k in keys):
        blocks = []
        for stage in range(4, 8):
            idx = {int(m.group(1)) for m in (re.match(r'features\.%d\.(\d+)\.' % stage, k)
                                             for k in keys) if m}
            blocks.append(max(idx) + 1 if idx else 0)
        kind = 'bottleneck' if 'features.4.0.body.6.weight' in keys else 'basic'
        depth = _DEPTHS.get((kind, tuple(blocks)))
        info.update(layout='gluoncv_v1', blocks=blocks, depth=depth, variant='v1')
        if depth:
            info['name'] = 'resnet%d_v1' % depth
        return info
    if 'conv1.weight' not in keys and 'conv1.0.weight' not in keys:
        return info
    blocks = []
    for stage in range(1, 5):
        idx = {int(m.group(1)) for m in (re.match(r'layer%d\.(\d+)\.' % stage, k) for k in keys)
               if m}
        blocks.append(max(idx) + 1 if idx else 0)
    kind = 'bottleneck' if 'layer1.0.conv3.weight' in keys else 'basic'
    stem = int(keys['conv1.0.weight'].shape[0]) if 'conv1.0.weight' in keys else None
    # ResNet-D path B is [avg-pool, conv, bn]: its BN sits at index 2 instead of 1
    avg_down = 'layer2.0.downsample.2.gamma' in keys
    depth = _DEPTHS.get((kind, tuple(blocks)))
    variant = _VARIANTS.get((stem, avg_down))
    info.update(layout='v1b', blocks=blocks, depth=depth, variant=variant)
    if depth and variant:
        name = 'resnet%d_%s' % (depth, variant)
        if name in get_model_list():
            info['name'] = name
    return info


def _describe_for_error(filename):
    try:
        info = describe_params(filename)
    except BackboneMismatchError as err:
        return str(err)
    if info['name']:
        return 'the file looks like %s%s' % (
            info['name'], ' (%d classes)' % info['classes'] if info['classes'] else '')
    if info['blocks']:
        return 'the file holds a ResNet with %s blocks per stage that matches no zoo model' \
            % (info['blocks'],)
    return 'the file does not hold ResNet parameters'


# --------------------------------------------------------------------------- backbone
def load_backbone(name, params, task='classification', ctx=None, norm_layer=None,
                  norm_kwargs=None, **kwargs):
    """Build the zoo ResNet ``name`` for ``task`` and load a classification checkpoint.

    Parameters
    ----------
    name : str
        A zoo ResNet name: ``resnet{18,34,50,101,152}_v1{,b,c,d}``, ``resnet*_v1e``/``_v1s``
        (the paper's B-standard is ``resnet50_v1b``, its D models ``resnet50_v1d``).
    params : str
        Checkpoint: a ``.params`` file, a checkpoint directory or a training save dir (see
        :func:`resolve_params_file`). Ours or GluonCV's for the same name.
    task : {'classification', 'detection', 'segmentation'}
        ``'detection'`` freezes the BN statistics (``use_global_stats``); ``'segmentation'``
        dilates stages 3 and 4 (output stride 8).
    ctx : mxnet.Context or list of Context, optional
        Where the parameters live (default CPU).
    norm_layer : type, optional
        Normalization layer class (e.g. ``mxnet.gluon.contrib.nn.SyncBatchNorm``); the
        parameter names do not depend on it.
    norm_kwargs : dict, optional
        Its extra arguments (e.g. ``{'num_devices': 4}``).
    **kwargs
        Further options of the zoo model.

    Returns
    -------
    gluon_tricks.model_zoo.ResNetV1
        Initialized with the checkpoint's weights (the classifier ``fc`` too, which downstream
        models do not use). ``net.params_file`` is the file that was read.

    Raises
    ------
    ValueError
        Unknown ``name`` or ``task``, or a model that is not a ResNet.
    FileNotFoundError
        ``params`` does not exist.
    BackboneMismatchError
        The checkpoint does not fit ``name``: the message names both, lists the differing
        parameters and says which model the file looks like.
    """
    if task not in TASKS:
        raise ValueError('unknown task %r; valid tasks: %s' % (task, ', '.join(TASKS)))
    models = get_model_list()
    if name is None or name.lower() not in models:
        raise ValueError('unknown backbone %r (parameters %s); valid ResNet backbones: %s'
                         % (name, params, ', '.join(m for m in models if m.startswith('resnet'))))
    name = name.lower()
    if not name.startswith('resnet'):
        raise ValueError('backbone %r (parameters %s) is not a ResNet: Faster-RCNN and FCN take '
                         'conv1..layer4 of a ResNet (resnet*_v1, _v1b, _v1c, _v1d, _v1e, _v1s)'
                         % (name, params))
    try:
        filename = resolve_params_file(params)
    except FileNotFoundError as err:
        raise FileNotFoundError('%s (backbone %s)' % (err, name))
    arrays = _load_arrays(filename, name)
    classifier = arrays.get('fc.weight', arrays.get('output.weight'))
    classes = int(classifier.shape[0]) if classifier is not None else None
    options = dict(kwargs)
    if task == 'detection':
        options['use_global_stats'] = True
    if task == 'segmentation':
        options['dilated'] = True
    if norm_layer is not None:
        options['norm_layer'] = norm_layer
    if norm_kwargs is not None:
        options['norm_kwargs'] = norm_kwargs
    net = get_model(name, classes=classes or 1000, **options)
    ctx = ctx if ctx is not None else mx.cpu()
    if classes is None and 'features.0.weight' not in arrays:
        # a file without classifier (e.g. a saved feature extractor): everything but fc
        # must be there
        missing = sorted(set(net._collect_params_with_prefix()) - set(arrays)
                         - {'fc.weight', 'fc.bias'})
        if missing:
            raise BackboneMismatchError(
                '%s does not fit backbone %s: %s; %s' % (
                    filename, name, describe_mismatch(net, arrays), _describe_for_error(filename)))
    elif 'features.0.weight' not in arrays:
        detail = describe_mismatch(net, arrays)
        if detail:
            raise BackboneMismatchError('%s does not fit backbone %s: %s; %s' % (
                filename, name, detail, _describe_for_error(filename)))
    try:
        load_params(net, filename, ctx=ctx, allow_missing=classes is None)
    except (ValueError, AssertionError, mx.base.MXNetError) as err:
        raise BackboneMismatchError('%s does not fit backbone %s: %s; %s' % (
            filename, name, _mxnet_message(err) if isinstance(err, mx.base.MXNetError)
            else str(err).strip().splitlines()[0][:600],
            _describe_for_error(filename)))
    if classes is None:
        net.fc.initialize(ctx=ctx)
    net.params_file = filename
    return net


def backbone_stages(net):
    """The children of a ResNet that GluonCV's detection and segmentation models take over.

    Parameters
    ----------
    net : gluon_tricks.model_zoo.ResNetV1

    Returns
    -------
    list of (str, mxnet.gluon.Block)
        ``conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4`` in forward order
        (``conv1`` is the 3-layer deep stem of ResNet-C/D).
    """
    return [(n, getattr(net, n)) for n in _STAGES]


def stage_channels(net):
    """Output channels of ``layer3`` and ``layer4`` (1024 and 2048 for a bottleneck ResNet,
    256 and 512 for ResNet-18/34).

    Parameters
    ----------
    net : gluon_tricks.model_zoo.ResNetV1

    Returns
    -------
    tuple of int
    """
    expansion = 4 if hasattr(net.layer1[0], 'conv3') else 1
    return 256 * expansion, 512 * expansion
