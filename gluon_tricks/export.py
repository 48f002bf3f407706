"""Export hybridized models for deployment, and load them back."""
import json
import os
import warnings

import mxnet as mx

from .data.transforms import AugmentConfig
from .errors import UserError, mxnet_error_line
from .model_zoo.io import gluoncv_param_names

__all__ = ['export_model', 'load_exported', 'ExportError']


class ExportError(UserError, ValueError):
    """Exported files that are missing parts or cannot be read."""


def export_model(net, prefix, input_size=None, crop_ratio=None, mean=None, std=None,
                 class_names=None, model_name=None):
    """Hybridize ``net`` and write ``prefix-symbol.json``, ``prefix-0000.params`` and
    ``prefix-meta.json`` (input size, normalisation and class names for inference).

    For a model GluonCV also has, the parameters (the symbol's variables and the ``arg:``/
    ``aux:`` keys) take the names of GluonCV's export of that model (see
    :func:`gluon_tricks.model_zoo.io.gluoncv_param_names`): GluonCV's ``-symbol.json`` loads
    our ``-0000.params`` with ``SymbolBlock.imports`` (strict) and the reverse, and the names
    do not depend on how many models the process built (as Gluon's automatic prefixes do).
    ``meta['param_names']`` says ``'gluoncv'`` or ``'gluon_tricks'`` (Gluon's own names).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        Initialized network.
    prefix : str
        Output path prefix, e.g. ``out/resnet50_v1d``.
    input_size, crop_ratio, mean, std : optional
        The :class:`~gluon_tricks.data.ValTransform` of training (default: the paper's,
        224 px); recorded in the metadata.
    class_names : list of str, optional
        Names of the classifier's outputs, in order.
    model_name : str, optional
        The zoo name, recorded in the metadata.

    Returns
    -------
    dict
        Paths of the written files.
    """
    val = AugmentConfig.from_meta(dict(input_size=input_size, crop_ratio=crop_ratio, mean=mean,
                                       std=std)).val_meta()
    input_size = val['input_size']
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    net.hybridize(static_alloc=True, static_shape=True)
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]  # e.g. a GPU
    net(mx.nd.zeros((1, 3, input_size, input_size), ctx=ctx))
    net.export(prefix, epoch=0)
    names = gluoncv_param_names(net, model_name)
    if names:
        _rename_exported(prefix, names)
    meta = dict(val, model=model_name or getattr(net, 'model_name', None),
                param_names='gluoncv' if names else 'gluon_tricks',
                classes=list(class_names) if class_names else None)
    with open(prefix + '-meta.json', 'w') as f:
        json.dump(meta, f, indent=1)
    return {'symbol': prefix + '-symbol.json', 'params': prefix + '-0000.params',
            'meta': prefix + '-meta.json'}


def _rename_exported(prefix, names):
    """Rename the parameters of an export: the symbol's variables and the params' keys."""
    with open(prefix + '-symbol.json') as f:
        graph = json.load(f)
    for node in graph['nodes']:
        if node['op'] == 'null' and node['name'] in names:
            node['name'] = names[node['name']]
    mx.sym.load_json(json.dumps(graph)).save(prefix + '-symbol.json')
    path = prefix + '-0000.params'
    arrays = mx.nd.load(path)
    mx.nd.save(path, {k[:4] + names.get(k[4:], k[4:]): v for k, v in arrays.items()})


def load_exported(prefix, ctx=None):
    """Load files written by :func:`export_model`.

    Returns
    -------
    (mxnet.gluon.SymbolBlock, dict)
        The network and its metadata.
    """
    paths = [prefix + '-symbol.json', prefix + '-0000.params']
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError('%s is missing: export the model first with '
                                    'scripts/classification/export.py' % path)
    redo = 'export the model again with scripts/classification/export.py'
    meta = {}
    if os.path.isfile(prefix + '-meta.json'):
        try:
            with open(prefix + '-meta.json') as f:
                meta = json.load(f)
        except ValueError as err:
            raise ExportError('%s-meta.json is corrupt (%s): %s' % (prefix, err, redo))
    try:
        with open(paths[0]) as f:
            json.load(f)
    except ValueError as err:
        raise ExportError('%s is corrupt (%s): %s' % (paths[0], err, redo))
    try:
        with warnings.catch_warnings():   # the input's dtype is set by the first call
            warnings.filterwarnings('ignore', message='Cannot decide type for the following '
                                    'arguments')
            net = mx.gluon.SymbolBlock.imports(paths[0], ['data'], paths[1],
                                               ctx=ctx or mx.cpu())
    except (mx.base.MXNetError, AssertionError, ValueError) as err:
        raise ExportError('%s or %s cannot be loaded (%s): %s'
                          % (paths[0], paths[1], mxnet_error_line(err), redo))
    # as fast as the in-memory network only with static memory planning (docs/performance.md)
    net.hybridize(static_alloc=True, static_shape=True)
    return net, meta
