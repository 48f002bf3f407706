"""Backbone loading for transfer learning (gluon_tricks.transfer), on a tiny backbone that our
own train_imagenet.py wrote (tests/helpers/transfer_data.py), and on GluonCV's .params files.
"""
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluon_tricks import transfer
from gluon_tricks.model_zoo import get_model
from helpers.transfer_data import BACKBONE, tiny_backbone


@pytest.fixture(scope='module')
def backbone_run(tmp_path_factory):
    return tiny_backbone(tmp_path_factory)


def _file_arrays(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def _stem_and_stages(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    c3 = net.layer3(net.layer2(net.layer1(x)))
    return c3, net.layer4(c3)


def test_checkpoint_of_train_imagenet_arrives_in_every_task(backbone_run):
    ckpt = os.path.join(backbone_run, 'checkpoint-best', 'net.params')
    saved = _file_arrays(ckpt)
    # the save dir, the checkpoint dir and the file all mean the same file
    for given in (backbone_run, os.path.dirname(ckpt), ckpt):
        assert os.path.realpath(transfer.resolve_params_file(given)) == os.path.realpath(ckpt)
    for task in transfer.TASKS:
        net = transfer.load_backbone(BACKBONE, backbone_run, task=task)
        loaded = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
        assert sorted(loaded) == sorted(saved)
        for key, value in saved.items():
            np.testing.assert_array_equal(loaded[key], value, err_msg='%s (%s)' % (key, task))
    # the weights are the trained ones, not a fresh initialization
    fresh = get_model(BACKBONE, classes=10)
    fresh.initialize(mx.init.Xavier())
    fresh(mx.nd.zeros((1, 3, 32, 32)))
    assert not np.allclose(fresh.layer4[1].conv2.weight.data().asnumpy(),
                           saved['layer4.1.conv2.weight'])


def test_detection_backbone_keeps_bn_statistics_frozen(backbone_run):
    det = transfer.load_backbone(BACKBONE, backbone_run, task='detection')
    cls = transfer.load_backbone(BACKBONE, backbone_run, task='classification')
    x = mx.nd.random.uniform(-1, 1, shape=(2, 3, 64, 64))
    mean_before = det.layer2[0].bn1.running_mean.data().asnumpy().copy()
    with autograd.predict_mode():
        ref = _stem_and_stages(det, x)[1].asnumpy()
    with autograd.record(train_mode=True):
        train_out = _stem_and_stages(det, x)[1]
        cls_out = _stem_and_stages(cls, x)[1]
    np.testing.assert_allclose(train_out.asnumpy(), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(det.layer2[0].bn1.running_mean.data().asnumpy(), mean_before)
    # without frozen statistics training mode normalizes with the batch: a different output
    assert not np.allclose(cls_out.asnumpy(), ref, rtol=1e-3, atol=1e-3)


def test_segmentation_backbone_is_dilated_in_stages_3_and_4(backbone_run):
    seg = transfer.load_backbone(BACKBONE, backbone_run, task='segmentation')
    cls = transfer.load_backbone(BACKBONE, backbone_run, task='classification')
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 64, 64))
    c3, c4 = _stem_and_stages(seg, x)
    assert c3.shape == (1, 256, 8, 8) and c4.shape == (1, 512, 8, 8)      # output stride 8
    assert _stem_and_stages(cls, x)[1].shape == (1, 512, 2, 2)               # stride 32
    assert transfer.stage_channels(seg) == (256, 512)
    assert seg.layer4[0].conv1._kwargs['dilate'] == (2, 2)
    assert seg.layer4[1].conv1._kwargs['dilate'] == (4, 4)
    assert seg.layer3[1].conv2._kwargs['dilate'] == (2, 2)
    np.testing.assert_array_equal(seg.layer4[1].conv2.weight.data().asnumpy(),
                                  cls.layer4[1].conv2.weight.data().asnumpy())


@pytest.mark.parametrize('gluoncv_name', ['resnet18_v1b', 'resnet18_v1'])
def test_gluoncv_params_of_the_same_name_load(tmp_path, gluoncv_name):
    import gluoncv
    ref = gluoncv.model_zoo.get_model(gluoncv_name, pretrained=False)
    ref.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 32, 32))
    expected = ref(x).asnumpy()
    path = str(tmp_path / (gluoncv_name + '.params'))
    ref.save_parameters(path)
    assert transfer.describe_params(path)['name'] == gluoncv_name
    net = transfer.load_backbone(gluoncv_name, path, task='detection')
    first = 'features.0.weight' if gluoncv_name == 'resnet18_v1' else 'conv1.weight'
    np.testing.assert_array_equal(net.conv1.weight.data().asnumpy(),
                                  mx.nd.load(path)[first].asnumpy())
    # the whole network computes what GluonCV's computes (running statistics: frozen BN)
    np.testing.assert_allclose(net(x).asnumpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('name', ['resnet50_v1d', 'resnet50_v1s', 'resnet34_v1c'])
def test_describe_params_recognises_the_variant(tmp_path, name):
    net = get_model(name, classes=7)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / 'x.params')
    net.save_parameters(path)
    info = transfer.describe_params(path)
    assert (info['name'], info['classes']) == (name, 7)


def test_a_checkpoint_that_does_not_fit_names_both(backbone_run, tmp_path):
    ckpt = transfer.resolve_params_file(backbone_run)
    for wrong in ('resnet18_v1b', 'resnet34_v1d', 'resnet50_v1d'):
        with pytest.raises(transfer.BackboneMismatchError) as err:
            transfer.load_backbone(wrong, backbone_run, task='detection')
        msg = str(err.value)
        assert wrong in msg and ckpt in msg and 'looks like %s' % BACKBONE in msg, msg
    with pytest.raises(ValueError) as err:
        transfer.load_backbone('resnet19_v1d', backbone_run)
    assert 'resnet19_v1d' in str(err.value) and backbone_run in str(err.value)
    with pytest.raises(ValueError) as err:
        transfer.load_backbone('mobilenet1.0', backbone_run)
    assert 'not a ResNet' in str(err.value)
    with pytest.raises(FileNotFoundError):
        transfer.load_backbone(BACKBONE, str(tmp_path / 'nothing.params'))
    junk = tmp_path / 'junk.params'
    junk.write_bytes(b'not an ndarray file' * 10)
    with pytest.raises(transfer.BackboneMismatchError) as err:
        transfer.load_backbone(BACKBONE, str(junk))
    assert 'junk.params' in str(err.value) and BACKBONE in str(err.value)
    with pytest.raises(ValueError):
        transfer.load_backbone(BACKBONE, backbone_run, task='pose')
