"""MobileNet v1 and Inception-V3: shapes, GluonCV weight compatibility, export round trip."""
import gluoncv
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from gluon_tricks.model_zoo import get_model, get_model_list
from gluon_tricks.model_zoo.inception import Inception3
from gluon_tricks.model_zoo.mobilenet import MobileNet
from helpers.nets import randomize, walk

MOBILENETS = ['mobilenet1.0', 'mobilenet0.75', 'mobilenet0.5', 'mobilenet0.25']
NAMES = MOBILENETS + ['inceptionv3']
# small inputs for speed: MobileNet works at any size; 75 is Inception-V3's smallest
SMALL = {name: 64 for name in MOBILENETS}
SMALL['inceptionv3'] = 75


def _input(size, batch=2, seed=0):
    rng = np.random.RandomState(seed)
    return mx.nd.array(rng.normal(size=(batch, 3, size, size)).astype('float32'))


def _shapes(net):
    return {key: p.shape for key, p in net._collect_params_with_prefix().items()}


def test_registered():
    assert set(NAMES) <= set(get_model_list())


@pytest.mark.parametrize('classes', [1000, 10])
@pytest.mark.parametrize('name', NAMES)
def test_output_shape(name, classes):
    net = get_model(name, classes=classes)
    net.initialize(mx.init.Xavier())
    out = net(_input(SMALL[name], batch=3))
    assert out.shape == (3, classes)
    assert np.isfinite(out.asnumpy()).all()


def test_inception_at_299():
    net = get_model('inceptionv3', classes=7)
    net.initialize(mx.init.Xavier())
    assert net(_input(299, batch=1)).shape == (1, 7)
    # the last feature map is 8x8 at 299, so global pooling equals GluonCV's AvgPool2D(8)
    assert net.features[:-2](_input(299, batch=1)).shape == (1, 2048, 8, 8)


@pytest.mark.parametrize('multiplier', [1.0, 0.75, 0.5, 0.25])
def test_mobilenet_widths(multiplier):
    net = MobileNet(multiplier, classes=5)
    conv_out = [p.shape[0] for k, p in net._collect_params_with_prefix().items()
                if k.startswith('features.') and k.endswith('.weight')]
    assert len(conv_out) == 27  # stem + 13 x (depthwise, pointwise)
    assert conv_out[0] == int(32 * multiplier)
    assert conv_out[-1] == int(1024 * multiplier)
    assert net.output.weight.shape == (5, int(1024 * multiplier))


@pytest.mark.parametrize('name', NAMES)
def test_gluoncv_equivalence(name, tmp_path):
    size = 299 if name == 'inceptionv3' else 64  # GluonCV's Inception pools with a fixed 8x8
    x = _input(size)
    theirs = gluoncv.model_zoo.get_model(name, pretrained=False)
    randomize(theirs, x, seed=1)
    path = str(tmp_path / 'gluoncv.params')
    theirs.save_parameters(path)

    ours = get_model(name)
    assert sorted(ours._collect_params_with_prefix()) == \
        sorted(theirs._collect_params_with_prefix())
    assert _shapes(ours) == _shapes(theirs)
    ours.load_parameters(path)  # strict: no missing, no extra

    expected = theirs(x).asnumpy()
    got = ours(x).asnumpy()
    assert got.shape == expected.shape == (2, 1000)
    assert expected.std() > 1e-2  # the comparison is not between near-constant outputs
    assert np.abs(expected[0] - expected[1]).max() > 1e-3
    np.testing.assert_array_less(np.abs(got - expected).max(), 1e-4)


@pytest.mark.parametrize('name', NAMES)
def test_export_roundtrip(name, tmp_path):
    size = 107 if name == 'inceptionv3' else 64
    x = _input(size)
    net = get_model(name, classes=10)
    randomize(net, x, seed=2)
    expected = net(x).asnumpy()
    net.hybridize()
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    prefix = str(tmp_path / 'net')
    net.export(prefix)
    loaded = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                          prefix + '-0000.params')
    got = loaded(x).asnumpy()
    assert expected.std() > 1e-2
    np.testing.assert_array_less(np.abs(got - expected).max(), 1e-4)


@pytest.mark.parametrize('name', ['mobilenet1.0', 'inceptionv3'])
@pytest.mark.parametrize('pretrained', [True, 'abc123'])
def test_pretrained_raises(name, pretrained):
    with pytest.raises(ValueError, match='load_parameters'):
        get_model(name, pretrained=pretrained)


def test_bad_multiplier():
    with pytest.raises(ValueError):
        MobileNet(0.0)


def test_norm_kwargs_reach_every_norm_layer():
    mob = get_model('mobilenet0.25', norm_kwargs={'momentum': 0.7})
    inc = get_model('inceptionv3', norm_kwargs={'momentum': 0.7})
    for net, eps in ((mob, 1e-5), (inc, 1e-3)):
        norms = [b for b in walk(net) if isinstance(b, nn.BatchNorm)]
        assert norms
        assert all(b._kwargs['momentum'] == 0.7 for b in norms)
        assert all(b._kwargs['eps'] == eps for b in norms)


def test_inception_partial_bn():
    norm_kwargs = {'momentum': 0.8}
    net = Inception3(classes=10, norm_kwargs=norm_kwargs, partial_bn=True)
    assert norm_kwargs == {'momentum': 0.8}  # the caller's dict is left alone
    norms = [b for b in walk(net) if isinstance(b, nn.BatchNorm)]
    assert len(norms) == 94
    assert not norms[0]._kwargs['use_global_stats']
    assert all(b._kwargs['use_global_stats'] for b in norms[1:])
    # training-mode forward: only the first BN updates its running statistics
    net.initialize(mx.init.Xavier())
    x = _input(75) * 3 + 1
    net(x)
    before = [b.running_mean.data().asnumpy().copy() for b in norms]
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()  # MXNet (CPU, oneDNN) updates running statistics in the backward pass
    after = [b.running_mean.data().asnumpy() for b in norms]
    assert not np.allclose(before[0], after[0])
    assert all(np.array_equal(b, a) for b, a in zip(before[1:], after[1:]))
