"""ONNX export: onnxruntime's output equals MXNet's for every registered model, and the
exported preprocessing classifies the digits demo's held-out set as MXNet's pipeline does.

What runs, and why (2 shared cores; the whole file takes about two minutes):

* a small odd input for every registered name (``get_model_list()``, 31 networks) up to 50
  layers, and for ResNet-101-D: 33 px (75 px for Inception-V3, its smallest). Odd sides are
  the known trap: the ResNet-D shortcut averages with ``ceil_mode=True,
  count_include_pad=False``, and at 33 px the feature maps are odd at every stage (17, 9, 5,
  3), so every downsampling block pools partial windows; Inception's 75 px goes through every
  reduction down to a 1 x 1 map;
* the eleven other 101/152-layer names only with ``GLUON_TRICKS_ONNX_FULL=1``: their graphs
  are their 50-layer sibling's (tested) with more identical bottleneck blocks in stages 3
  and 4, while their 45-60 M weights cost 10-15 s each to train, export and serialise here,
  whatever the input size (ResNet-101-D stands for depth);
* the default input size for a representative subset: ResNet-50-D (deep stem, average-pool
  shortcut) at 224 and at the odd 225, MobileNet-1.0 at 224 and Inception-V3 at its
  default 299 (odd);
* every export is run at batch 1 and at batch 3 (one file: the batch axis is dynamic);
* weights are not the initial ones: Xavier, then three SGD steps (momentum 0.9) on random data
  in training mode, then every BatchNorm's running statistics estimated from the data and
  perturbed per channel (:func:`_estimate_bn_statistics`), so weights and statistics differ
  from their initial values and the logits differ from sample to sample;
* parity: ``max |onnxruntime - MXNet| / max |MXNet|`` over the logits, at most 1e-4.

``GLUON_TRICKS_ONNX_FULL=1`` runs every name at 33 px (75) and at its default size and the
size one above it (224 and 225; Inception 299 and 300): about 15 minutes here.
``GLUON_TRICKS_ONNX_REPORT=FILE`` appends one JSON line per check (name, size, batch,
relative difference).
"""
import importlib.util
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')

from gluon_tricks.model_zoo import get_model, get_model_list  # noqa: E402
from gluon_tricks.onnx import (INPUT_NAME, OUTPUT_NAME, OnnxClassifier,  # noqa: E402
                               export_onnx, read_onnx_metadata)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')
TOLERANCE = 1e-4
CLASSES = 10
FULL = os.environ.get('GLUON_TRICKS_ONNX_FULL') == '1'
REPORT = os.environ.get('GLUON_TRICKS_ONNX_REPORT')


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _default_size(name):
    return 299 if name.startswith('inception') else 224


def _small_size(name):
    return 75 if name.startswith('inception') else 33


DEEP_REPRESENTATIVES = ('resnet101_v1d',)
DEFAULT_SUBSET = (('resnet50_v1d', 224), ('resnet50_v1d', 225), ('mobilenet1.0', 224),
                  ('inceptionv3', 299))


def _is_deep(name):
    return name.startswith(('resnet101', 'resnet152'))


def _cases():
    names = [n for n in get_model_list()
             if FULL or not _is_deep(n) or n in DEEP_REPRESENTATIVES]
    cases = [(name, _small_size(name)) for name in names]
    if FULL:
        return cases + [(name, size) for name in get_model_list()
                        for size in (_default_size(name), _default_size(name) + 1)]
    return cases + list(DEFAULT_SUBSET)


_TRAINED = {}


def _trained_once(name):
    """:func:`trained_net` at the small size, kept for the same name's default-size cases."""
    if name in _TRAINED:
        return _TRAINED[name]
    net = trained_net(name, _small_size(name))
    if FULL:  # the default sizes follow the small one for each name: keep the last only
        _TRAINED.clear()
    if FULL or name in dict(DEFAULT_SUBSET):
        _TRAINED[name] = net
    return net


def trained_net(name, size, steps=3, batch=4, seed=0):
    """``name`` with Xavier weights moved by ``steps`` SGD steps on random data (gradients
    clipped: unclipped, the first steps of a 152-layer ResNet at this learning rate blow its
    stem weights up), then data-estimated BatchNorm statistics."""
    mx.random.seed(seed)
    rng = np.random.RandomState(seed)
    net = get_model(name, classes=CLASSES)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            {'learning_rate': 0.01, 'momentum': 0.9, 'wd': 1e-4,
                             'clip_gradient': 0.1})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    net(mx.nd.zeros((1, 3, size, size)))  # deferred shapes, to keep the initial weights
    initial = {k: p.data().copy() for k, p in net.collect_params().items()}
    for _ in range(steps):
        x = mx.nd.array(rng.normal(size=(batch, 3, size, size)).astype('float32'))
        y = mx.nd.array(rng.randint(0, CLASSES, size=batch).astype('float32'))
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
    for k, p in net.collect_params().items():
        if p.grad_req != 'null':
            assert (p.data() != initial[k]).sum().asscalar() > 0, '%s did not move' % k
    _estimate_bn_statistics(net, rng.normal(size=(batch, 3, size, size)), rng)
    return net


def _estimate_bn_statistics(net, x, rng):
    """Running statistics from the data, as after real training.

    Three steps move them only 27 % of the way from (0, 1) to the batch statistics (BatchNorm
    momentum 0.9), and with the variance left far above the activations' the signal fades
    through MobileNet's depthwise layers until every input gives the same logits. So, like a
    "precise BN" pass, each layer's running mean and variance are set from its actual input
    (the earlier layers already normalising with theirs), randomly perturbed per channel.
    """
    def walk(block):
        yield block
        for child in block._children.values():
            yield from walk(child)

    def estimate(block, inputs):
        data = inputs[0].asnumpy().astype('float64')
        mean, var = data.mean(axis=(0, 2, 3)), data.var(axis=(0, 2, 3))
        # a channel constant over this small batch (ReLU-dead, or a 1 x 1 map) would get a
        # gain of 1 / sqrt(eps): floor its variance at a tenth of the layer's median
        var = np.maximum(var, 0.1 * np.median(var) + 1e-6)
        block.running_mean.set_data(mx.nd.array(mean + rng.normal(0, 0.02, mean.shape)
                                                * np.sqrt(var)))
        block.running_var.set_data(mx.nd.array(var * rng.uniform(0.9, 1.1, var.shape)))

    net.hybridize(active=False)
    handles = [b.register_forward_pre_hook(estimate) for b in walk(net)
               if isinstance(b, gluon.nn.BatchNorm)]
    assert handles
    net(mx.nd.array(x.astype('float32')))
    for handle in handles:
        handle.detach()
    net.hybridize()


def _relative_diff(ours, ref):
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12))


def _report(**row):
    if REPORT:
        with open(REPORT, 'a') as f:
            f.write(json.dumps(row, sort_keys=True) + '\n')


@pytest.mark.parametrize('name,size', _cases())
def test_onnxruntime_matches_mxnet(name, size, tmp_path):
    # trained at the small size (the weights do not depend on the input size)
    net = _trained_once(name)
    moved = [p for k, p in net._collect_params_with_prefix().items()
             if k.endswith('running_mean')]
    assert moved and all(np.abs(p.data().asnumpy()).max() > 0 for p in moved[:3])
    path = str(tmp_path / ('%s-%d.onnx' % (name, size)))
    export_onnx(net, path, input_size=size, model_name=name)

    model = onnx.load(path)
    weights = {t.name for t in model.graph.initializer}
    assert [i.name for i in model.graph.input] == [INPUT_NAME]  # weights are not inputs
    assert INPUT_NAME not in weights and len(weights) > 10
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == 'batch' and [d.dim_value for d in dims[1:]] == [3, size, size]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    meta = read_onnx_metadata(model)
    assert meta['model'] == name and meta['input_size'] == size and meta['num_classes'] == 10

    session = OnnxClassifier(path)
    rng = np.random.RandomState(1)
    x = rng.normal(size=(3, 3, size, size)).astype('float32')
    ref3 = net(mx.nd.array(x)).asnumpy()
    # the check means something only if the outputs depend on the input
    assert np.abs(ref3[0] - ref3[1]).max() > 1e-3 * np.abs(ref3).max()
    for batch in (1, 3):
        ref = net(mx.nd.array(x[:batch])).asnumpy()
        out = session(x[:batch])
        assert out.shape == ref.shape == (batch, CLASSES)
        diff = _relative_diff(out, ref)
        _report(name=name, size=size, batch=batch, rel_diff=diff,
                params=int(sum(p.data().size for p in net.collect_params().values())))
        assert diff <= TOLERANCE, '%s at %d px, batch %d: relative difference %.3g' % (
            name, size, batch, diff)


# --- digits: the exported preprocessing against MXNet's validation pipeline ---------------

@pytest.fixture(scope='module')
def digits_run(rec_dir, tmp_path_factory):
    """ResNet-18-D trained for one epoch (45 steps) on the digits demo's training split (1,437
    images, the class folders conftest writes beside ``rec_dir``) at 24 px, validated on its
    held-out split (360 images, 40 x 40 PNG: resized to 30, center crop 24), and exported to
    ONNX from its best checkpoint."""
    train_imagenet = _load_script('train_imagenet')
    root = tmp_path_factory.mktemp('onnx_digits')
    save = root / 'run'
    digits = os.path.join(os.path.dirname(rec_dir), 'full')
    train_imagenet.main([
        '--model', 'resnet18_v1d', '--data-dir', digits, '--input-size', '24',
        '--crop-ratio', '0.8', '--random-area-min', '0.5', '--no-mirror', '--batch-size', '32',
        '-j', '1', '--log-interval', '15', '--num-epochs', '1', '--base-lr', '0.8',
        '--lr-mode', 'cosine', '--last-gamma', '--save-dir', str(save)])
    onnx_path = str(root / 'r18d.onnx')
    _load_script('export').main([
        '--model', 'resnet18_v1d', '--params', str(save / 'checkpoint-best' / 'net.params'),
        '--format', 'onnx', '--out', onnx_path, '--input-size', '24', '--crop-ratio', '0.8',
        '--class-names', os.path.join(rec_dir, 'classes.txt')])
    return {'save': str(save), 'onnx': onnx_path, 'rec_dir': rec_dir, 'digits': digits,
            'val_dir': os.path.join(digits, 'val')}


def test_export_is_checked_and_carries_preprocessing(digits_run):
    model = onnx.load(digits_run['onnx'])
    onnx.checker.check_model(model, full_check=True)
    meta = read_onnx_metadata(model)
    assert meta['input_size'] == 24 and meta['crop_ratio'] == 0.8 and meta['resize'] == 30
    assert meta['mean'] == pytest.approx([123.68, 116.779, 103.939])
    assert meta['std'] == pytest.approx([58.393, 57.12, 57.375])
    assert meta['classes'] == [str(d) for d in range(10)]
    assert meta['layout'] == 'NCHW' and meta['color'] == 'RGB'
    assert model.producer_name == 'gluon-tricks'


def test_exported_preprocessing_gives_mxnet_top1_on_held_out_digits(digits_run):
    """predict.py with the .onnx (its preprocessing read from the file's metadata) against the
    checkpoint run through MXNet with the training's validation loader, image by image."""
    import glob
    from gluon_tricks import data as gdata
    from gluon_tricks.engine import evaluate
    from gluon_tricks.model_zoo.io import load_model
    val_dir = digits_run['val_dir']
    files = sorted(glob.glob(os.path.join(val_dir, '*', '*.png')))
    assert len(files) == 360
    labels = [int(os.path.basename(os.path.dirname(f))) for f in files]
    results = _load_script('predict').main(['--model-file', digits_run['onnx'], '--topk', '1']
                                           + files)
    onnx_pred = [r[0][0] for r in results]
    onnx_top1 = np.mean(np.array(onnx_pred) == np.array(labels))

    net = load_model('resnet18_v1d', os.path.join(digits_run['save'], 'checkpoint-best',
                                                  'net.params'))
    aug = gdata.AugmentConfig(input_size=24, crop_ratio=0.8)
    loader = gdata.FolderLoader(val_dir, batch_size=50, train=False, aug=aug, num_workers=0)
    mx_top1 = evaluate(net, loader, [mx.cpu()])['top1']
    mx_pred = []
    for data, _ in gdata.FolderLoader(val_dir, batch_size=50, train=False, aug=aug,
                                      num_workers=0):
        mx_pred += net(data).argmax(axis=1).asnumpy().astype(int).tolist()
    assert onnx_top1 == pytest.approx(mx_top1, abs=1e-12)
    assert onnx_pred == mx_pred  # the same class for every image
    assert mx_top1 > 0.4  # trained (about 0.68): the comparison says something


def test_evaluate_script_agrees_across_formats(digits_run, capsys):
    """evaluate.py: the .onnx, the MXNet export and the checkpoint give the same top-1/top-5
    on the class folders and on a RecordIO file, and the checkpoint's equals what training
    measured on the same held-out folder."""
    evaluate = _load_script('evaluate')
    save = digits_run['save']
    prefix = os.path.join(os.path.dirname(digits_run['onnx']), 'mx', 'r18d')
    _load_script('export').main([
        '--model', 'resnet18_v1d', '--params', os.path.join(save, 'checkpoint-best',
                                                            'net.params'),
        '--out', prefix, '--input-size', '24', '--crop-ratio', '0.8'])
    with open(os.path.join(save, 'checkpoint-best', 'state.json')) as f:
        trained_top1 = json.load(f)['state']['metrics']['top1']
    common = ['--batch-size', '64', '-j', '0', '--latency-runs', '3']
    rec_val = os.path.join(digits_run['rec_dir'], 'val.rec')
    results = {}
    for label, source in (('onnx', digits_run['onnx']), ('mxnet', prefix),
                          ('checkpoint', save)):
        extra = ['--input-size', '24', '--crop-ratio', '0.8'] if label == 'checkpoint' else []
        results[label] = (evaluate.main([source, '--data-dir', digits_run['digits']]
                                        + common + extra),
                          evaluate.main([source, '--rec-val', rec_val] + common + extra))
    out = capsys.readouterr().out
    assert 'top-1' in out and 'img/s' in out and 'latency' in out
    for folder, rec in results.values():
        assert folder['total'] == 360 and rec['total'] == 50
        for mine, ref in ((folder, results['onnx'][0]), (rec, results['onnx'][1])):
            assert mine['top1'] == pytest.approx(ref['top1'], abs=1e-12)
            assert mine['top5'] == pytest.approx(ref['top5'], abs=1e-12)
            assert mine['images_per_sec'] > 0 and mine['latency_ms'] > 0
    assert results['checkpoint'][0]['top1'] == pytest.approx(trained_top1, abs=1e-12)
    assert [r[0]['format'] for r in results.values()] == ['onnx', 'mxnet-export',
                                                          'checkpoint']
