"""Build a zoo model straight from a ``.params`` file (ours or GluonCV's)."""
import json
import os

import mxnet as mx

from ..errors import ConfigError, DamagedFileError, mxnet_error_line
from ..fsutil import sha256
from ._registry import get_model

__all__ = ['classes_in_params', 'load_model', 'load_params', 'save_params', 'first_copy',
           'describe_mismatch', 'gluoncv_param_names']

# classifier weight keys: ours / GluonCV ResNetV1b ('fc'), GluonCV ResNetV1 (our resnet*_v1
# saves in its layout), MobileNet, Inception ('output')
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
        raise ConfigError('%s is not a readable MXNet .params file (%s)'
                         % (filename, mxnet_error_line(err)))
    for key in _CLASSIFIER_KEYS:
        if isinstance(arrays, dict) and key in arrays:
            return int(arrays[key].shape[0])
    return None


def first_copy(param):
    """A CPU copy of ``param``'s value on its first device, bit for bit.

    Gluon's ``save_parameters`` averages the copies of a parameter held on several devices in
    their own dtype (``add_n(copies) / n``): for 3 or more identical copies the rounding of the
    sum changes the values (8 identical float32 copies of ResNet-18-D: 23 of its 112 arrays
    differ). After a synchronous step every copy holds the same weights, so the first one is
    the trained model; BatchNorm statistics are those of the first device, as Horovod's rank 0
    copy is (``DistContext.broadcast_statistics``).
    """
    return param.data(param.list_ctx()[0]).copyto(mx.cpu())


def save_params(net, filename):
    """``net.save_parameters(filename)`` with each parameter's first device copy
    (:func:`first_copy`) under the keys the model saves (``net.file_keys()`` where it has
    them: GluonCV's layout for ``resnet*_v1``); dtypes are kept."""
    params = net._collect_params_with_prefix()
    keys = net.file_keys() if hasattr(net, 'file_keys') else {k: k for k in params}
    mx.nd.save(filename, {keys[k]: first_copy(p) for k, p in params.items()})


def check_recorded_digest(filename):
    """When ``filename`` lies in a checkpoint directory whose ``state.json`` records its sha256,
    check it (:class:`~gluon_tricks.errors.DamagedFileError` naming the file and what else the
    run holds); a file without such a record passes."""
    state = os.path.join(os.path.dirname(os.path.abspath(filename)), 'state.json')
    try:
        with open(state) as f:
            expected = json.load(f).get('sha256', {}).get(os.path.basename(filename))
    except (OSError, ValueError, AttributeError):
        return
    if expected and sha256(filename) != expected:
        directory = os.path.dirname(os.path.abspath(filename))
        run = os.path.dirname(directory)
        inode = os.stat(filename).st_ino      # checkpoint-best hard-links the same file
        others = sorted(e for e in os.listdir(run) if e.startswith('checkpoint-') and
                        os.path.isfile(os.path.join(run, e, os.path.basename(filename))) and
                        os.stat(os.path.join(run, e, os.path.basename(filename))).st_ino
                        != inode)
        raise DamagedFileError(
            '%s is damaged: its sha256 differs from the one recorded in %s when it was saved. '
            'Restore it from a copy%s.' % (filename, state, (
                ', or use another checkpoint of the run: %s' % ', '.join(
                    os.path.join(run, e) for e in others)) if others else ''))


def load_params(net, filename, ctx=None, allow_missing=False, ignore_extra=False):
    """``net.load_parameters`` that accepts float16 and float32 files alike: every array is
    cast to the dtype the parameter has in ``net`` (a float16 checkpoint of a GPU run loads
    into a float32 network for evaluation, export or as a distillation teacher, and the
    reverse). A file of a checkpoint is first checked against its recorded sha256
    (:func:`check_recorded_digest`)."""
    if not os.path.isfile(filename):
        raise FileNotFoundError('parameter file %s does not exist' % filename)
    check_recorded_digest(filename)
    net.load_parameters(filename, ctx=ctx, allow_missing=allow_missing,
                        ignore_extra=ignore_extra, cast_dtype=True, dtype_source='current')


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
        raise ConfigError('%s holds a %d-class classifier but %d classes were asked for; '
                         'drop --classes or pass the matching file' % (params_file, found, classes))
    net = get_model(name, classes=classes, **kwargs)
    try:
        load_params(net, params_file, ctx=ctx or mx.cpu())
    except AssertionError as err:  # Gluon's own message for missing/extra keys
        raise ConfigError('%s does not fit model %s: %s' % (params_file, name, str(err)[:500]))
    return net


def describe_mismatch(net, arrays, limit=5):
    """What differs between the named ``arrays`` of a ``.params`` file and the structural
    names of ``net``: missing and unexpected names and shape mismatches ('' if none)."""
    arrays = {k.split(':', 1)[-1]: v for k, v in arrays.items()}   # 'arg:'/'aux:' prefixes
    model = net._collect_params_with_prefix()
    missing = sorted(set(model) - set(arrays))
    extra = sorted(set(arrays) - set(model))
    parts = []
    if missing:
        parts.append('%d parameter(s) missing in the file (%s)'
                     % (len(missing), ', '.join(missing[:limit])))
    if extra:
        parts.append('%d parameter(s) not in the model (%s)'
                     % (len(extra), ', '.join(extra[:limit])))
    shapes = []
    for key in sorted(set(model) & set(arrays)):
        want, have = tuple(model[key].shape or ()), tuple(arrays[key].shape)
        if len(want) != len(have) or any(w and w != h for w, h in zip(want, have)):
            shapes.append('%s: model %s, file %s' % (key, want, have))
    if shapes:
        parts.append('%d shape mismatch(es) (%s)' % (len(shapes), '; '.join(shapes[:limit])))
    return '; '.join(parts)


def gluoncv_param_names(net, name=None):
    """The full names (``resnetv1d_conv0_weight``, the keys of an export) that GluonCV's
    same-named model, built first in its process, gives the parameters of ``net``.

    Full names come from a global counter (the third ResNet-A of a process is
    ``resnetv12_``); GluonCV's model is built in a fresh ``mx.name.NameManager`` so the names
    are those of GluonCV's own export (``resnetv10_``). Our structural names, as saved
    (``net.file_keys()`` where a model defines it), pair the parameters.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A zoo model.
    name : str, optional
        Its zoo name (default ``net.model_name``).

    Returns
    -------
    dict or None
        Our full name -> GluonCV's; None when GluonCV (or its model ``name``) is not there or
        the structural names differ (a model GluonCV does not have, or other options).
    """
    name = (name or getattr(net, 'model_name', None) or '').lower()
    try:
        import gluoncv
    except ImportError:
        return None
    if name not in gluoncv.model_zoo.get_model_list():
        return None
    with mx.name.NameManager():  # counters from 0, as in a fresh process
        ref = gluoncv.model_zoo.get_model(name, pretrained=False)
    theirs = {k: p.name for k, p in ref._collect_params_with_prefix().items()}
    ours = net._collect_params_with_prefix()
    keys = net.file_keys() if hasattr(net, 'file_keys') else {k: k for k in ours}
    if sorted(keys.values()) != sorted(theirs):
        return None
    names = {p.name: theirs[keys[k]] for k, p in ours.items()}
    if len(set(names.values())) != len(names):  # shared parameters: no one-to-one renaming
        return None
    return names
