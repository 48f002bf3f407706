"""Parameter and multiply-add counts read off the real network graph (Table 5)."""
import json

import mxnet as mx

__all__ = ['count_params', 'count_macs', 'summarize', 'PAPER_TABLE5']

# Table 5 of the paper: (params in millions, FLOPs in G, where FLOPs count multiply-adds).
PAPER_TABLE5 = {
    'resnet50_v1': (25, 3.8), 'resnet50_v1b': (25, 4.1),
    'resnet50_v1c': (25, 4.3), 'resnet50_v1d': (25, 4.3),
}


def count_params(net):
    """Number of learnable parameters (running BN statistics excluded).

    Parameters
    ----------
    net : mxnet.gluon.Block
        An initialized network (shapes known).
    """
    return sum(int(p.data().size) for p in net.collect_params().values()
               if p.grad_req != 'null')


def count_macs(net, input_shape):
    """Multiply-adds of one forward pass through convolutions and dense layers.

    The network is traced into a symbol, shapes are inferred for ``input_shape`` and every
    ``Convolution`` (``out_elems * in_channels / groups * kernel_area``) and
    ``FullyConnected`` (``in_units * out_units``) node is counted. Pooling, BN, activations
    and additions are not multiply-adds of a layer and are left out, as in the paper.

    Parameters
    ----------
    net : mxnet.gluon.HybridBlock
    input_shape : tuple of int
        ``(1, 3, H, W)`` for a per-image count.
    """
    sym = net(mx.sym.var('data'))
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=input_shape)
    shape_of = dict(zip(internals.list_outputs(), out_shapes))
    graph = json.loads(sym.tojson())
    nodes = graph['nodes']

    def entry_shape(entry):
        node = nodes[entry[0]]
        if node['op'] == 'null':
            return shape_of.get(node['name'])
        return shape_of.get('%s_output' % node['name'])

    macs = 0
    for node in nodes:
        if node['op'] not in ('Convolution', 'FullyConnected'):
            continue
        out_shape = shape_of['%s_output' % node['name']]
        w_shape = entry_shape(node['inputs'][1])
        out_elems = 1
        for d in out_shape:
            out_elems *= d
        if node['op'] == 'Convolution':
            # weight (out_c, in_c / groups, kh, kw): one MAC per weight element per output pixel
            per_out = 1
            for d in w_shape[1:]:
                per_out *= d
            macs += out_elems * per_out
        else:
            macs += out_elems * w_shape[1]
    return macs


# The input side each model family is trained at (Inception-V3: 299, section 2.1).
DEFAULT_INPUT_SIZE = {'inceptionv3': 299}


def summarize(name, input_size=None, **kwargs):
    """Build a zoo model and return ``{'model', 'params_m', 'macs_g', 'input_size'}``.

    Parameters
    ----------
    name : str
        A ``get_model`` name.
    input_size : int, optional
        Square input side; default 224, 299 for Inception-V3.
    """
    from ._registry import get_model
    input_size = input_size or DEFAULT_INPUT_SIZE.get(name, 224)
    net = get_model(name, **kwargs)
    net.initialize()
    net(mx.nd.zeros((1, 3, input_size, input_size)))
    return {'model': name, 'input_size': input_size,
            'params_m': count_params(net) / 1e6,
            'macs_g': count_macs(net, (1, 3, input_size, input_size)) / 1e9}
