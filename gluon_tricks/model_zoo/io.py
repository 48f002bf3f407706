"""Build a zoo model straight from a ``.params`` file (ours or GluonCV's)."""
import os

import mxnet as mx

from ._registry import get_model

__all__ = ['classes_in_params', 'load_model']

# classifier weight keys: ours / GluonCV ResNetV1b ('fc'), GluonCV ResNetV1, MobileNet,
# Inception ('output')
_CLASSIFIER_KEYS = ('fc.weight', 'output.weight')


def classes_in_params(filename):
    """Number of classes of the classifier stored in a ``.params`` file.

    Parameters
    ----------
    filename : str
        A file written by ``save_parameters``.

    Returns
    -------
    int or None
        Rows of the classifier weight, or None when the file has no known classifier.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError('parameter file %s does not exist' % filename)
    try:
        arrays = mx.nd.load(filename)
    except mx.base.MXNetError as err:
        raise ValueError('%s is not a readable MXNet .params file (%s)'
                         % (filename, str(err).splitlines()[0]))
    for key in _CLASSIFIER_KEYS:
        if isinstance(arrays, dict) and key in arrays:
            return int(arrays[key].shape[0])
    return None


def load_model(name, params_file, ctx=None, classes=None, **kwargs):
    """Build ``name`` and load ``params_file`` into it.

    Parameters
    ----------
    name : str
        A ``get_model`` name.
    params_file : str
        Parameters saved by our training script, by ``save_parameters`` of our model or of
        GluonCV's same-named model.
    ctx : mxnet.Context or list, optional
        Where to load (default CPU).
    classes : int, optional
        Number of classes; read from the file's classifier when not given.
    **kwargs
        Further ``get_model`` options (``dilated``, ``use_global_stats`` ...).

    Returns
    -------
    mxnet.gluon.HybridBlock
    """
    found = classes_in_params(params_file)
    if classes is None:
        classes = found if found is not None else 1000
    elif found is not None and found != classes:
        raise ValueError('%s holds a %d-class classifier but %d classes were asked for; '
                         'drop --classes or pass the matching file' % (params_file, found, classes))
    net = get_model(name, classes=classes, **kwargs)
    try:
        net.load_parameters(params_file, ctx=ctx or mx.cpu())
    except AssertionError as err:  # Gluon's own message for missing/extra keys
        raise ValueError('%s does not fit model %s: %s' % (params_file, name, str(err)[:500]))
    return net
