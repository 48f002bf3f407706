"""ONNX export of the zoo's classifiers, checked by ``onnx.checker`` and run by onnxruntime.

MXNet 1.9.1's exporter (``mx.onnx.export_model``; pinned set: ``onnx==1.16.2``,
``onnxruntime==1.18.1``, the ``[onnx]`` extra) writes opset 21, IR version 10, and lists every
weight as a graph input as well as an initializer, which onnxruntime warns about and which
keeps it from folding constants. :func:`export_onnx` cleans that up and writes a self-contained
file:

* weights are initializers only (no graph input besides the image);
* one input ``data`` of shape ``(batch, 3, S, S)``, float32, NCHW, RGB, normalised (the batch
  axis is dynamic, the side ``S`` is the export's ``input_size``), one output ``logits`` of
  shape ``(batch, classes)``;
* ``metadata_props`` carry what preprocessing needs (every value a JSON text):
  ``model``, ``classes`` (list of names or ``null``), ``num_classes``, ``input_size``,
  ``crop_ratio``, ``resize`` (``ceil(input_size / crop_ratio)``), ``mean``, ``std`` (RGB, 0-255
  scale), ``layout`` (``"NCHW"``), ``color`` (``"RGB"``), ``param_names``;
* ``onnx.checker.check_model(full_check=True)`` passes before the file is written.

The validation transform these constants describe is :class:`gluon_tricks.data.ValTransform`:
resize the shorter side to ``resize`` (bilinear), center-crop ``input_size``, subtract ``mean``
and divide by ``std`` per RGB channel.
"""
import contextlib
import json
import math
import os
import secrets

import numpy as np

__all__ = ['export_onnx', 'net_symbol', 'read_onnx_metadata', 'OnnxClassifier', 'INPUT_NAME',
           'OUTPUT_NAME', 'PINNED_VERSIONS']

INPUT_NAME = 'data'
OUTPUT_NAME = 'logits'
BATCH_AXIS = 'batch'
#: the versions the exporter and the parity tests were verified with (setup.py ``[onnx]``)
PINNED_VERSIONS = {'onnx': '1.16.2', 'onnxruntime': '1.18.1'}
#: metadata keys whose value is a JSON number/list (the others are JSON strings)
_META_KEYS = ('model', 'classes', 'num_classes', 'input_size', 'crop_ratio', 'resize', 'mean',
              'std', 'layout', 'color', 'param_names')


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs the [onnx] extra: pip install -c constraints.txt "
                          "-e '.[onnx]' (onnx==%s, onnxruntime==%s)"
                          % (PINNED_VERSIONS['onnx'], PINNED_VERSIONS['onnxruntime']))
    if not hasattr(onnx, 'mapping'):
        raise ImportError('onnx %s has no onnx.mapping, which the exporter of mxnet 1.9.1 '
                          'imports (removed in onnx 1.19): install onnx==%s'
                          % (onnx.__version__, PINNED_VERSIONS['onnx']))
    return onnx


@contextlib.contextmanager
def _raw_weights():
    """Make MXNet's exporter store weights as raw bytes while it runs.

    Its converter of parameters passes every weight to ``onnx.helper.make_tensor`` as a Python
    list of floats (``raw=False``), which protobuf copies one float at a time: about 30 s for
    the 42 M weights of a ResNet-101. The same tensor as ``raw_data`` (what other exporters
    write) takes milliseconds and holds bit-identical values.
    """
    import onnx
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    table = MXNetGraph.registry_.get(12, {})
    original = table.get('null')
    if original is None:  # another exporter layout: leave it alone
        yield
        return

    def convert(node, **kwargs):
        if kwargs.get('is_input') is False:
            name = node['name']
            arr = np.ascontiguousarray(kwargs['weights'][name])
            dtype = onnx.helper.np_dtype_to_tensor_dtype(arr.dtype)
            kwargs['initializer'].append(onnx.helper.make_tensor(
                name=name, data_type=dtype, dims=arr.shape, vals=arr.tobytes(), raw=True))
            return [onnx.helper.make_tensor_value_info(name, dtype, arr.shape)], (arr.dtype,)
        return original(node, **kwargs)

    table['null'] = convert
    try:
        yield
    finally:
        table['null'] = original


def _clean_graph(model, batch_axis=BATCH_AXIS):
    """Weights out of the graph inputs, ``data``/``logits`` names, a named dynamic batch axis."""
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ValueError('expected one image input, found %s' % [i.name for i in inputs])
    if len(graph.output) != 1:
        raise ValueError('expected one output, found %s' % [o.name for o in graph.output])
    del graph.input[:]
    graph.input.extend(inputs)
    renames = {inputs[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for node in graph.node:
        for seq in (node.input, node.output):
            for k, name in enumerate(seq):
                if name in renames:
                    seq[k] = renames[name]
    for value in list(graph.input) + list(graph.output):
        value.name = renames.get(value.name, value.name)
        dims = value.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_param = batch_axis
    return model


def _metadata(meta):
    size, ratio = int(meta['input_size']), float(meta['crop_ratio'])
    out = dict(meta)
    out['resize'] = int(math.ceil(size / ratio))
    out.setdefault('layout', 'NCHW')
    out.setdefault('color', 'RGB')
    return {k: json.dumps(out.get(k)) for k in _META_KEYS}


def _new_file(directory, suffix):
    """A new empty file in ``directory`` for a temporary output, created with mode 0666 less
    the umask like any file the user writes (``tempfile.mkstemp`` makes 0600: an export
    renamed from it would be readable by its owner only, unlike the MXNet files beside it)."""
    for _ in range(100):
        path = os.path.join(directory, '.tmp-%d-%s%s' % (os.getpid(), secrets.token_hex(4),
                                                         suffix))
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path
    raise FileExistsError('cannot create a temporary file in %s' % directory)


def _export_symbol(sym, params, onnx_path, meta, check=True):
    """``mx.onnx.export_model`` of a symbol and its parameters, then :func:`_clean_graph`,
    the metadata and the checker; the file appears only once it is complete and valid."""
    onnx = _require_onnx()
    import mxnet as mx
    size = int(meta['input_size'])
    out_dir = os.path.dirname(os.path.abspath(onnx_path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = _new_file(out_dir, '.onnx')
    try:
        with _raw_weights():
            mx.onnx.export_model(sym, params, in_shapes=[(1, 3, size, size)],
                                 in_types=np.float32, onnx_file_path=tmp, dynamic=True,
                                 dynamic_input_shapes=[(None, 3, size, size)])
        model = _clean_graph(onnx.load(tmp))
        info = dict(meta, num_classes=_num_classes(model, meta.get('classes')))
        out_dims = model.graph.output[0].type.tensor_type.shape.dim  # MXNet leaves it unknown
        out_dims[1].Clear()
        out_dims[1].dim_value = info['num_classes']
        del model.metadata_props[:]
        for key, value in _metadata(info).items():
            model.metadata_props.add(key=key, value=value)
        from . import __version__
        model.producer_name, model.producer_version = 'gluon-tricks', __version__
        model.graph.name = str(meta.get('model') or 'classifier')
        model.doc_string = ('%s classifier exported from MXNet %s by gluon-tricks; input '
                            '"%s" (batch, 3, %d, %d) float32 RGB normalised, output "%s" '
                            '(batch, classes); preprocessing constants in metadata_props'
                            % (model.graph.name, mx.__version__, INPUT_NAME, size, size,
                               OUTPUT_NAME))
        onnx.save(model, tmp)
        if check:  # on the file: the checker reads it in C++, no second serialisation
            onnx.checker.check_model(tmp, full_check=True)
        os.replace(tmp, onnx_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return onnx_path


def net_symbol(net, input_size=224):
    """The inference graph of an initialized network and its parameters, in memory.

    The parameters take the names they have in the network's ``.params`` files (a
    checkpoint's ``net.params``; e.g. ``features.0.weight`` or ``conv1.0.weight``), which do
    not depend on how many models the process built.

    Returns
    -------
    (mxnet.symbol.Symbol, dict of str to mxnet.nd.NDArray)
    """
    import mxnet as mx
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    net(mx.nd.zeros((1, 3, input_size, input_size), ctx=ctx))  # finishes deferred shapes
    sym = net(mx.sym.var(INPUT_NAME))
    structural = net._collect_params_with_prefix()
    keys = net.file_keys() if hasattr(net, 'file_keys') else {k: k for k in structural}
    names = {p.name: keys.get(k, k) for k, p in structural.items()}
    if len(set(names.values())) != len(names):  # shared parameters: keep the full names
        names = {n: n for n in names}
    graph = json.loads(sym.tojson())
    for node in graph['nodes']:
        if node['op'] == 'null' and node['name'] in names:
            node['name'] = names[node['name']]
    sym = mx.sym.load_json(json.dumps(graph))
    params = {names[p.name]: p.data(ctx).as_in_context(mx.cpu())
              for p in structural.values()}
    return sym, params


def _num_classes(model, classes):
    """The classifier's width: the last FullyConnected/Gemm weight, else the class list."""
    from onnx import numpy_helper
    init = {t.name: t for t in model.graph.initializer}
    for node in reversed(model.graph.node):
        if node.op_type in ('Gemm', 'MatMul') and len(node.input) > 1 and node.input[1] in init:
            w = numpy_helper.to_array(init[node.input[1]])
            trans_b = any(a.name == 'transB' and a.i for a in node.attribute)
            return int(w.shape[0] if (node.op_type == 'Gemm' and trans_b) else w.shape[-1])
    if classes:
        return len(classes)
    raise ValueError('cannot tell the number of classes of the exported graph')


def export_onnx(net, onnx_path, input_size=224, crop_ratio=0.875, mean=None, std=None,
                class_names=None, model_name=None, check=True):
    """Export an initialized network to one ``.onnx`` file (see the module docstring).

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
        A zoo model with its weights (e.g. from :func:`gluon_tricks.model_zoo.io.load_model`).
    onnx_path : str
    input_size, crop_ratio : int, float
        Validation preprocessing (resize the shorter side to ``ceil(input_size /
        crop_ratio)``, center-crop ``input_size``); the graph's input side is ``input_size``.
    mean, std : sequence of 3 floats, optional
        RGB normalisation on the 0-255 scale (default: the paper's).
    class_names : list of str, optional
    model_name : str, optional
        The zoo name (default ``net.model_name``).
    check : bool
        ``onnx.checker.check_model(full_check=True)`` before the file is written.

    Returns
    -------
    str
        ``onnx_path``.
    """
    from .data.transforms import AugmentConfig
    _require_onnx()
    val = AugmentConfig.from_meta(dict(input_size=input_size, crop_ratio=crop_ratio, mean=mean,
                                       std=std)).val_meta()
    sym, params = net_symbol(net, val['input_size'])
    meta = dict(val, model=model_name or getattr(net, 'model_name', None),
                param_names='net.params', classes=list(class_names) if class_names else None)
    return _export_symbol(sym, params, onnx_path, meta, check)


def read_onnx_metadata(path_or_model):
    """The ``metadata_props`` of an exported file as a dict of Python values.

    Parameters
    ----------
    path_or_model : str or onnx.ModelProto or onnxruntime.InferenceSession

    Returns
    -------
    dict
        ``input_size``, ``crop_ratio``, ``mean``, ``std``, ``classes`` ... (values of keys
        this module did not write are returned as the raw strings).
    """
    if hasattr(path_or_model, 'get_modelmeta'):
        props = dict(path_or_model.get_modelmeta().custom_metadata_map)
    else:
        model = path_or_model
        if isinstance(model, str):
            onnx = _require_onnx()
            model = onnx.load(model, load_external_data=False)
        props = {p.key: p.value for p in model.metadata_props}
    out = {}
    for key, value in props.items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


class OnnxClassifier(object):
    """An exported ``.onnx`` classifier in an onnxruntime session (CPU by default).

    Parameters
    ----------
    path : str
    providers : list of str, optional
        onnxruntime execution providers (default ``['CPUExecutionProvider']``).
    num_threads : int, optional
        ``intra_op_num_threads`` (default: onnxruntime's, one per core).

    Attributes
    ----------
    meta : dict
        :func:`read_onnx_metadata` of the file (``input_size``, ``crop_ratio``, ``mean``,
        ``std``, ``classes`` ...).
    """

    def __init__(self, path, providers=None, num_threads=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError("running .onnx files needs the [onnx] extra: pip install -c "
                              "constraints.txt -e '.[onnx]'")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.path = path
        self.session = ort.InferenceSession(path, options,
                                            providers=providers or ['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.meta = read_onnx_metadata(self.session)

    def __call__(self, batch):
        """Logits of an ``(N, 3, S, S)`` float32 batch (numpy array or NDArray)."""
        if hasattr(batch, 'asnumpy'):
            batch = batch.asnumpy()
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: batch})[0]
