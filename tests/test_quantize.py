"""Reduced-precision inference exports: INT8 through MXNet's oneDNN quantization with
calibration, bfloat16 through AMP, fused float32; each written as an export that
gluon_tricks.export.load_exported runs, and its top-1 on the held-out digits against the
float32 export. Not timed.

One module fixture trains resnet18_v1b on the digits at 16 px for 120 steps of 128 (about
97 % top-1 on the 360 held-out digits; 30-60 s on 2 busy cores). The bfloat16 export test
skips on CPUs without avx512_bf16/amx_bf16, naming the flag.
"""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from conftest import bfloat16_skip_reason
from gluon_tricks import quantize as Q
from tools.benchmark.digits import digits_arrays, top1, train_quick
from gluon_tricks.export import export_model, load_exported

INPUT_SIZE = 16
# INT8 quantization, bfloat16 conversion and graph fusion are oneDNN's (the MKLDNN backend),
# whose kernels follow the CPU's flags
pytestmark = [pytest.mark.cpu_dependent,
              pytest.mark.skipif(os.environ.get('MXNET_MKLDNN_ENABLED', '1') == '0',
                                 reason='INT8/bfloat16 exports run on oneDNN, which '
                                        'MXNET_MKLDNN_ENABLED=0 switches off')]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    from gluon_tricks.amx import enable_amx
    enable_amx()   # as the entry points do (effective if oneDNN has not run yet)
    root = tmp_path_factory.mktemp('quantize')
    x_tr, y_tr, x_va, y_va, info = digits_arrays(str(root / 'digits'), INPUT_SIZE)
    net = train_quick(x_tr, y_tr, 'resnet18_v1b', steps=120, batch_size=128, lr=0.2)
    prefix = str(root / 'export' / 'fp32')
    kwargs = dict(input_size=INPUT_SIZE, crop_ratio=1.0, model_name='resnet18_v1b',
                  class_names=info.classes)
    export_model(net, prefix, **kwargs)
    fp32 = top1(load_exported(prefix)[0], x_va, y_va)
    assert fp32 >= 0.9, 'the float32 model did not train (top-1 %.3f)' % fp32
    return dict(root=root, net=net, prefix=prefix, kwargs=kwargs, info=info, fp32=fp32,
                x_va=x_va, y_va=y_va)


def _calib(trained, **kw):
    from gluon_tricks.data import AugmentConfig, FolderLoader
    aug = AugmentConfig(input_size=INPUT_SIZE, crop_ratio=1.0)
    return FolderLoader(trained['info'].train_dir, batch_size=32, train=False, aug=aug,
                        num_workers=0, **kw)


def _meta(prefix):
    with open(prefix + '-meta.json') as f:
        return json.load(f)


def test_int8_round_trip_within_one_point(trained):
    """INT8 from the in-memory network (exported on the way), calibrated (naive) on 256
    training images through the validation transform; loads, predicts, <= 1 point."""
    out = str(trained['root'] / 'export' / 'int8')
    res = Q.export_precision(trained['net'], out, 'int8', calib_loader=_calib(trained),
                             calib_mode='naive', num_calib_images=256, **trained['kwargs'])
    assert res['meta']['precision'] == 'int8' and res['meta']['calib_mode'] == 'naive'
    assert res['meta']['num_calib_images'] == 256
    ops = {n['op'] for n in json.load(open(out + '-symbol.json'))['nodes']}
    assert '_contrib_quantize_v2' in ops and '_sg_mkldnn_conv' in ops, ops
    net, meta = load_exported(out)
    assert meta['precision'] == 'int8' and meta['classes'] == trained['info'].classes
    assert meta['input_size'] == INPUT_SIZE
    acc = top1(net, trained['x_va'], trained['y_va'])
    assert acc >= trained['fp32'] - 0.01, (acc, trained['fp32'])
    logits = net(mx.nd.array(trained['x_va'][:4]))
    assert logits.dtype == np.float32 and logits.shape == (4, 10)


def test_int8_from_prefix_with_a_rec_path(trained, tmp_path):
    """INT8 from the float32 files, calibrated from a RecordIO path (read with the export's
    own validation transform), both calibration modes; entropy on few images (its threshold
    search costs seconds per layer)."""
    from gluon_tricks.data import pack_class_folder
    rec = str(tmp_path / 'train')
    pack_class_folder(trained['info'].train_dir, rec, shuffle=True, resize=0,
                      encoding='.png', quality=3, progress=False)
    out = str(tmp_path / 'int8-naive')
    Q.export_precision(trained['prefix'], out, 'int8', calib_loader=rec + '.rec',
                       calib_mode='naive', num_calib_images=128)
    acc = top1(load_exported(out)[0], trained['x_va'], trained['y_va'])
    assert acc >= trained['fp32'] - 0.01, (acc, trained['fp32'])


def test_int8_entropy_mode(trained, tmp_path):
    out = str(tmp_path / 'int8-entropy')
    res = Q.export_precision(trained['prefix'], out, 'int8', calib_loader=_calib(trained),
                             calib_mode='entropy', num_calib_images=64)
    assert res['meta']['calib_mode'] == 'entropy'
    acc = top1(load_exported(out)[0], trained['x_va'], trained['y_va'])
    assert acc >= trained['fp32'] - 0.02, (acc, trained['fp32'])


@pytest.mark.skipif(bfloat16_skip_reason() is not None,
                    reason=(bfloat16_skip_reason() or '').replace('training', 'inference'))
def test_bfloat16_round_trip_within_half_a_point(trained):
    out = str(trained['root'] / 'export' / 'bf16')
    res = Q.export_precision(trained['prefix'], out, 'bfloat16')
    assert res['meta']['precision'] == 'bfloat16'
    graph = json.load(open(out + '-symbol.json'))
    assert any(n['op'] == 'amp_cast' for n in graph['nodes']), 'the casts were not saved'
    params = mx.nd.load(out + '-0000.params')
    assert any(v.dtype != np.float32 for v in params.values()), 'no bfloat16 weights'
    net, meta = load_exported(out)
    acc = top1(net, trained['x_va'], trained['y_va'])
    assert abs(acc - trained['fp32']) <= 0.005, (acc, trained['fp32'])
    assert net(mx.nd.array(trained['x_va'][:2])).dtype == np.float32


def test_fused_float32_is_float32(trained, tmp_path):
    out = str(tmp_path / 'fused')
    Q.export_precision(trained['prefix'], out, 'float32-fused')
    x = mx.nd.array(trained['x_va'][:8])
    ref = load_exported(trained['prefix'])[0](x).asnumpy()
    got = load_exported(out)[0](x).asnumpy()
    assert _meta(out)['precision'] == 'float32-fused'
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_predict_and_open_classifier_run_the_int8_export(trained):
    """The files open through the common inference entry (what predict.py/evaluate.py use)."""
    from gluon_tricks.inference import open_classifier
    out = str(trained['root'] / 'export' / 'int8')
    if not os.path.isfile(out + '-symbol.json'):
        pytest.skip('needs test_int8_round_trip_within_one_point')
    clf = open_classifier(out)
    assert clf.meta['precision'] == 'int8' and clf.meta['input_size'] == INPUT_SIZE
    logits = clf(trained['x_va'][:5])
    assert logits.shape == (5, 10)


def test_arguments_are_checked(trained, tmp_path):
    with pytest.raises(ValueError, match='precision must be one of'):
        Q.export_precision(trained['prefix'], str(tmp_path / 'x'), 'int4')
    with pytest.raises(ValueError, match='calibration images'):
        Q.export_precision(trained['prefix'], str(tmp_path / 'x'), 'int8')
    with pytest.raises(ValueError, match='calib_mode'):
        Q.export_precision(trained['prefix'], str(tmp_path / 'x'), 'int8',
                           calib_loader=_calib(trained), calib_mode='kl')
    with pytest.raises(FileNotFoundError, match='neither a .rec file nor'):
        Q.export_precision(trained['prefix'], str(tmp_path / 'x'), 'int8',
                           calib_loader=str(tmp_path / 'missing.rec'))
    with pytest.raises(FileNotFoundError, match='export the model first'):
        Q.export_precision(str(tmp_path / 'nothing'), str(tmp_path / 'x'), 'bfloat16')


def test_calibration_samples_every_class_of_a_sorted_folder(trained):
    """A class-folder tree is read in class order; calibration draws a random sample."""
    batches = Q.calibration_batches(_calib(trained), 64)
    labels = np.concatenate([lab.asnumpy() for _, lab in batches])
    assert len(labels) == 64 and len(set(labels.tolist())) >= 8


def test_cpu_messages_name_the_flag(monkeypatch):
    fast, why = Q.int8_cpu_support({'avx2', 'fma'})
    assert not fast and 'avx512_vnni' in why and 'amx_int8' in why and 'AVX2' in why
    assert Q.int8_cpu_support({'avx512f', 'avx512_vnni'}) == (True, 'avx512_vnni')
    from gluon_tricks import precision
    monkeypatch.setenv('GLUON_TRICKS_CPU_FLAGS', 'avx2,fma')
    warnings = []
    msg = Q.check_precision_support('int8', log=warnings.append)
    assert msg and 'avx512_vnni' in warnings[0]
    monkeypatch.setattr(precision, '_BF16_PROBE', (False, 'no bfloat16 kernels'))
    with pytest.raises(RuntimeError) as err:
        Q.check_precision_support('bfloat16')
    assert 'avx512_bf16' in str(err.value) and 'amx_bf16' in str(err.value)


@pytest.mark.subprocess
def test_export_and_evaluate_scripts_int8(trained, tmp_path):
    """The command line: export.py --precision int8 with calibration data, evaluate.py on the
    held-out folder; refusals for int8 without data and for an int8 ONNX export."""
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(repo, 'scripts', 'classification', '%s.py')
    params = str(tmp_path / 'net.params')
    trained['net'].save_parameters(params)
    base = [sys.executable, script % 'export', '--model', 'resnet18_v1b', '--params', params,
            '--input-size', str(INPUT_SIZE), '--crop-ratio', '1.0']
    out = subprocess.run(base + ['--out', str(tmp_path / 'q'), '--precision', 'int8',
                                 '--calib-data', trained['info'].train_dir,
                                 '--num-calib-images', '128'],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _meta(str(tmp_path / 'q'))['precision'] == 'int8'
    out = subprocess.run([sys.executable, script % 'evaluate', str(tmp_path / 'q'),
                          '--data-dir', os.path.dirname(trained['info'].val_dir)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    top = float(out.stdout.split('top-1 ')[1].split()[0])
    assert top >= trained['fp32'] - 0.01, (top, trained['fp32'])
    for extra, message in ((['--precision', 'int8'], 'needs --calib-data'),
                           (['--precision', 'bfloat16', '--format', 'onnx'],
                            'MXNet format only')):
        out = subprocess.run(base + ['--out', str(tmp_path / 'r')] + extra,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 2 and message in out.stderr, out.stderr[-1000:]
