"""One way to open a trained classifier for inference, whatever it was saved as.

:func:`open_classifier` accepts

* an ``.onnx`` file written by :func:`gluon_tricks.onnx.export_onnx` (run by onnxruntime; the
  preprocessing constants come from the file's metadata);
* an MXNet export prefix (``PREFIX-symbol.json``, ``PREFIX-0000.params``, ``PREFIX-meta.json``
  of :func:`gluon_tricks.export.export_model`), or its ``-symbol.json``;
* a checkpoint: a training run's directory (its ``checkpoint-best``), a checkpoint directory
  (``net.params`` and ``state.json``, which names the model) or a ``.params`` file with the
  model name given. The run's ``config.json`` (beside the checkpoint) gives the model, its
  input size, crop ratio, mean, std and class names (:func:`run_settings`); a checkpoint's
  files are checked against their recorded sha256 before use.

Each gives a :class:`Classifier`: a callable from an ``(N, 3, S, S)`` float32 batch (numpy)
to numpy logits, with ``meta`` (``input_size``, ``crop_ratio``, ``mean``, ``std``,
``classes``, ``model``) and ``aug``, the :class:`~gluon_tricks.data.AugmentConfig` whose
:class:`~gluon_tricks.data.ValTransform` (training's validation transform) its inputs need.
"""
import json
import os
import warnings

import numpy as np

from .data.transforms import AugmentConfig

__all__ = ['Classifier', 'open_classifier', 'source_kind', 'run_settings', 'resolve_checkpoint',
           'reconcile']


def default_input_size(model):
    """The size a zoo model was designed for: 299 for Inception-V3, 224 otherwise."""
    return 299 if model and str(model).lower().startswith('inception') else 224


class Classifier(object):
    """A model ready for inference.

    Attributes
    ----------
    kind : str
        ``'onnx'``, ``'mxnet-export'`` or ``'checkpoint'``.
    path : str
        What was opened.
    meta : dict
        ``input_size``, ``crop_ratio``, ``mean``, ``std`` (RGB, 0-255), ``classes`` (names or
        None), ``model`` (zoo name or None).
    """

    def __init__(self, kind, path, meta, run):
        self.kind, self.path, self.meta, self._run = kind, path, meta, run

    @property
    def aug(self):
        """The :class:`~gluon_tricks.data.AugmentConfig` of the inputs (``meta``'s transform)."""
        return AugmentConfig.from_meta(self.meta)

    def __call__(self, batch):
        """Logits (numpy float32, ``(N, classes)``) of a normalised ``(N, 3, S, S)`` batch."""
        return self._run(batch)

    def __repr__(self):
        return 'Classifier(%s %s, model=%s, input %s px)' % (
            self.kind, self.path, self.meta.get('model'), self.meta.get('input_size'))


def source_kind(source):
    """``'onnx'``, ``'mxnet-export'``, ``'checkpoint'`` or ``'params'`` for a path (see the
    module docstring); raises ``FileNotFoundError`` when it is none of them."""
    if source.endswith('.onnx'):
        if os.path.isfile(source):
            return 'onnx'
        raise FileNotFoundError('%s does not exist' % source)
    if source.endswith('-symbol.json'):
        source = source[:-len('-symbol.json')]
    if os.path.isfile(source + '-symbol.json'):
        return 'mxnet-export'
    if os.path.isdir(source):
        if _checkpoint_dir(source):
            return 'checkpoint'
        raise FileNotFoundError('%s is neither a checkpoint (net.params) nor a run directory '
                                '(checkpoint-best/, checkpoint-latest.json)' % source)
    if os.path.isfile(source) and source.endswith('.params'):
        return 'params'
    raise FileNotFoundError('%s is not a model: give a .onnx file, an MXNet export prefix '
                            '(PREFIX-symbol.json exists), a checkpoint directory or a run '
                            'directory' % source)


def _checkpoint_dir(path):
    """The checkpoint directory of ``path``: itself, or a run's best, or its latest."""
    if os.path.isfile(os.path.join(path, 'net.params')):
        return path
    best = os.path.join(path, 'checkpoint-best')
    if os.path.isfile(os.path.join(best, 'net.params')):
        return best
    pointer = os.path.join(path, 'checkpoint-latest.json')
    if os.path.isfile(pointer):
        with open(pointer) as f:
            latest = os.path.join(path, json.load(f)['dir'])
        if os.path.isfile(os.path.join(latest, 'net.params')):
            return latest
    return None


def run_settings(directory):
    """What a training run recorded about its model and inputs, for the checkpoint
    ``directory`` (or the run directory itself): ``model``, ``num_classes``, ``input_size``,
    ``crop_ratio``, ``mean``, ``std`` and ``classes`` (the names in the data's
    ``classes.txt`` when it is still there), from the run's ``config.json``; ``{}`` when the
    run wrote none (older runs)."""
    for where in (directory, os.path.dirname(os.path.abspath(directory.rstrip(os.sep)))):
        path = os.path.join(where, 'config.json')
        if os.path.isfile(path):
            break
    else:
        return {}
    try:
        with open(path) as f:
            config = json.load(f)
        data, model = config.get('data') or {}, config.get('model') or {}
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError('run configuration %s cannot be read (%s)' % (path, err))
    out = {'model': model.get('model'), 'num_classes': data.get('num_classes'),
           'input_size': data.get('input_size'), 'crop_ratio': data.get('crop_ratio'),
           'mean': data.get('mean'), 'std': data.get('std'), 'config': path}
    for root in (data.get('rec_train') and os.path.dirname(data['rec_train']),
                 data.get('data_dir')):
        names = os.path.join(os.path.expanduser(root), 'classes.txt') if root else None
        if names and os.path.isfile(names):
            with open(names) as f:
                out['classes'] = [line.strip() for line in f if line.strip()]
            break
    return {k: v for k, v in out.items() if v is not None}


def reconcile(settings, given, what):
    """The values of ``given`` (flags, None: not given) over those a run recorded in
    ``settings``; a flag that contradicts the run is applied with a warning naming both
    values. Returns the merged dict of the keys of ``given``."""
    out = {}
    for key, value in given.items():
        recorded = settings.get(key)
        if value is None:
            out[key] = recorded
            continue
        same = recorded is None or (list(value) == list(recorded) if isinstance(
            value, (list, tuple)) else value == recorded)
        if not same:
            warnings.warn('--%s %s differs from %s recorded by the run (%s): using %s'
                          % (key.replace('_', '-'), value, recorded, what, value), stacklevel=2)
        out[key] = value
    return out


def resolve_checkpoint(source, model=None):
    """``(params_file, model, settings)`` of a run directory, checkpoint directory or
    ``.params`` file: the checkpoint's files are verified against their recorded sha256
    (:class:`~gluon_tricks.checkpoint.CheckpointError` naming a damaged file and the run's
    intact checkpoints), the model name comes from ``model``, ``state.json`` or the run's
    ``config.json`` (:func:`run_settings`)."""
    if os.path.isdir(source):
        from .checkpoint import Checkpoint
        directory = _checkpoint_dir(source)
        if directory is None:
            raise FileNotFoundError('%s is neither a checkpoint (net.params) nor a run '
                                    'directory (checkpoint-best/, checkpoint-latest.json)'
                                    % source)
        settings = run_settings(directory)
        params = os.path.join(directory, 'net.params')
        if os.path.isfile(os.path.join(directory, 'state.json')):
            ckpt = Checkpoint(directory)
            ckpt.verify()
            params = ckpt.params_path
            settings.setdefault('model', ckpt.state.get('model'))
    else:
        params, settings = source, run_settings(os.path.dirname(os.path.abspath(source)))
    if model and settings.get('model') and model != settings['model']:
        warnings.warn('--model %s differs from %s recorded by the run: using %s'
                      % (model, settings['model'], model), stacklevel=2)
    return params, model or settings.get('model'), settings


def open_classifier(source, model=None, input_size=None, crop_ratio=None, mean=None,
                    std=None, class_names=None, ctx=None, num_threads=None):
    """Open ``source`` (see the module docstring) for inference.

    Parameters
    ----------
    source : str
    model : str, optional
        Zoo name; needed for a bare ``.params`` file (a checkpoint directory's ``state.json``
        names it).
    input_size, crop_ratio, mean, std : optional
        Override the preprocessing constants (for checkpoints, which do not record them:
        default 224 px, 299 for Inception-V3, crop ratio 0.875, the paper's mean and std).
        An ``.onnx`` graph has a fixed side: another ``input_size`` is an error.
    class_names : list of str, optional
        Override the class names.
    ctx : mxnet.Context, optional
        Device of MXNet models (default CPU).
    num_threads : int, optional
        onnxruntime's intra-op threads (default: one per core).

    Returns
    -------
    Classifier
    """
    kind = source_kind(source)
    overrides = {'input_size': input_size, 'crop_ratio': crop_ratio,
                 'mean': list(mean) if mean is not None else None,
                 'std': list(std) if std is not None else None, 'classes': class_names}
    if kind == 'onnx':
        from .onnx import OnnxClassifier
        session = OnnxClassifier(source, num_threads=num_threads)
        meta = dict(session.meta)
        if input_size is not None and int(input_size) != int(meta['input_size']):
            raise ValueError('%s was exported for %d px inputs, not %d (export it again with '
                             '--input-size %d)' % (source, meta['input_size'], input_size,
                                                   input_size))
        run = session
    elif kind == 'mxnet-export':
        import mxnet as mx
        from .export import load_exported
        prefix = source[:-len('-symbol.json')] if source.endswith('-symbol.json') else source
        net, meta = load_exported(prefix, ctx=ctx)
        meta = dict(meta)
        run = _mxnet_runner(net, ctx or mx.cpu())
        source = prefix
    else:
        import mxnet as mx
        from .model_zoo.io import load_model
        params, model, settings = resolve_checkpoint(source, model)
        if not model:
            raise ValueError('%s: give the model name (--model), e.g. resnet50_v1d' % source)
        net = load_model(model, params, ctx=ctx or mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
        meta = {'model': model, 'input_size': default_input_size(model)}
        recorded = reconcile(settings, overrides, settings.get('config', 'no config.json'))
        overrides.update({k: v for k, v in recorded.items() if v is not None})
        run = _mxnet_runner(net, ctx or mx.cpu())
        kind = 'checkpoint'
    for key, value in overrides.items():
        if value is not None:
            meta[key] = value
    meta.setdefault('classes', None)
    meta.setdefault('model', None)
    if meta.get('input_size') is None:
        meta['input_size'] = default_input_size(meta.get('model'))
    meta.update(AugmentConfig.from_meta(meta).val_meta())   # the paper's where missing
    return Classifier(kind, source, meta, run)


def _mxnet_runner(net, ctx):
    import mxnet as mx

    def run(batch):
        if not isinstance(batch, mx.nd.NDArray):
            batch = mx.nd.array(np.asarray(batch, dtype=np.float32), ctx=ctx)
        return net(batch.as_in_context(ctx)).asnumpy()
    return run
