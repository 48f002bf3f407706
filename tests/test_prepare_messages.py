"""prepare_imagenet.py on class folders with problems: a file name that is not UTF-8, an
unreadable image, an empty class. Each is named (no traceback); a failure leaves OUT_DIR as it
was (no partial classes.txt or train.lst, and no "nothing written" after writing);
``--skip-bad`` names every file it leaves out. And its ``--help`` states each default once.
"""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, 'scripts', 'classification', 'prepare_imagenet.py')
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO, COLUMNS='100')
LATIN1 = b'caf\xe9.png'          # 'café.png' in Latin-1: not valid UTF-8


def _prepare(data, out, *flags):
    return subprocess.run([sys.executable, SCRIPT, '--data-dir', str(data), '--out-dir', str(out),
                           '-j', '1', '--resize', '0', '--encoding', '.png'] + list(flags),
                          capture_output=True, text=True, timeout=300, env=ENV)


def _tree(root, classes=('a', 'b'), per_class=3, val=True):
    rng = np.random.RandomState(0)
    for split, n in (('train', per_class), ('val', 1)) if val else (('train', per_class),):
        for c in classes:
            os.makedirs(os.path.join(str(root), split, c))
            for i in range(n):
                cv2.imwrite(os.path.join(str(root), split, c, '%d.png' % i),
                            rng.randint(0, 255, (12, 12, 3)).astype(np.uint8))
    return str(root)


def _snapshot(out):
    """Every file under ``out`` (hidden ones included) with its bytes."""
    found = {}
    for where, _, files in os.walk(str(out)):
        for f in files:
            path = os.path.join(where, f)
            with open(path, 'rb') as fh:
                found[os.path.relpath(path, str(out))] = fh.read()
    return found


def _rows(lst):
    with open(lst) as f:
        return [line.rstrip('\n').split('\t')[2] for line in f if line.strip()]


def _no_traceback(proc):
    assert 'Traceback' not in proc.stderr and 'UnicodeEncodeError' not in proc.stderr, \
        proc.stderr[-2000:]


@pytest.mark.subprocess
def test_a_non_utf8_file_name_is_named_and_stops_before_anything_is_written(tmp_path):
    data = _tree(tmp_path / 'data')
    odd = os.path.join(os.fsencode(os.path.join(data, 'train', 'a')), LATIN1)
    with open(os.path.join(data, 'train', 'a', '0.png'), 'rb') as f, open(odd, 'wb') as g:
        g.write(f.read())
    out = tmp_path / 'out'
    proc = _prepare(data, out)
    assert proc.returncode != 0
    _no_traceback(proc)
    assert repr(os.path.join(os.fsencode(data), b'train', b'a', LATIN1)) in proc.stderr
    assert '--skip-bad' in proc.stderr and 'not valid UTF-8' in proc.stderr
    assert not out.exists(), os.listdir(str(out))

    proc = _prepare(data, out, '--skip-bad')
    assert proc.returncode == 0, proc.stderr[-2000:]
    _no_traceback(proc)
    assert "train: skipped %r" % os.path.join(os.fsencode(data), b'train', b'a', LATIN1) \
        in proc.stderr
    assert sorted(_rows(str(out / 'train.lst'))) == ['a/0.png', 'a/1.png', 'a/2.png', 'b/0.png',
                                                     'b/1.png', 'b/2.png']
    assert 'train: 6 images, 2 classes' in proc.stdout and '1 skipped' in proc.stdout


@pytest.mark.subprocess
def test_unreadable_images_fail_without_touching_an_earlier_preparation(tmp_path):
    """A bad validation image stops the run after the training split was packed (in the
    staging folder): OUT_DIR keeps the files of the earlier preparation, byte for byte."""
    data = _tree(tmp_path / 'data')
    out = tmp_path / 'out'
    assert _prepare(data, out).returncode == 0
    before = _snapshot(out)
    assert {'classes.txt', 'train.lst', 'train.rec', 'val.lst', 'val.rec'} <= set(before)
    cv2.imwrite(os.path.join(data, 'train', 'b', '9.png'), np.zeros((12, 12, 3), np.uint8))
    with open(os.path.join(data, 'val', 'a', 'broken.png'), 'wb') as f:
        f.write(b'not a png')
    os.symlink(os.path.join(data, 'missing.png'), os.path.join(data, 'val', 'b', 'gone.png'))
    proc = _prepare(data, out)
    assert proc.returncode != 0
    _no_traceback(proc)
    for name in (os.path.join(data, 'val', 'a', 'broken.png'),
                 os.path.join(data, 'val', 'b', 'gone.png')):
        assert name in proc.stderr, proc.stderr[-2000:]
    assert '2 val image(s)' in proc.stderr and 'nothing was written to %s' % out in proc.stderr
    assert 'train: 7 images' not in proc.stdout          # no success line for a split
    assert _snapshot(out) == before

    proc = _prepare(data, out, '--skip-bad')
    assert proc.returncode == 0, proc.stderr[-2000:]
    _no_traceback(proc)
    assert 'val: skipped %s' % os.path.join(data, 'val', 'a', 'broken.png') in proc.stderr
    assert 'val: skipped %s' % os.path.join(data, 'val', 'b', 'gone.png') in proc.stderr
    assert 'nothing was written' not in proc.stderr + proc.stdout
    assert 'val: 2 images' in proc.stdout and '(2 skipped, named above)' in proc.stdout
    assert len(_rows(str(out / 'train.lst'))) == 7
    assert sorted(_rows(str(out / 'val.lst'))) == ['a/0.png', 'b/0.png']
    assert not [f for f in os.listdir(str(out)) if f.startswith('.')]   # no staging left


@pytest.mark.subprocess
def test_an_empty_class_folder_is_named_and_nothing_is_written(tmp_path):
    data = _tree(tmp_path / 'data', val=False)
    os.makedirs(os.path.join(data, 'train', 'empty'))
    (tmp_path / 'data' / 'train' / 'empty' / 'notes.txt').write_text('no image here')
    out = tmp_path / 'out'
    proc = _prepare(data, out, '--no-val')
    assert proc.returncode != 0
    _no_traceback(proc)
    assert "['empty']" in proc.stderr and os.path.join(data, 'train') in proc.stderr
    assert not out.exists()


@pytest.mark.subprocess
def test_a_class_emptied_by_skip_bad_is_refused(tmp_path):
    """--skip-bad must not leave a class without a single training image."""
    data = _tree(tmp_path / 'data', per_class=1, val=False)
    with open(os.path.join(data, 'train', 'b', '0.png'), 'wb') as f:
        f.write(b'')
    out = tmp_path / 'out'
    proc = _prepare(data, out, '--no-val', '--skip-bad')
    assert proc.returncode != 0
    _no_traceback(proc)
    assert 'train: skipped %s' % os.path.join(data, 'train', 'b', '0.png') in proc.stderr
    assert 'class folder(s) b ' in proc.stderr and 'nothing was written' in proc.stderr
    assert not out.exists()


@pytest.mark.subprocess
def test_help_states_each_default_once():
    proc = subprocess.run([sys.executable, SCRIPT, '--help'], capture_output=True, text=True,
                          timeout=120, env=ENV)
    assert proc.returncode == 0
    options = proc.stdout.split('options:', 1)[1]
    entries, current = [], ''
    for line in options.splitlines():
        if line.startswith('  -') and current:
            entries.append(current)
            current = ''
        current += ' ' + line.strip()
    entries.append(current)
    assert len(entries) >= 12
    for entry in entries:
        assert entry.count('default') <= 1, entry
        assert '(default: None)' not in entry and '(default: False)' not in entry, entry
    assert any('(default: 480)' in e for e in entries)        # defaults are still shown
