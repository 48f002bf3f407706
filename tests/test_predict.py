"""predict.py on folders (recursive, image files only, sorted), with CSV/JSON results, from a
run directory and from its exports; the export files' permissions; and bad image or export
files named by predict.py and export.py without a traceback.

One tiny run (resnet18_v1b, 32 px, crop ratio 0.8) on the test digits; its validation class
folders are the images RecordIO validation was packed from (lossless PNG), so predict.py's
top-1 on them must be the top-1 training recorded for its best checkpoint.
"""
import csv
import json
import os
import shutil
import stat
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from helpers.scripts_runner import run_script  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')


def _script(name, *args, check=True, umask=None):
    return run_script(name, *args, check=check, umask=umask)


@pytest.fixture(scope='module')
def run_dir(rec_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('predict') / 'run'
    _script('train_imagenet.py', '--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec',
            '--input-size', 32, '--crop-ratio', 0.8, '--batch-size', 16, '-j', 0,
            '--num-epochs', 2, '--warmup-epochs', 1, '--save-dir', out, '--progress', 'log')
    return str(out)


@pytest.fixture(scope='module')
def exported(run_dir, tmp_path_factory):
    """The run exported in both formats under umask 027."""
    prefix = str(tmp_path_factory.mktemp('export') / 'r18')
    _script('export.py', '--params', run_dir, '--out', prefix, '--format', 'both', umask=0o027)
    return prefix


@pytest.fixture(scope='module')
def val_dir(rec_dir):
    return os.path.join(os.path.dirname(rec_dir), 'small', 'val')


def _images(root):
    found = []
    for where, _, files in os.walk(root):
        found += [os.path.join(where, f) for f in files if f.lower().endswith(
            ('.png', '.jpg', '.jpeg'))]
    return sorted(found)


def _read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def _read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.subprocess
def test_every_export_file_gets_the_mode_of_a_normal_file(exported):
    """0666 less the umask (027 here: 0640) for the .onnx as for the MXNet files; a temporary
    file of mkstemp would leave the .onnx at 0600."""
    paths = [exported + s for s in ('.onnx', '-symbol.json', '-0000.params', '-meta.json')]
    modes = {os.path.basename(p): stat.S_IMODE(os.stat(p).st_mode) for p in paths}
    assert set(modes.values()) == {0o666 & ~0o027}, {k: oct(v) for k, v in modes.items()}


@pytest.mark.subprocess
def test_a_folder_of_a_run_gives_csv_and_json_with_the_recorded_top1(run_dir, rec_dir,
                                                                     val_dir, tmp_path):
    csv_path, json_path = str(tmp_path / 'r.csv'), str(tmp_path / 'r.json')
    _script('predict.py', '--model-file', run_dir, val_dir, '--topk', 3, '--output-csv',
            csv_path, '--output-json', json_path, '-q')
    rows, records = _read_csv(csv_path), _read_json(json_path)
    files = _images(val_dir)
    assert len(files) == 50
    assert [r['filename'] for r in rows] == files == [r['filename'] for r in records]
    with open(os.path.join(rec_dir, 'classes.txt')) as f:
        classes = [line.strip() for line in f if line.strip()]
    for row, record in zip(rows, records):
        assert record['error'] is None and row['error'] == ''
        assert [int(row['index_%d' % r]) for r in (1, 2, 3)] == record['index']
        assert [row['label_%d' % r] for r in (1, 2, 3)] == record['label'] == \
            [classes[i] for i in record['index']]
        prob = record['prob']
        assert prob == sorted(prob, reverse=True) and 0 < sum(prob) <= 1 + 1e-9
        assert [float(row['prob_%d' % r]) for r in (1, 2, 3)] == pytest.approx(prob, rel=1e-5)
    truth = [classes.index(os.path.basename(os.path.dirname(f))) for f in files]
    top1 = np.mean([r['index'][0] == t for r, t in zip(records, truth)])
    with open(os.path.join(run_dir, 'checkpoint-best', 'state.json')) as f:
        recorded = json.load(f)['state']['best']
    assert top1 == pytest.approx(recorded, abs=1e-9)


@pytest.mark.subprocess
def test_exports_give_the_run_s_predictions_and_bad_files_are_listed(run_dir, exported, val_dir,
                                                                     tmp_path):
    """The MXNet export and the .onnx (batched) classify as the checkpoint does; in a folder
    with an undecodable image, an empty one, a non-UTF-8 file name and a text file, the text
    file is not an image (left out), every other file is a row, the bad ones with their
    reason, and the command ends with status 1 and no traceback."""
    folder = tmp_path / 'photos'
    shutil.copytree(val_dir, str(folder / 'digits'))
    one = _images(val_dir)[0]
    odd = os.path.join(os.fsencode(str(folder)), b'caf\xe9.png')     # Latin-1, not UTF-8
    shutil.copy(one, odd)
    (folder / 'broken.png').write_bytes(b'not a png')
    (folder / 'digits' / 'empty.jpg').write_bytes(b'')
    (folder / 'notes.txt').write_text('not an image')
    outputs = {}
    for name, source in (('run', run_dir), ('mxnet', exported), ('onnx', exported + '.onnx')):
        path = str(tmp_path / (name + '.json'))
        proc = _script('predict.py', '--model-file', source, str(folder), '--topk', 2,
                       '--output-json', path, '--output-csv', str(tmp_path / (name + '.csv')),
                       '--batch-size', 1 if name == 'run' else 4, check=False)
        assert proc.returncode == 1, proc.stderr[-2000:]
        assert 'Traceback' not in proc.stderr
        assert '2 of 53 image(s) could not be read' in proc.stderr, proc.stderr[-2000:]
        outputs[name] = _read_json(path)
    names = [r['filename'] for r in outputs['run']]
    odd_shown = os.path.join(str(folder), 'caf\\xe9.png')
    assert names == sorted(names) and len(names) == 53 and odd_shown in names
    assert not any(n.endswith('notes.txt') for n in names)
    errors = {os.path.basename(r['filename']): r['error'] for r in outputs['run'] if r['error']}
    assert sorted(errors) == ['broken.png', 'empty.jpg']
    assert 'empty file' in errors['empty.jpg'] and 'broken.png' in errors['broken.png']
    rows = _read_csv(str(tmp_path / 'run.csv'))
    assert [r['filename'] for r in rows] == names
    assert {os.path.basename(r['filename']) for r in rows if r['error']} == set(errors)
    good = {r['filename']: r for r in outputs['run'] if not r['error']}
    assert good[odd_shown]['index'] == good[os.path.join(
        str(folder), 'digits', os.path.relpath(one, val_dir))]['index']   # the same image
    for name in ('mxnet', 'onnx'):
        assert [r['filename'] for r in outputs[name]] == names
        for r in outputs[name]:
            if r['error']:
                continue
            assert r['index'] == good[r['filename']]['index'], (name, r['filename'])
            # float32 rounding: oneDNN's kernels differ with the batch size, onnxruntime's
            # from MXNet's (export.py accepts 1e-4 relative on the logits)
            assert r['prob'] == pytest.approx(good[r['filename']]['prob'], abs=1e-4), name


@pytest.mark.subprocess
def test_a_folder_without_images_is_named(exported, tmp_path):
    (tmp_path / 'nothing').mkdir()
    (tmp_path / 'nothing' / 'readme.txt').write_text('no images here')
    proc = _script('predict.py', '--prefix', exported, str(tmp_path / 'nothing'), check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert 'nothing: skipped: a folder without image files' in proc.stderr


@pytest.mark.subprocess
def test_export_and_predict_name_every_bad_file(tmp_path):
    """predict.py classifies every good image and names each bad one (exit 1); damaged export
    files are named without a traceback; export.py refuses class names of another size."""
    import cv2
    from gluon_tricks.export import export_model
    from gluon_tricks.model_zoo import get_model
    net = get_model('resnet18_v1b', classes=3)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(tmp_path / 'net.params'))
    prefix = str(tmp_path / 'm')
    export_model(net, prefix, input_size=32)
    good = str(tmp_path / 'good.png')
    cv2.imwrite(good, np.full((40, 40, 3), 90, np.uint8))
    (tmp_path / 'empty.png').write_bytes(b'')
    (tmp_path / 'text.jpg').write_text('not an image')
    (tmp_path / 'folder').mkdir()
    predict = os.path.join(REPO, 'scripts', 'classification', 'predict.py')
    bad = [str(tmp_path / n) for n in ('empty.png', 'text.jpg', 'folder', 'missing.png')]
    out = subprocess.run([sys.executable, predict, '--prefix', prefix, good] + bad,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 1 and out.stdout.startswith(good)     # the good one classified
    assert 'empty.png: skipped: cannot decode image %s: empty file' % bad[0] in out.stderr
    assert '4 of 5 image(s) could not be read' in out.stderr
    assert all(b in out.stderr for b in bad) and 'Traceback' not in out.stderr
    for suffix, damage in (('-symbol.json', b'{"nodes": ['), ('-meta.json', b'{'),
                           ('-0000.params', None)):
        path = prefix + suffix
        original = open(path, 'rb').read()
        with open(path, 'wb') as f:
            f.write(damage if damage is not None else original[:1000])
        out = subprocess.run([sys.executable, predict, '--prefix', prefix, good],
                             capture_output=True, text=True, timeout=300)
        with open(path, 'wb') as f:
            f.write(original)
        assert out.returncode == 2 and path in out.stderr and 'export the model again' in \
            out.stderr and 'Traceback' not in out.stderr, (suffix, out.stderr[-500:])
    (tmp_path / 'classes.txt').write_text('a\nb\n')
    out = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'classification',
                                                       'export.py'),
                          '--model', 'resnet18_v1b', '--params', str(tmp_path / 'net.params'),
                          '--out', str(tmp_path / 'e'), '--input-size', '32',
                          '--class-names', str(tmp_path / 'classes.txt')],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and 'lists 2 names but the model has 3 outputs' in out.stderr
    assert not os.path.exists(str(tmp_path / 'e-symbol.json'))
