"""ResNet variants A-D (paper section 4) against GluonCV's same-named models and the paper."""
import math
import os
import subprocess
import sys

import gluoncv
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from gluon_tricks.model_zoo import PaperInit, get_model, get_model_list
from gluon_tricks.model_zoo.resnet import BasicBlock, Bottleneck
from gluon_tricks.model_zoo.summary import count_macs, summarize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESNETS = [n for n in get_model_list() if n.startswith('resnet')]
GLUONCV_NAMES = set(gluoncv.model_zoo.get_model_list())


def _randomize_bn(net):
    """Give BN non-trivial statistics so an equivalence test is meaningful."""
    rng = np.random.RandomState(0)
    for name, p in net.collect_params().items():
        if name.endswith(('running_mean', 'beta')):
            p.set_data(mx.nd.array(rng.uniform(-0.2, 0.2, p.shape)))
        elif name.endswith(('running_var', 'gamma')):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))


@pytest.mark.parametrize('name', RESNETS)
def test_output_shape(name):
    net = get_model(name, classes=10)
    net.initialize(PaperInit())
    out = net(mx.nd.random.uniform(shape=(2, 3, 32, 32)))
    assert out.shape == (2, 10)


@pytest.mark.parametrize('name,dilated', [(n, False) for n in RESNETS if n in GLUONCV_NAMES]
                         + [('resnet50_v1s', True), ('resnet50_v1d', True),
                            ('resnet18_v1b', True)])
def test_loads_gluoncv_params_and_matches(name, dilated, tmp_path):
    kwargs = {'dilated': True} if dilated else {}
    ref = gluoncv.model_zoo.get_model(name, pretrained=False, classes=10, **kwargs)
    ref.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 48, 48))
    ref(x)
    _randomize_bn(ref)
    fname = str(tmp_path / (name + '.params'))
    ref.save_parameters(fname)

    ours = get_model(name, classes=10, **kwargs)
    ours.load_parameters(fname)  # strict: every key present, none extra
    expected = ref(x).asnumpy()
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(ours(x).asnumpy(), expected, atol=1e-4, rtol=0)


def test_wrong_checkpoint_names_model_and_file(tmp_path):
    ref = gluoncv.model_zoo.get_model('resnet18_v1b', classes=10)
    ref.initialize()
    ref(mx.nd.zeros((1, 3, 32, 32)))
    fname = str(tmp_path / 'r18.params')
    ref.save_parameters(fname)
    with pytest.raises(ValueError) as err:
        get_model('resnet34_v1b', classes=10).load_parameters(fname)
    assert 'r18.params' in str(err.value) and 'resnet34_v1b' in str(err.value)
    gcv_a = gluoncv.model_zoo.get_model('resnet50_v1', classes=10)
    gcv_a.initialize()
    gcv_a(mx.nd.zeros((1, 3, 32, 32)))
    gcv_a.save_parameters(str(tmp_path / 'a.params'))
    with pytest.raises(ValueError, match='resnet101_v1'):
        get_model('resnet101_v1', classes=10).load_parameters(str(tmp_path / 'a.params'))


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_model('resnet50_v9')
    assert "'resnet50_v9'" in str(err.value) and 'resnet50_v1d' in str(err.value)


def test_pretrained_is_refused_with_advice():
    with pytest.raises(ValueError, match='load_parameters'):
        get_model('resnet50_v1d', pretrained=True)


def _downsampling_block(net):
    return net.layer2[0]


def test_variant_structure_matches_figure_2():
    a, b, c, d = (get_model('resnet50_' + v) for v in ('v1', 'v1b', 'v1c', 'v1d'))
    # ResNet-A: stride 2 on the first 1x1 of path A; ResNet-B: on the 3x3 (4.1)
    assert _downsampling_block(a).conv1._kwargs['stride'] == (2, 2)
    assert _downsampling_block(a).conv2._kwargs['stride'] == (1, 1)
    for net in (b, c, d):
        assert _downsampling_block(net).conv1._kwargs['stride'] == (1, 1)
        assert _downsampling_block(net).conv2._kwargs['stride'] == (2, 2)
    # ResNet-C: three 3x3 convs with 32, 32, 64 channels, first with stride 2 (4.2)
    convs = [blk for blk in c.conv1 if isinstance(blk, nn.Conv2D)]
    assert [cv._channels for cv in convs] == [32, 32, 64]
    assert [cv._kwargs['kernel'] for cv in convs] == [(3, 3)] * 3
    assert [cv._kwargs['stride'] for cv in convs] == [(2, 2), (1, 1), (1, 1)]
    assert isinstance(b.conv1, nn.Conv2D) and b.conv1._kwargs['kernel'] == (7, 7)
    # ResNet-D: path B = 2x2 avg pool stride 2, then 1x1 conv stride 1 (4.3)
    down = _downsampling_block(d).downsample
    assert isinstance(down[0], nn.AvgPool2D)
    assert down[0]._kwargs['kernel'] == (2, 2) and down[0]._kwargs['stride'] == (2, 2)
    assert down[1]._kwargs['stride'] == (1, 1) and down[1]._kwargs['kernel'] == (1, 1)
    assert _downsampling_block(c).downsample[0]._kwargs['stride'] == (2, 2)


def _all_norms(block, out):
    if isinstance(block, nn.BatchNorm):
        out.append(block)
    for child in block._children.values():
        _all_norms(child, out)
    return out


@pytest.mark.parametrize('name', ['resnet50_v1d', 'resnet18_v1b', 'resnet50_v1'])
@pytest.mark.parametrize('last_gamma', [True, False])
def test_zero_gamma_exactly_on_last_bn_of_each_block(name, last_gamma):
    net = get_model(name, last_gamma=last_gamma)
    net.initialize(PaperInit())
    net(mx.nd.zeros((1, 3, 32, 32)))
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert len(blocks) in (8, 16)
    last = {id(b.bn3 if isinstance(b, Bottleneck) else b.bn2) for b in blocks}
    assert all(isinstance(b, (BasicBlock, Bottleneck)) for b in blocks)
    norms = _all_norms(net, [])
    zero = {id(bn) for bn in norms if not bn.gamma.data().asnumpy().any()}
    ones = {id(bn) for bn in norms if (bn.gamma.data().asnumpy() == 1).all()}
    assert zero == (last if last_gamma else set())
    assert ones == {id(bn) for bn in norms} - zero
    for bn in norms:
        assert not bn.beta.data().asnumpy().any()


def test_paper_init_is_xavier_uniform():
    net = get_model('resnet18_v1d', classes=10)
    net.initialize(PaperInit())
    net(mx.nd.zeros((1, 3, 32, 32)))
    conv = net.layer3[0].conv2  # 256 -> 256, 3x3: d_in = d_out = 256 * 9
    w = conv.weight.data().asnumpy()
    bound = math.sqrt(6.0 / (256 * 9 + 256 * 9))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound  # std of U[-a, a] is a/sqrt(3)
    fc_w = net.fc.weight.data().asnumpy()
    fc_bound = math.sqrt(6.0 / (512 + 10))
    assert np.abs(fc_w).max() <= fc_bound and np.abs(fc_w).max() > 0.9 * fc_bound
    assert not net.fc.bias.data().asnumpy().any()


def test_dilated_keeps_one_eighth_resolution():
    for name in ('resnet50_v1s', 'resnet18_v1b'):
        net = get_model(name, dilated=True)
        net.initialize()
        x = mx.nd.random.uniform(shape=(1, 3, 64, 64))
        y = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        y = net.layer4(net.layer3(net.layer2(net.layer1(y))))
        assert y.shape[2:] == (8, 8)
        # after the first block of stage 4 every 3x3 conv has dilation 4
        convs = [b.conv2 if isinstance(b, Bottleneck) else b.conv1 for b in net.layer4][1:]
        assert convs and all(c._kwargs['dilate'] == (4, 4) for c in convs)
        assert all(b._kwargs['stride'] == (1, 1) for b in (net.layer3[0].conv1,
                                                           net.layer4[0].conv1))


def test_export_round_trip(tmp_path):
    net = get_model('resnet18_v1d', classes=10)
    net.initialize(PaperInit())
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    expected = net(x).asnumpy()
    prefix = str(tmp_path / 'resnet18_v1d')
    net.export(prefix, epoch=0)
    loaded = mx.gluon.SymbolBlock.imports(prefix + '-symbol.json', ['data'],
                                          prefix + '-0000.params')
    np.testing.assert_allclose(loaded(x).asnumpy(), expected, atol=1e-5)


@pytest.mark.parametrize('name,params_m,macs_g', [
    ('resnet50_v1', 25, 3.8), ('resnet50_v1b', 25, 4.1),
    ('resnet50_v1c', 25, 4.3), ('resnet50_v1d', 25, 4.3)])
def test_table5_model_size(name, params_m, macs_g):
    row = summarize(name, 224)
    assert abs(row['params_m'] - params_m) < 1.0
    assert abs(row['macs_g'] - macs_g) < 0.1


def test_mac_count_by_hand():
    """One 3x3 conv 3->4 on 8x8 with padding 1 plus a dense 4*8*8 -> 5."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=3), nn.Dense(5))
    net.initialize()
    net(mx.nd.zeros((1, 3, 8, 8)))
    assert count_macs(net, (1, 3, 8, 8)) == 4 * 8 * 8 * 3 * 9 + 4 * 8 * 8 * 5


@pytest.mark.subprocess
def test_summary_script_json():
    out = subprocess.run([sys.executable, os.path.join(REPO, 'scripts/classification/summary.py'),
                          '--models', 'resnet50_v1c,resnet18_v1b', '--json'],
                         capture_output=True, text=True, check=True).stdout
    rows = [__import__('json').loads(line) for line in out.splitlines()]
    assert [r['model'] for r in rows] == ['resnet50_v1c', 'resnet18_v1b']
    assert rows[0]['paper_macs_g'] == 4.3 and abs(rows[0]['macs_g'] - 4.33) < 0.01
    bad = subprocess.run([sys.executable, os.path.join(REPO, 'scripts/classification/summary.py'),
                          '--models', 'resnet50_vX'], capture_output=True, text=True)
    assert bad.returncode == 2 and 'resnet50_vX' in bad.stderr
