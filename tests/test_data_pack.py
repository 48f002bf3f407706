"""Packing images into RecordIO (gluon_tricks.data.pack) and the script that does it for
ImageNet (scripts/classification/prepare_imagenet.py): the .lst/.rec/.idx written, labels,
the shuffle, and bad or truncated images refused or skipped by name."""
import os
import shutil
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import INPUT, write_color_tree, collect

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lst_rec_idx_written_with_right_counts_and_labels(color_tree, color_rec, tmp_path):
    root, files = color_tree
    res, classes = color_rec
    assert classes == ['ant', 'bee', 'cat']
    rows = gd.read_lst(res.lst_path)
    assert len(rows) == res.num_records == len(files) == 15
    assert [r[0] for r in rows] == list(range(15))
    assert sorted(r[2] for r in rows) == sorted(files)
    assert [r[2] for r in rows] != sorted(files)                    # shuffled
    with open(res.idx_path) as f:
        assert len([ln for ln in f if ln.strip()]) == 15
    reader = mx.recordio.MXIndexedRecordIO(res.idx_path, res.rec_path, 'r')
    for key, label, rel in rows:
        header, img = mx.recordio.unpack_img(reader.read_idx(key))
        assert header.label == label == classes.index(rel.split('/')[0])
        assert header.id == key
        assert tuple(img[0, 0, ::-1]) == files[rel][1]              # lossless PNG, BGR
    reader.close()
    # a tree with other classes packed next to it must use the same label order
    other = str(tmp_path / 'other')
    write_color_tree(other, classes=('bee',), per_class=1)
    prefix = os.path.join(os.path.dirname(res.rec_path), 'val')
    with pytest.raises(gd.LabelError, match='training classes'):
        gd.pack_class_folder(other, prefix, progress=False)
    val, _ = gd.pack_class_folder(other, prefix, classes=classes, progress=False)
    assert [r[1] for r in gd.read_lst(val.lst_path)] == [1]
    # deterministic shuffle
    items, _ = gd.list_class_folder(root)
    a = gd.write_lst(str(tmp_path / 'a.lst'), items, shuffle=True, seed=3)
    b = gd.write_lst(str(tmp_path / 'b.lst'), items, shuffle=True, seed=4)
    assert a == rows and a != b
    assert gd.is_verified(res.rec_path, res.idx_path)


def test_pack_fails_on_bad_image_or_skips_it(color_tree, tmp_path):
    root = str(tmp_path / 'tree')
    shutil.copytree(color_tree[0], root)
    with open(os.path.join(root, 'bee', 'broken.png'), 'wb') as f:
        f.write(b'this is not a png')
    items, _ = gd.list_class_folder(root)
    lst = str(tmp_path / 'out.lst')
    gd.write_lst(lst, items)
    with pytest.raises(gd.CorruptImageError, match='bee/broken.png'):
        gd.pack_records(lst, root, progress=False)
    assert not os.path.exists(str(tmp_path / 'out.rec'))
    res = gd.pack_records(lst, root, skip_bad=True, num_workers=2, resize=20, progress=False)
    assert res.num_records == 15 and [s[0] for s in res.skipped] == ['bee/broken.png']
    assert len(gd.read_lst(lst)) == 15
    reader = mx.recordio.MXIndexedRecordIO(res.idx_path, res.rec_path, 'r')
    _, img = mx.recordio.unpack_img(reader.read_idx(reader.keys[0]))
    reader.close()
    assert img.shape == (20, 24, 3)                                  # shorter side 40 -> 20


def test_truncated_jpeg_and_empty_class_folder_are_found(color_tree, tmp_path):
    root = str(tmp_path / 'tree')
    shutil.copytree(color_tree[0], root)
    img = np.random.RandomState(0).randint(0, 255, (64, 64, 3)).astype(np.uint8)
    ok, jpg = cv2.imencode('.jpg', img)
    jpg = jpg.tobytes()
    assert gd.image_problem(jpg) is None
    assert 'truncated JPEG' in gd.image_problem(jpg[:len(jpg) // 2])
    assert cv2.imdecode(np.frombuffer(jpg[:len(jpg) // 2], np.uint8), 1) is not None  # OpenCV
    with open(os.path.join(root, 'ant', 'cut.jpg'), 'wb') as f:                # accepts it
        f.write(jpg[:len(jpg) // 2])
    items, _ = gd.list_class_folder(root)
    gd.write_lst(str(tmp_path / 'p.lst'), items)
    with pytest.raises(gd.CorruptImageError, match=r'--skip-bad.*ant/cut\.jpg \(truncated JPEG'):
        gd.pack_records(str(tmp_path / 'p.lst'), root, progress=False)
    res = gd.pack_records(str(tmp_path / 'p.lst'), root, skip_bad=True, progress=False)
    assert [s[0] for s in res.skipped] == ['ant/cut.jpg'] and res.num_records == 15
    loader = gd.FolderLoader(root, batch_size=16, train=False, num_workers=0,
                             aug=gd.AugmentConfig(input_size=INPUT))
    with pytest.raises(gd.CorruptImageError, match=r'cut\.jpg.*truncated JPEG'):
        collect(loader)
    os.remove(os.path.join(root, 'ant', 'cut.jpg'))
    os.makedirs(os.path.join(root, 'zebra'))                  # an empty class folder
    with pytest.raises(gd.EmptyDatasetError, match=r"\['zebra'\].*no image"):
        gd.list_class_folder(root)
    with pytest.raises(gd.EmptyDatasetError, match=r"\['zebra'\].*no image"):
        gd.FolderLoader(root, num_workers=0)


def _run_prepare(*argv):
    script = os.path.join(REPO, 'scripts', 'classification', 'prepare_imagenet.py')
    return subprocess.run([sys.executable, script] + list(argv), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.subprocess
def test_prepare_imagenet_end_to_end(tmp_path):
    data = tmp_path / 'ilsvrc'
    files = write_color_tree(str(data / 'train'), classes=('n03', 'n01', 'n02'), per_class=3,
                              size=(30, 50))
    val = data / 'val'
    val.mkdir()
    truth = {}
    for i, syn in enumerate(['n02', 'n01', 'n03', 'n02']):
        name = 'ILSVRC2012_val_%08d.JPEG' % (i + 1)
        cv2.imwrite(str(val / name), np.full((30, 50, 3), 40 * i, np.uint8))
        truth[name] = syn
    (data / 'val_labels.txt').write_text(
        ''.join('%s %s\n' % (n, s) for n, s in sorted(truth.items(), reverse=True)))
    out = tmp_path / 'out'
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(out), '--val-labels',
                     str(data / 'val_labels.txt'), '--resize', '20', '-j', '2')
    assert r.returncode == 0, r.stderr
    classes = gd.read_class_names(str(out / 'classes.txt'))
    assert classes == ['n01', 'n02', 'n03']
    train_rows = gd.read_lst(str(out / 'train.lst'))
    assert len(train_rows) == len(files) == 9
    for _, label, rel in train_rows:
        assert classes[int(label)] == rel.split('/')[0]
    val_rows = gd.read_lst(str(out / 'val.lst'))
    assert [(rel, classes[int(label)]) for _, label, rel in val_rows] == sorted(truth.items())
    for split, n in (('train', 9), ('val', 4)):
        info = gd.record_info(str(out / ('%s.rec' % split)), progress=False)
        assert info.num_samples == n and gd.is_verified(info.rec_path, info.idx_path)
    reader = mx.recordio.MXIndexedRecordIO(str(out / 'val.idx'), str(out / 'val.rec'), 'r')
    header, img = mx.recordio.unpack_img(reader.read_idx(0))
    reader.close()
    assert img.shape[:2] == (20, 33) and classes[int(header.label)] == 'n02'   # resized
    # a flat validation folder without its labels: a clear failure
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'out2'))
    assert r.returncode != 0 and '--val-labels' in r.stderr
    # validation as class folders (missing a class): labeled with the training classes
    shutil.rmtree(str(val))
    write_color_tree(str(val), classes=('n03',), per_class=2)
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'out3'),
                     '--resize', '0', '--encoding', '.png', '--quality', '3')
    assert r.returncode == 0, r.stderr
    rows = gd.read_lst(str(tmp_path / 'out3' / 'val.lst'))
    assert [(label, rel) for _, label, rel in rows] == [(2, 'n03/img00.png'), (2, 'n03/img01.png')]


@pytest.mark.subprocess
def test_prepare_imagenet_png_quality_default_and_errors(tmp_path):
    data = tmp_path / 'd'
    write_color_tree(str(data / 'train'), classes=('a', 'b'), per_class=2)
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'o1'), '--no-val',
                     '--encoding', '.png', '--resize', '0')           # PNG level 3 by default
    assert r.returncode == 0, r.stderr
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'o2'), '--no-val',
                     '--encoding', '.png', '--quality', '95')
    assert r.returncode != 0 and '--quality 95' in r.stderr and 'Traceback' not in r.stderr
    with open(str(data / 'train' / 'a' / 'bad.png'), 'wb') as f:
        f.write(b'not an image')
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'o3'), '--no-val')
    assert r.returncode != 0 and 'a/bad.png' in r.stderr and '--skip-bad' in r.stderr
    assert 'Traceback' not in r.stderr
