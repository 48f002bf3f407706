"""One way to open a trained classifier for inference, whatever it was saved as.

:func:`open_classifier` accepts

* an ``.onnx`` file written by :func:`gluon_tricks.onnx.export_onnx` (run by onnxruntime; the
  preprocessing constants come from the file's metadata);
* an MXNet export prefix (``PREFIX-symbol.json``, ``PREFIX-0000.params``, ``PREFIX-meta.json``
  of :func:`gluon_tricks.export.export_model`), or its ``-symbol.json``;
* a checkpoint: a training run's directory (its ``checkpoint-best``), a checkpoint directory
  (``net.params`` and ``state.json``, which names the model) or a ``.params`` file with the
  model name given.

Each gives a :class:`Classifier`: a callable from an ``(N, 3, S, S)`` float32 batch (numpy)
to numpy logits, with ``meta`` (``input_size``, ``crop_ratio``, ``mean``, ``std``,
``classes``, ``model``) and ``aug``, the :class:`~gluon_tricks.data.AugmentConfig` whose
:class:`~gluon_tricks.data.ValTransform` (training's validation transform) its inputs need.
"""
import json
import os

import numpy as np

from .data.transforms import AugmentConfig

__all__ = ['Classifier', 'open_classifier', 'source_kind']


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
        params = source
        if kind == 'checkpoint':
            directory = _checkpoint_dir(source)
            params = os.path.join(directory, 'net.params')
            state_path = os.path.join(directory, 'state.json')
            if model is None and os.path.isfile(state_path):
                with open(state_path) as f:
                    model = json.load(f).get('state', {}).get('model')
        if not model:
            raise ValueError('%s: give the model name (--model), e.g. resnet50_v1d' % source)
        net = load_model(model, params, ctx=ctx or mx.cpu())
        net.hybridize(static_alloc=True, static_shape=True)
        meta = {'model': model, 'input_size': default_input_size(model)}
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
