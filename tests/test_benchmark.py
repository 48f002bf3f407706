"""Smoke tests of the benchmark harness: it runs at a tiny size and its JSON holds
every figure. Nothing here is timed or compares speeds."""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from tools.benchmark import machine, pipeline, timing
from tools.benchmark.loops import train_gflops_per_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'classification', 'benchmark.py')


def _load_script():
    spec = importlib.util.spec_from_file_location('benchmark_script', SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _positive(value, where):
    assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    assert math.isfinite(value) and value > 0, '%s = %r' % (where, value)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('bench')
    cmd = [sys.executable, SCRIPT, '--model', 'resnet18_v1b', '--input-size', '32',
           '--batch-size', '4', '--iterations', '2', '--windows', '2', '--warmup', '1',
           '--data-images', '8', '--image-size', '48x40', '--data-threads', '2',
           '--latency-calls', '4', '--work-dir', str(tmp / 'work'),
           '--profile', str(tmp / 'trace.json'), '--profile-top', '5', '--json']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    out['_tmp'] = str(tmp)
    return out


@pytest.mark.subprocess
def test_train_and_reference_fields(results):
    for key in ('train', 'reference'):
        r = results[key]
        for field in ('img_per_sec', 'img_per_cpu_sec', 'gflops_per_image', 'achieved_gflops',
                      'gflops_per_cpu_sec', 'peak_fraction', 'core_peak_fraction', 'batch_size'):
            _positive(r[field], '%s.%s' % (key, field))
        assert len(r['windows']) == 2 and len(r['cpu_windows']) == 2
        for v in r['windows']:
            _positive(v, key + '.windows')
        assert r['img_per_sec'] == pytest.approx(timing.median(r['windows']))
    assert math.isfinite(results['train']['loss'])
    for field in ('ratio', 'ratio_paired', 'ratio_cpu', 'model_gmacs'):
        _positive(results[field], field)
    assert results['ratio'] == pytest.approx(results['train']['img_per_sec'] /
                                             results['reference']['img_per_sec'], rel=1e-9)
    assert results['ratio_paired'] == pytest.approx(timing.paired_ratio(
        results['train']['windows'], results['reference']['windows']))


@pytest.mark.subprocess
def test_profile_fields(results):
    p = results['profile']
    _positive(p['wall_ms'], 'profile.wall_ms')
    _positive(p['operator_ms'], 'profile.operator_ms')
    assert p['per_operator'] and 1 <= len(p['operators']) <= 5
    names = [op['name'] for op in p['operators']]
    assert any('Convolution' in n for n in names), names
    assert all(',' not in n for n in names), 'bulked segments in a per-operator profile'
    for op in p['operators']:
        _positive(op['total_ms'], op['name'])
        _positive(op['share'], op['name'])
    assert sum(p['groups'].values()) == pytest.approx(1.0)
    assert os.path.getsize(os.path.join(results['_tmp'], 'trace.json')) > 0


@pytest.mark.subprocess
def test_data_fields(results):
    d = results['data']
    assert d['images'] == 8 and d['image_size'] == [48, 40]
    for field in ('img_per_sec', 'img_per_sec_per_thread', 'ratio', 'bytes_per_image'):
        _positive(d[field], 'data.' + field)
    assert d['threads'], 'no thread count measured'
    for t, r in d['threads'].items():
        assert r['effective_threads'] == pipeline.record_iter_threads(int(t))
        for field in ('img_per_sec', 'img_per_sec_per_thread', 'reference_img_per_sec',
                      'reference_img_per_sec_per_thread', 'ratio', 'ratio_paired', 'ratio_cpu',
                      'fresh_img_per_sec', 'ratio_fresh', 'ratio_fresh_paired',
                      'ratio_fresh_cpu', 'img_per_cpu_sec', 'reference_img_per_cpu_sec',
                      'in_process_img_per_sec', 'ratio_in_process'):
            _positive(r[field], 'data.threads.%s.%s' % (t, field))
        assert r['ratio'] == pytest.approx(r['img_per_sec'] / r['reference_img_per_sec'])
        assert r['img_per_sec_per_thread'] == pytest.approx(r['img_per_sec'] /
                                                            r['effective_threads'])


@pytest.mark.subprocess
def test_inference_fields(results):
    inf = results['inference']
    assert inf['variants'][:2] == ['in_memory', 'exported']
    for name in inf['variants']:
        for field in ('img_per_sec', 'img_per_cpu_sec', 'latency_ms', 'latency_cpu_ms'):
            _positive(inf[name][field], 'inference.%s.%s' % (name, field))
    for name in inf['variants'][1:]:
        for field in ('throughput_ratio', 'throughput_ratio_paired', 'throughput_ratio_cpu',
                      'latency_ratio', 'latency_ratio_paired', 'latency_ratio_cpu'):
            _positive(inf[name][field], 'inference.%s.%s' % (name, field))
    assert inf['throughput_ratio'] == pytest.approx(
        inf['exported']['img_per_sec'] / inf['in_memory']['img_per_sec'])
    assert inf['latency_ratio'] == pytest.approx(
        inf['exported']['latency_ms'] / inf['in_memory']['latency_ms'])


@pytest.mark.subprocess
def test_machine_and_config(results):
    m = results['machine']
    _positive(m['cores'], 'cores')
    _positive(m['mxnet_omp_threads'], 'mxnet_omp_threads')
    if m.get('mhz'):
        _positive(m['peak_gflops_fp32'], 'peak')
    c = results['config']
    assert c['model'] == 'resnet18_v1b' and c['what'] == ['train', 'reference', 'data',
                                                          'inference']


def test_bad_flags_are_named(capsys):
    mod = _load_script()
    with pytest.raises(SystemExit) as e:
        mod.parse_args(['--model', 'resnet51_v1z'])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown --model 'resnet51_v1z'" in err and 'resnet50_v1d' in err
    with pytest.raises(SystemExit):
        mod.parse_args(['--what', 'train,speed'])
    assert 'speed' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.parse_args(['--dtype', 'float16', '--what', 'train'])
    assert 'float16' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.parse_args(['--image-size', '400by350'])
    assert 'WIDTHxHEIGHT' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.parse_args(['--iterations', '0'])
    assert '--iterations' in capsys.readouterr().err
    args = mod.parse_args(['--what', 'data', '--data-threads', '3'])
    assert args.what == ['data'] and args.data_threads == 3
    with pytest.raises(SystemExit):
        mod.parse_args(['--load', '-1'])
    assert '--load' in capsys.readouterr().err
    assert mod.parse_args(['--load', '2']).load == 2


@pytest.mark.subprocess
def test_busy_load_runs_only_inside_its_block():
    import psutil
    with machine.BusyLoad(2) as load:
        procs = [psutil.Process(p.pid) for p in load.procs]
        assert len(procs) == 2 and all(p.is_running() for p in procs)
        busy = sum(p.cpu_percent(interval=0.5) for p in procs)
        assert busy > 50, 'the competing processes are not busy (%.0f %% CPU)' % busy
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in procs)


def test_helpers(tmp_path):
    assert pipeline.record_iter_threads(8, cores=2) == 1
    assert pipeline.record_iter_threads(8, cores=8) == 3
    assert pipeline.record_iter_threads(2, cores=64) == 2
    peak, per_cycle = machine.cpu_peak_gflops(2, 2.5, ['avx', 'avx2', 'fma'])
    assert per_cycle == 32 and peak == pytest.approx(160.0)
    assert machine.cpu_peak_gflops(1, 1.0, ['avx512f', 'avx2', 'fma'])[1] == 64
    assert timing.paired_ratio([2.0, 4.0, 9.0], [1.0, 4.0, 3.0]) == pytest.approx(2.0)
    assert machine.mxnet_omp_threads(8, {'OMP_NUM_THREADS': '3'}) == 3
    assert machine.mxnet_omp_threads(8, {'MXNET_OMP_MAX_THREADS': '5'}) == 5
    assert machine.mxnet_omp_threads(8, {}) in (4, 8)        # half on x86
    info = pipeline.make_jpeg_record(str(tmp_path), 4, 30, 20, num_classes=2, distinct=3)
    assert not info['reused'] and info['num_images'] == 4 and info['bytes_per_image'] > 0
    assert os.path.isfile(info['rec']) and os.path.isfile(info['idx'])
    assert pipeline.make_jpeg_record(str(tmp_path), 4, 30, 20, num_classes=2, distinct=3)['reused']
    other = pipeline.make_jpeg_record(str(tmp_path), 4, 30, 20, num_classes=3)   # no classes clash
    assert not other['reused'] and other['rec'] != info['rec']
    gflops, gmacs = train_gflops_per_image('resnet50_v1d', 224)
    assert gmacs == pytest.approx(4.3, abs=0.1)          # Table 5
    assert gflops == pytest.approx(6 * gmacs)


def test_gluoncv_env_and_new_parts():
    """The reference worker gets GluonCV's default environment; the new parts parse."""
    from tools.benchmark.precision import _repo_on_path, gluoncv_env
    env = gluoncv_env({'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE',
                       'GOMP_SPINCOUNT': '10000', 'DNNL_MAX_CPU_ISA': 'AVX512_CORE_AMX', 'PATH': '/bin'})
    assert env == {'PATH': '/bin', 'GLUON_TRICKS_AMX': '0'}
    # workers run `python -m tools.benchmark.precision`: the repo root goes first on their path
    assert _repo_on_path({'PYTHONPATH': '/x'})['PYTHONPATH'].split(os.pathsep) == [REPO, '/x']
    mod = _load_script()
    args = mod.parse_args(['--what', 'digits,train_bf16,exports,train'])
    assert args.what == ['train', 'train_bf16', 'exports', 'digits']
    assert args.reference_env == 'gluoncv'
    assert mod.parse_args([]).what == list(mod.DEFAULT_WHAT)
