"""Ours -> GluonCV for every model name both have: ``save_parameters``, a training
checkpoint and an export all load strictly into GluonCV's same-named model and give our outputs.

The other direction (GluonCV's files into ours) is tested in test_resnet.py and
test_mobilenet_inception.py.
"""
import json

import gluoncv
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import transfer
from gluon_tricks.checkpoint import CheckpointManager
from gluon_tricks.export import export_model, load_exported
from gluon_tricks.model_zoo import get_model, get_model_list
from gluon_tricks.model_zoo.io import gluoncv_param_names, load_model
from gluon_tricks.model_zoo.resnet import _v1_key
from helpers.nets import randomize

SHARED = sorted(set(get_model_list()) & set(gluoncv.model_zoo.get_model_list()))
# 32 px is enough for the ResNets and MobileNets (stride 32, global pooling); GluonCV's
# Inception-V3 ends in a fixed 8x8 average pool, so it needs its 299 px.
SIZE = {name: 299 if name == 'inceptionv3' else 32 for name in SHARED}
# ResNet-34/101/152 have the blocks of ResNet-18/50, only more of them, and files of up to
# 240 MB: their keys and shapes are checked without weights (test_saved_keys_are_gluoncvs)
ROUND_TRIP = [n for n in SHARED if not n.startswith(('resnet34', 'resnet101', 'resnet152'))]


def _input(size, seed=0):
    return mx.nd.array(np.random.RandomState(seed).normal(size=(2, 3, size, size))
                       .astype('float32'))


def _assert_same(got, expected):
    np.testing.assert_array_less(np.abs(got.asnumpy() - expected).max(), 1e-4)


def test_shared_names():
    resnets = ['resnet%d_%s' % (d, v) for d in (18, 34, 50, 101, 152) for v in ('v1', 'v1b')]
    resnets += ['resnet%d_%s' % (d, v) for d in (50, 101, 152) for v in ('v1c', 'v1d', 'v1e',
                                                                         'v1s')]
    mobilenets = ['mobilenet1.0', 'mobilenet0.75', 'mobilenet0.5', 'mobilenet0.25']
    assert SHARED == sorted(resnets + mobilenets + ['inceptionv3'])


def _saved_shapes(net, size, keys=None):
    """Saved key -> shape, by symbolic shape inference (no weights are allocated)."""
    params = net._collect_params_with_prefix()
    keys = keys or {k: k for k in params}
    sym = net(mx.sym.var('data'))
    args, _, auxs = sym.infer_shape(data=(1, 3, size, size))
    shapes = dict(zip(sym.list_arguments(), args))
    shapes.update(zip(sym.list_auxiliary_states(), auxs))
    return {keys[k]: shapes[p.name] for k, p in params.items()}


@pytest.mark.parametrize('name', SHARED)
def test_saved_keys_are_gluoncvs(name):
    """Construction only, every depth: the keys we save and their shapes are GluonCV's."""
    ours = get_model(name)
    theirs = gluoncv.model_zoo.get_model(name, pretrained=False)
    keys = ours.file_keys() if hasattr(ours, 'file_keys') else None
    assert _saved_shapes(ours, SIZE[name], keys) == _saved_shapes(theirs, SIZE[name])
    if name.endswith('_v1'):  # the one table read both ways gives back every name
        assert all(_v1_key(saved, to_gluoncv=False) == k for k, saved in keys.items())
        assert all(saved.startswith(('features.', 'output.')) for saved in keys.values())
    # the export's names: GluonCV's model built first in a process names them so
    with mx.name.NameManager():
        fresh = gluoncv.model_zoo.get_model(name, pretrained=False)
    assert sorted(gluoncv_param_names(ours).values()) == \
        sorted(p.name for p in fresh.collect_params().values())


@pytest.mark.parametrize('name', ROUND_TRIP)
def test_ours_load_strictly_into_gluoncv(name, tmp_path):
    x = _input(SIZE[name])
    ours = get_model(name, classes=10)
    randomize(ours, x)
    expected = ours(x).asnumpy()
    assert expected.std() > 1e-2 and np.abs(expected[0] - expected[1]).max() > 1e-3

    # 1. save_parameters, and the checkpoint the training script writes
    plain = str(tmp_path / 'ours.params')
    ours.save_parameters(plain)
    manager = CheckpointManager(str(tmp_path / 'run'))
    manager.save(0, ours, is_best=True)
    with mx.name.NameManager():  # a fresh process' names, those of GluonCV's own export
        theirs = gluoncv.model_zoo.get_model(name, pretrained=False, classes=10)
    theirs.load_parameters(manager.load_best().params_path)  # strict: none missing or extra
    _assert_same(theirs(x), expected)
    plain_theirs = gluoncv.model_zoo.get_model(name, pretrained=False, classes=10)
    plain_theirs.load_parameters(plain)
    _assert_same(plain_theirs(x), expected)

    # 2. the export has the names of GluonCV's export: each symbol runs with the other's
    # parameters (SymbolBlock.imports is strict too)
    ours_prefix, their_prefix = str(tmp_path / 'ours'), str(tmp_path / 'theirs')
    paths = export_model(ours, ours_prefix, input_size=SIZE[name])
    theirs.hybridize()
    theirs(x)
    theirs.export(their_prefix)
    mine = {k: v.shape for k, v in mx.nd.load(paths['params']).items()}
    assert mine == {k: v.shape for k, v in mx.nd.load(their_prefix + '-0000.params').items()}
    with open(paths['meta']) as f:
        assert json.load(f)['param_names'] == 'gluoncv'
    for symbol, params in ((their_prefix + '-symbol.json', paths['params']),
                           (paths['symbol'], their_prefix + '-0000.params')):
        _assert_same(mx.gluon.SymbolBlock.imports(symbol, ['data'], params)(x), expected)
    _assert_same(load_exported(ours_prefix)[0](x), expected)


def test_export_of_a_name_gluoncv_lacks_keeps_gluon_names(tmp_path):
    net = get_model('resnet18_v1d', classes=10)
    net.initialize()
    assert gluoncv_param_names(net) is None
    paths = export_model(net, str(tmp_path / 'r18d'), input_size=32)
    with open(paths['meta']) as f:
        assert json.load(f)['param_names'] == 'gluon_tricks'
    assert set(k[4:] for k in mx.nd.load(paths['params'])) == \
        set(p.name for p in net.collect_params().values())


@pytest.mark.parametrize('name', ['resnet18_v1', 'resnet50_v1'])
def test_resnet_a_reads_old_and_new_files(name, tmp_path):
    """Our ResNet-A checkpoints in our older layout (conv1/layerN/fc) still load; the new
    GluonCV-layout ones feed load_model (classes from ``output``) and the backbone loader."""
    x = _input(32)
    net = get_model(name, classes=7)
    randomize(net, x)
    expected = net(x).asnumpy()
    old, new = str(tmp_path / 'old.params'), str(tmp_path / 'new.params')
    mx.nd.save(old, {k: p.data() for k, p in net._collect_params_with_prefix().items()})
    net.save_parameters(new)
    assert 'layer1.0.conv1.weight' in mx.nd.load(old)
    assert 'features.4.0.body.0.weight' in mx.nd.load(new)
    for path in (old, new):
        fresh = get_model(name, classes=7)
        fresh.load_parameters(path)
        _assert_same(fresh(x), expected)
    _assert_same(load_model(name, new)(x), expected)
    assert transfer.describe_params(new)['name'] == name
    backbone = transfer.load_backbone(name, new, task='detection')
    _assert_same(backbone(x), expected)  # frozen BN = inference BN
