"""The package layout: the library never imports the repo-only ``tools`` package or
plotting/analysis libraries, importing it loads only what training and inference need, no
module of ``gluon_tricks/`` grows past about 500 lines and no file of ``tests/`` past 600."""
import json
import os
import pkgutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, 'gluon_tricks')
TESTS = os.path.join(REPO, 'tests')
MAX_LINES = 480
#: the same for the tests: a test file over this is split by topic (the tests of
#: gluon_tricks/data/<module>.py are in tests/test_data_<module>.py)
MAX_TEST_LINES = 600
#: never loaded by the library (tools: repo-only; the others: analysis and plotting) beyond
#: what ``import mxnet`` itself loads (MXNet 1.9.1's contrib.onnx pulls in onnx and sklearn)
FORBIDDEN = ('tools', 'matplotlib', 'sklearn')
#: not loaded by ``import gluon_tricks, gluon_tricks.data, gluon_tricks.model_zoo``
#: (GluonCV only where a model needs it: detection, segmentation, the reference loops)
HEAVY = FORBIDDEN + ('gluoncv', 'tensorboardX', 'onnx', 'onnxruntime', 'horovod', 'cv2')


def library_modules():
    """Every module of ``gluon_tricks`` (packages included), by dotted name."""
    names = ['gluon_tricks']
    for info in pkgutil.walk_packages([PACKAGE], 'gluon_tricks.'):
        names.append(info.name)
    return sorted(names)


def loaded_after(imports):
    """Top-level names in ``sys.modules`` after importing ``imports`` in a fresh Python
    started in the repository root (where ``tools`` is importable)."""
    code = ('import importlib, json, sys\n'
            'for name in %r:\n'
            '    importlib.import_module(name)\n'
            'print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))' % (imports,))
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.fixture(scope='module')
def mxnet_loads():
    """What ``import mxnet`` loads by itself (not the library's doing)."""
    return loaded_after(['mxnet'])


@pytest.mark.subprocess
def test_no_library_module_imports_tools_or_plotting(mxnet_loads):
    modules = library_modules()
    loaded = loaded_after(modules)
    bad = sorted((loaded - mxnet_loads) & set(FORBIDDEN) | loaded & {'tools'})
    assert not bad, 'importing every gluon_tricks module (%d) loads %s' % (len(modules), bad)


@pytest.mark.subprocess
def test_import_loads_only_what_training_needs(mxnet_loads):
    loaded = loaded_after(['gluon_tricks', 'gluon_tricks.data', 'gluon_tricks.model_zoo'])
    bad = sorted((loaded - mxnet_loads) & set(HEAVY) | loaded & {'tools'})
    assert not bad, 'import gluon_tricks, gluon_tricks.data, gluon_tricks.model_zoo loads %s' \
        % bad


def files_over(top, max_lines):
    """``{path relative to the repository: lines}`` of the Python files under ``top`` that
    have more than ``max_lines`` lines."""
    too_long = {}
    for root, _, files in os.walk(top):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(root, name)
                with open(path) as f:
                    lines = sum(1 for _ in f)
                if lines > max_lines:
                    too_long[os.path.relpath(path, REPO)] = lines
    return too_long


def test_no_library_file_over_the_limit():
    too_long = files_over(PACKAGE, MAX_LINES)
    assert not too_long, 'over %d lines (split by role): %s' % (
        MAX_LINES, ', '.join('%s %d' % kv for kv in sorted(too_long.items())))


def test_no_test_file_over_the_limit():
    too_long = files_over(TESTS, MAX_TEST_LINES)
    assert not too_long, 'over %d lines (split by topic): %s' % (
        MAX_TEST_LINES, ', '.join('%s %d' % kv for kv in sorted(too_long.items())))


@pytest.mark.subprocess
@pytest.mark.parametrize('script', ['scripts/detection/prepare_voc.py',
                                    'scripts/segmentation/prepare_ade20k.py',
                                    'scripts/classification/benchmark.py',
                                    'scripts/plot_runs.py'])
def test_tool_scripts_run_from_anywhere(script, tmp_path):
    """Scripts that import tools put the repository root on sys.path themselves."""
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    proc = subprocess.run([sys.executable, os.path.join(REPO, script), '--help'],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'usage' in proc.stdout
