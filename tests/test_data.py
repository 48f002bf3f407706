"""Tests of the data pipeline (gluon_tricks.data): small generated data only, no download."""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import data as gd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = np.array(gd.IMAGENET_MEAN, np.float32)
STD = np.array(gd.IMAGENET_STD, np.float32)
INPUT = 32           # training input size of these tests
DIGITS_SIZE = 40     # the demo's stored size for a 32 px input


# ----------------------------------------------------------------------------- helpers

def _color(k):
    """A distinct RGB color per image index (the R value identifies the image)."""
    return (10 + 15 * k, 200 - 10 * k, (37 * k) % 256)


def _identity(batch):
    """Recover the image index from normalized constant-color images (via the R channel)."""
    r = batch.asnumpy()[:, 0].mean(axis=(1, 2)) * STD[0] + MEAN[0]
    return np.round((r - 10) / 15).astype(int).tolist()


def _write_color_tree(root, classes=('cat', 'ant', 'bee'), per_class=5, size=(40, 48)):
    """Constant-color PNGs in class folders; returns {relative path: (index, rgb)}."""
    out, k = {}, 0
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for j in range(per_class):
            rgb = _color(k)
            img = np.empty(size + (3,), np.uint8)
            img[...] = rgb[::-1]                                   # OpenCV writes BGR
            rel = '%s/img%02d.png' % (c, j)
            assert cv2.imwrite(os.path.join(root, rel), img)
            out[rel] = (k, rgb)
            k += 1
    return out


def _corrupt_copy(src_rec, dst_rec, bad_key):
    """Copy a RecordIO file, replacing one record's image bytes by garbage (header kept)."""
    src = mx.recordio.MXIndexedRecordIO(os.path.splitext(src_rec)[0] + '.idx', src_rec, 'r')
    dst = mx.recordio.MXIndexedRecordIO(os.path.splitext(dst_rec)[0] + '.idx', dst_rec, 'w')
    for key in src.keys:
        raw = src.read_idx(key)
        if key == bad_key:
            header, _ = mx.recordio.unpack(raw)
            raw = mx.recordio.pack(header, b'not an image' * 10)
        dst.write_idx(key, raw)
    src.close()
    dst.close()


def _no_augment():
    """Every random augmentation off: the crop is the largest centered square, resized."""
    return gd.AugmentConfig(input_size=INPUT, random_area=(1.0, 1.0), aspect_ratio=(1.0, 1.0),
                            mirror=False, brightness=0.0, contrast=0.0, saturation=0.0,
                            hue=0.0, pca_noise=0.0)


def _collect(loader, epoch=None):
    it = loader.iter_epoch(epoch) if epoch is not None else iter(loader)
    datas, labels = [], []
    for d, l in it:
        datas.append(d.asnumpy().copy())
        labels.append(l.asnumpy().copy())
    return datas, labels


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope='module')
def color_tree(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('color_tree'))
    files = _write_color_tree(root)
    return root, files


@pytest.fixture(scope='module')
def color_rec(color_tree, tmp_path_factory):
    root, files = color_tree
    out = str(tmp_path_factory.mktemp('color_rec'))
    res, classes = gd.pack_class_folder(root, os.path.join(out, 'train'), shuffle=True, seed=3,
                                        encoding='.png', quality=3, progress=False)
    return res, classes


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('digits'))
    return gd.make_digits_dataset(out, image_size=DIGITS_SIZE)


@pytest.fixture(scope='module')
def digits_rec(digits, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('digits_rec'))
    train, classes = gd.pack_class_folder(digits.train_dir, os.path.join(out, 'train'),
                                          encoding='.png', quality=3, num_workers=2,
                                          progress=False)
    val, _ = gd.pack_class_folder(digits.val_dir, os.path.join(out, 'val'), classes=classes,
                                  shuffle=False, encoding='.png', quality=3, progress=False)
    return train, val


# ----------------------------------------------------------------------------- options

def test_paper_defaults_and_flags():
    cfg = gd.AugmentConfig()
    assert (cfg.input_size, cfg.crop_ratio, cfg.val_resize) == (224, 0.875, 256)
    assert cfg.random_area == (0.08, 1.0) and cfg.aspect_ratio == (3 / 4, 4 / 3)
    assert cfg.mirror and (cfg.brightness, cfg.contrast, cfg.saturation) == (0.4, 0.4, 0.4)
    assert cfg.hue == 0 and cfg.pca_noise == 0.1
    assert cfg.mean == (123.68, 116.779, 103.939) and cfg.std == (58.393, 57.12, 57.375)
    assert gd.AugmentConfig(input_size=299).val_resize == 342          # Inception-V3

    parser = argparse.ArgumentParser()
    gd.DataConfig.add_args(parser)
    assert gd.DataConfig.from_args(parser.parse_args([])) == gd.DataConfig()
    assert gd.DataConfig().augment() == cfg
    args = parser.parse_args(['--use-rec', '-j', '3', '--input-size', '299', '--no-mirror',
                              '--aspect-ratio-min', '2/3', '--jitter', '0.3', '--mean', '1',
                              '2', '3', '--num-classes', '7', '--synthetic-data'])
    data = gd.DataConfig.from_args(args)
    c = data.augment()
    assert data.use_rec and data.num_workers == 3 and data.num_classes == 7
    assert data.synthetic_data and c.input_size == 299 and not c.mirror
    assert c.aspect_ratio[0] == pytest.approx(2 / 3)
    assert (c.brightness, c.contrast, c.saturation) == (0.3, 0.3, 0.3) and c.mean == (1, 2, 3)
    helps = {a.dest: a.help for a in parser._actions}
    for dest, value in (('random_area_min', '0.08'), ('aspect_ratio_max', '4/3'),
                        ('jitter', '0.4'), ('pca_noise', '0.1'), ('crop_ratio', '0.875'),
                        ('std', '58.393')):
        assert value in helps[dest], dest
    with pytest.raises(ValueError):
        gd.AugmentConfig(random_area=(0.5, 0.1))
    # GluonCV's three spellings of the worker count, one dest
    for flag in ('-j', '--num-data-workers', '--num-workers', '--workers'):
        assert gd.DataConfig.from_args(parser.parse_args([flag, '5'])).num_workers == 5


def test_data_config_json_and_paths(tmp_path):
    import json
    cfg = gd.DataConfig(data_dir=str(tmp_path), use_rec=True, rec_val='~/v.rec', mean=[1, 2, 3])
    again = gd.DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.mean == (1, 2, 3)
    assert cfg.rec_paths('train') == (str(tmp_path / 'train.rec'), str(tmp_path / 'train.idx'))
    home = os.path.expanduser('~')
    assert cfg.rec_paths('val') == (os.path.join(home, 'v.rec'), os.path.join(home, 'v.idx'))
    assert cfg.folder('val') == str(tmp_path / 'val')
    with pytest.raises(ValueError, match='unknown data option.*batch_size'):
        gd.DataConfig.from_dict(dict(cfg.to_dict(), batch_size=3))


def _params(**changes):
    base = dict(box=(0, 0, 6, 6), fallback=False, flip=False, order=(),
                factors={'brightness': 1.0, 'contrast': 1.0, 'saturation': 1.0, 'hue': 0.0},
                alpha=(0.0, 0.0, 0.0))
    base.update(changes)
    return gd.AugParams(**base)


def test_color_operations_match_their_equations():
    """Each step of section 2.1 against hand-computed values on 6x6 images."""
    cfg = gd.AugmentConfig(input_size=6, mean=(0, 0, 0), std=(1, 1, 1))
    t = gd.TrainTransform(cfg)
    gray = np.full((6, 6, 3), 100, np.uint8)
    for name, f in (('saturation', 1.3), ('hue', 0.3), ('contrast', 0.7)):
        out = t.apply(gray, _params(order=(name,), factors=dict(_params().factors, **{name: f})))
        assert np.allclose(out, 100.0, atol=1e-3), name      # gray stays gray
    out = t.apply(gray, _params(order=('brightness',),
                                factors=dict(_params().factors, brightness=1.37)))
    assert np.allclose(out, 137.0)                             # x * b
    out = t.apply(gray, _params(order=('brightness',),
                                factors=dict(_params().factors, brightness=3.0)))
    assert np.allclose(out, 255.0)                             # clipped to [0, 255]
    two = np.zeros((6, 6, 3), np.uint8)
    two[:3], two[3:] = 60, 180                                 # gray mean 120
    out = t.apply(two, _params(order=('contrast',), factors=dict(_params().factors,
                                                                 contrast=0.5)))
    assert np.allclose(out[:, :3], 60 * 0.5 + 120 * 0.5) and np.allclose(out[:, 3:], 150)
    red = np.zeros((6, 6, 3), np.uint8)
    red[..., 0] = 200                                          # luma 0.299 * 200 = 59.8
    out = t.apply(red, _params(order=('saturation',), factors=dict(_params().factors,
                                                                   saturation=0.5)))
    assert np.allclose(out[:, 0, 0], [129.9, 29.9, 29.9], atol=1e-3)
    out = t.apply(gray, _params(alpha=(0.1, -0.2, 0.05)))     # PCA: eigvec @ (alpha * eigval)
    rgb = np.asarray(gd.transforms.PCA_EIGVEC).dot(np.array([0.1, -0.2, 0.05]) *
                                                np.asarray(gd.transforms.PCA_EIGVAL))
    assert np.allclose(out[:, 0, 0], 100 + rgb, atol=1e-4)
    ramp = np.tile(np.arange(6, dtype=np.uint8)[None, :, None], (6, 1, 3))
    out = t.apply(ramp, _params(flip=True))                    # horizontal flip
    assert out[0, 0].tolist() == [5, 4, 3, 2, 1, 0]
    norm = gd.TrainTransform(gd.AugmentConfig(input_size=6)).apply(gray, _params())
    assert np.allclose(norm, ((100.0 - MEAN) / STD)[:, None, None], atol=1e-5)   # step 6


# ----------------------------------------------------------------------------- im2rec

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
    _write_color_tree(other, classes=('bee',), per_class=1)
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


def test_read_label_file_formats(tmp_path):
    classes = ['n01', 'n02', 'n03']
    files = ['v1.JPEG', 'v2.JPEG', 'v3.JPEG']

    def read(text):
        p = tmp_path / 'labels.txt'
        p.write_text(text)
        return gd.read_label_file(str(p), files, classes)

    assert read('v1.JPEG n02\nv2.JPEG n01\nv3.JPEG n03\n') == [1, 0, 2]
    assert read('v3 2\nv1 0\nv2 1\n') == [0, 1, 2]                         # no ext, ints
    assert read('ImageId,PredictionString\nv1,n03 1 2 3 4\nv2,n01 5\nv3,n02 0\n') == [2, 0, 1]
    assert read('n02\nn02\nn01\n') == [1, 1, 0]                           # sorted file order
    with pytest.raises(gd.LabelError, match='devkit'):
        read('1\n2\n3\n')
    with pytest.raises(gd.LabelError, match="unknown class 'n09'"):
        read('v1 n09\nv2 n01\nv3 n01\n')
    with pytest.raises(gd.LabelError, match='out of range'):
        read('v1 3\nv2 0\nv3 0\n')
    with pytest.raises(gd.LabelError, match='no label.*v3.JPEG'):
        read('v1 n01\nv2 n01\n')


# ----------------------------------------------------------------------------- RecordIO

def test_record_train_normalizes_constant_colors_exactly(color_rec, color_tree):
    res, classes = color_rec
    _, files = color_tree
    cfg = _no_augment()
    loader = gd.RecordLoader(res.rec_path, batch_size=4, aug=cfg, num_workers=2,
                             progress=False)
    assert loader.num_samples == 15 and loader.num_classes == 3 and len(loader) == 3
    assert loader.classes == classes                                 # from classes.txt
    by_index = {k: (rgb, classes.index(rel.split('/')[0])) for rel, (k, rgb) in files.items()}
    n = 0
    for data, label in loader:
        assert data.shape == (4, 3, INPUT, INPUT) and data.dtype == np.float32
        assert label.shape == (4,) and label.dtype == np.float32
        for img, lab, k in zip(data.asnumpy(), label.asnumpy(), _identity(data)):
            rgb, cls = by_index[k]
            expected = (np.array(rgb, np.float32) - MEAN) / STD      # section 2.1, step 6
            assert np.allclose(img, expected[:, None, None], atol=1e-5)
            assert lab == cls
        n += 1
    assert n == 3                                                    # 15 // 4, discarded


def test_record_val_covers_every_sample_once_and_matches_folder_val(digits, digits_rec):
    _, val = digits_rec
    cfg = gd.AugmentConfig(input_size=INPUT)
    rows = gd.read_lst(val.lst_path)
    rec = gd.RecordLoader(val.rec_path, batch_size=64, train=False, aug=cfg, num_workers=2,
                          num_classes=10, progress=False)
    assert rec.num_samples == len(rows) == digits.num_val == 360 and len(rec) == 6
    d1, l1 = _collect(rec)
    d2, _ = _collect(rec)
    assert [len(x) for x in l1] == [64] * 5 + [40]                 # pad cut off
    assert np.concatenate(l1).tolist() == [r[1] for r in rows]     # each sample once, in order
    assert all(np.array_equal(a, b) for a, b in zip(d1, d2))       # deterministic
    # the hand-written reference: shorter side to ceil(32 / 0.875) = 37, center crop 32
    img = cv2.imread(os.path.join(digits.val_dir, rows[0][2]))[:, :, ::-1].astype(np.float32)
    ref = cv2.resize(img, (37, 37), interpolation=cv2.INTER_LINEAR)[2:34, 2:34]
    ref = ((ref - MEAN) / STD).transpose(2, 0, 1)
    assert np.abs(d1[0][0] - ref).max() < 0.05                     # within ~2 gray levels
    # the class-folder path implements the same validation pipeline
    folder = gd.FolderLoader(digits.val_dir, batch_size=64, train=False, aug=cfg,
                             num_workers=0)
    f1, fl = _collect(folder)
    assert [len(x) for x in fl] == [64] * 5 + [40]
    assert np.array_equal(np.concatenate(fl), np.concatenate(l1))
    assert np.abs(np.concatenate(f1) - np.concatenate(d1)).max() < 0.05


def test_record_train_epochs_are_reproducible(digits_rec):
    train, _ = digits_rec
    cfg = gd.AugmentConfig(input_size=INPUT)
    make = lambda seed: gd.RecordLoader(train.rec_path, batch_size=64, aug=cfg, seed=seed,  # noqa
                                        num_workers=2, progress=False)
    a, b = make(7), make(7)
    assert len(a) == 1437 // 64
    da0, la0 = _collect(a)                                        # epoch 0, then advances
    da1, la1 = _collect(a)                                        # epoch 1
    assert a.epoch == 2 and len(da0) == len(a)
    b.set_epoch(1)
    db1, lb1 = _collect(b)                                        # a fresh loader, epoch 1
    assert all(np.array_equal(x, y) for x, y in zip(da1, db1))
    assert all(np.array_equal(x, y) for x, y in zip(la1, lb1))
    assert not np.array_equal(np.concatenate(la0), np.concatenate(la1))   # new order
    dc0, lc0 = _collect(make(8), epoch=0)
    assert not np.array_equal(np.concatenate(la0), np.concatenate(lc0))   # other seed
    # the same in a fresh process (what a resumed run is)
    code = ('import hashlib, sys; from gluon_tricks import data as gd; '
            'l = gd.RecordLoader(sys.argv[1], batch_size=64, seed=7, num_workers=1, '
            'aug=gd.AugmentConfig(input_size=%d), progress=False); h = hashlib.md5(); '
            '[h.update(d.asnumpy().tobytes()) for d, _ in l.iter_epoch(1)]; '
            'print(h.hexdigest())' % INPUT)
    out = subprocess.run([sys.executable, '-c', code, train.rec_path], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == hashlib.md5(b''.join(x.tobytes() for x in da1)).hexdigest()
    x = np.concatenate(da0)
    assert x.shape == (len(a) * 64, 3, INPUT, INPUT) and np.isfinite(x).all()
    assert -2.6 < x.min() < -1.5 and 1.5 < x.max() < 3.5          # normalized 0-255 range


def test_record_sharding_is_disjoint(color_rec):
    res, _ = color_rec
    cfg = _no_augment()
    seen, train_ids = [], []
    for part in range(2):
        val = gd.RecordLoader(res.rec_path, batch_size=3, train=False, aug=cfg, num_parts=2,
                              part_index=part, num_workers=1, progress=False)
        ids = sum((_identity(d) for d, _ in val), [])
        assert len(ids) == val.num_samples == [8, 7][part]      # samples part, part + 2, ...
        tr = gd.RecordLoader(res.rec_path, batch_size=3, aug=cfg, num_parts=2,
                             part_index=part, num_workers=1, progress=False)
        assert tr.num_samples == 7 and len(tr) == 2             # 15 // 2, the same on both
        tr_ids = sum((_identity(d) for d, _ in tr), [])
        assert len(tr_ids) == len(set(tr_ids)) == 6
        train_ids.append(set(tr_ids))
        seen.append(ids)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(15))
    assert not train_ids[0] & train_ids[1]


def test_num_classes_from_lst_or_scan_and_range_errors(color_rec, tmp_path):
    res, _ = color_rec
    info = gd.record_info(res.rec_path, progress=False)
    assert (info.num_samples, info.num_classes, info.label_source) == (15, 3, 'lst')
    with pytest.raises(gd.LabelError, match=r'train\.lst.*num_classes=2.*--num-classes'):
        gd.record_info(res.rec_path, num_classes=2)
    # without the .lst: a scan of the record headers
    rec = str(tmp_path / 'nolst.rec')
    shutil.copy(res.rec_path, rec)
    shutil.copy(res.idx_path, str(tmp_path / 'nolst.idx'))
    info = gd.record_info(rec, progress=False)
    assert (info.num_classes, info.label_source) == (3, 'scan')
    assert sorted(info.labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    # a wrong --num-classes with nothing to check it against up front: caught per batch
    loader = gd.RecordLoader(rec, batch_size=5, train=False, num_classes=2, num_workers=1,
                             aug=gd.AugmentConfig(input_size=INPUT), progress=False)
    with pytest.raises(gd.LabelError, match=r'nolst\.rec.*out of range for num_classes=2'):
        _collect(loader)
    # a .lst that does not belong to the .rec
    with open(str(tmp_path / 'nolst.lst'), 'w') as f:
        f.write('0\t1.000000\ta.png\n')
    with pytest.raises(gd.LabelError, match='does not belong'):
        gd.record_info(rec)


def test_missing_rec_or_idx_gives_clear_errors(color_rec, tmp_path):
    res, _ = color_rec
    with pytest.raises(FileNotFoundError, match=r'nothere\.rec.*prepare_imagenet\.py'):
        gd.RecordLoader(str(tmp_path / 'nothere.rec'))
    rec = str(tmp_path / 'noidx.rec')
    shutil.copy(res.rec_path, rec)
    with pytest.raises(FileNotFoundError, match=r'noidx\.idx.*prepare_imagenet\.py.*rebuild_index'):
        gd.RecordLoader(rec, progress=False)
    assert gd.rebuild_index(rec, progress=False) == 15
    loader = gd.RecordLoader(rec, batch_size=5, train=False, num_classes=3, num_workers=1,
                             aug=gd.AugmentConfig(input_size=INPUT), progress=False)
    assert sum(len(l) for _, l in loader) == 15


def test_corrupt_record_is_reported(color_rec, tmp_path):
    res, _ = color_rec
    rec = str(tmp_path / 'bad.rec')
    _corrupt_copy(res.rec_path, rec, bad_key=6)
    report = gd.verify_record_file(rec, progress=False)
    assert report.num_records == 15 and not report.ok
    assert [k for k, _ in report.bad] == [6] and 'does not decode' in report.bad[0][1]
    assert not gd.is_verified(rec, str(tmp_path / 'bad.idx'))
    cfg = gd.AugmentConfig(input_size=INPUT)
    # validation: found when the loader is built, before any training
    with pytest.raises(gd.CorruptRecordError, match=r'bad\.rec.*6: image does not decode'):
        gd.RecordLoader(rec, batch_size=4, train=False, aug=cfg, num_classes=3,
                        progress=False)
    # training: when the batch is reached, naming the file, the record and what to do
    train = gd.RecordLoader(rec, batch_size=5, aug=cfg, num_classes=3, num_workers=2,
                            progress=False)                       # 3 batches = all 15
    with pytest.raises(gd.CorruptRecordError,
                       match=r'bad\.rec: record 6 .*does not decode.*Re-pack'):
        _collect(train)
    assert gd.verify_record_file(res.rec_path, progress=False).ok


def test_images_of_exactly_the_input_size_are_cropped_correctly(tmp_path):
    """ImageRecordIter corrupted these (it resized into the buffer it read from)."""
    root = str(tmp_path / 'tree')
    files = _write_color_tree(root, classes=('a', 'b'), per_class=2, size=(INPUT, INPUT))
    res, _ = gd.pack_class_folder(root, str(tmp_path / 'same'), progress=False,
                                  encoding='.png', quality=3)
    loader = gd.RecordLoader(res.rec_path, batch_size=4, progress=False,
                             aug=gd.AugmentConfig(input_size=INPUT, brightness=0, contrast=0,
                                                  saturation=0, pca_noise=0))
    data, _ = next(iter(loader))
    colors = {rgb for _, rgb in files.values()}
    for img, k in zip(data.asnumpy(), _identity(data)):
        expected = (np.array(_color(k), np.float32) - MEAN) / STD
        assert _color(k) in colors and np.allclose(img, expected[:, None, None], atol=1e-4)


def test_damaged_record_files_give_errors_not_crashes(color_rec, tmp_path):
    res, _ = color_rec
    size = os.path.getsize(res.rec_path)
    rec = str(tmp_path / 'cut.rec')
    with open(res.rec_path, 'rb') as f, open(rec, 'wb') as g:
        g.write(f.read((size // 2) // 4 * 4))                   # truncated, 4-byte aligned
    shutil.copy(res.idx_path, str(tmp_path / 'cut.idx'))
    for train in (True, False):      # found when the loader is built, before any work
        with pytest.raises(gd.CorruptRecordError, match=r'cut\.rec: record \d+ .*truncated'):
            gd.RecordLoader(rec, batch_size=5, train=train, num_classes=3, verify=False,
                            aug=gd.AugmentConfig(input_size=INPUT), num_workers=0)
    records = gd.RecordFile(rec, str(tmp_path / 'cut.idx'))          # and on every read
    with pytest.raises(gd.CorruptRecordError, match=r'cut\.rec: record 14 .*truncated'):
        records.read(14)
    shifted = str(tmp_path / 'shift.idx')
    keys, offsets = gd.read_index(res.idx_path)
    with open(shifted, 'w') as f:
        f.writelines('%d\t%d\n' % (k, o + 4) for k, o in zip(keys, offsets))
    records = gd.RecordFile(res.rec_path, shifted)
    with pytest.raises(gd.CorruptRecordError, match=r'no record starts at byte \d+.*rebuild'):
        records.read(3)
    with pytest.raises(gd.CorruptRecordError, match=r'shift\.idx|no record starts'):
        gd.RecordLoader(res.rec_path, shifted, batch_size=5, num_classes=3, num_workers=0)


def test_one_pixel_image_trains_and_verifies_alike(tmp_path):
    """Training and verify_record_file agree on a 1x1 image: both accept it."""
    root = str(tmp_path / 'tree')
    _write_color_tree(root, classes=('a', 'b'), per_class=2, size=(1, 1))
    res, _ = gd.pack_class_folder(root, str(tmp_path / 'one'), progress=False,
                                  encoding='.png')
    assert gd.verify_record_file(res.rec_path, progress=False).ok
    cfg = gd.AugmentConfig(input_size=INPUT)
    for train in (True, False):
        data, _ = next(iter(gd.RecordLoader(res.rec_path, batch_size=4, train=train, aug=cfg,
                                            num_workers=0, progress=False, verify=True)))
        assert data.shape == (4, 3, INPUT, INPUT) and np.isfinite(data.asnumpy()).all()


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
        _collect(loader)
    os.remove(os.path.join(root, 'ant', 'cut.jpg'))
    os.makedirs(os.path.join(root, 'zebra'))                  # an empty class folder
    with pytest.raises(gd.EmptyDatasetError, match=r"\['zebra'\].*no image"):
        gd.list_class_folder(root)
    with pytest.raises(gd.EmptyDatasetError, match=r"\['zebra'\].*no image"):
        gd.FolderLoader(root, num_workers=0)


def test_labels_beyond_the_class_list_are_refused(color_rec, tmp_path):
    res, _ = color_rec
    for ext in ('.rec', '.idx', '.lst'):
        shutil.copy(os.path.splitext(res.rec_path)[0] + ext, str(tmp_path / ('t' + ext)))
    rows = gd.read_lst(str(tmp_path / 't.lst'))
    rows[4] = (rows[4][0], 57, rows[4][2])                     # label 57 in a 3-class set
    with open(str(tmp_path / 't.lst'), 'w') as f:
        f.writelines('%d\t%f\t%s\n' % r for r in rows)
    gd.write_class_names(str(tmp_path / 'classes.txt'), ['ant', 'bee', 'cat'])
    with pytest.raises(gd.LabelError, match=r't\.lst: record 4 has label 57.*classes\.txt '
                                            r'lists 3 classes'):
        gd.record_info(str(tmp_path / 't.rec'))
    os.remove(str(tmp_path / 't.lst'))
    with pytest.raises(gd.LabelError, match=r'--num-classes 58.*lists 3 classes'):
        gd.record_info(str(tmp_path / 't.rec'), num_classes=58)


def test_record_reader_joins_continuation_parts(tmp_path):
    """A payload holding the RecordIO magic word is split by the writer; reading re-joins it."""
    import mxnet as mx
    rec, idx = str(tmp_path / 'm.rec'), str(tmp_path / 'm.idx')
    magic = np.uint32(gd.recfile.RECORD_MAGIC).tobytes()
    payload = b'abcd' * 3 + magic + b'efgh' + magic + b'ij'
    w = mx.recordio.MXIndexedRecordIO(idx, rec, 'w')
    w.write_idx(0, mx.recordio.pack(mx.recordio.IRHeader(0, 4.0, 0, 0), b'x' * 8))
    w.write_idx(1, mx.recordio.pack(mx.recordio.IRHeader(0, 2.0, 1, 0), payload))
    w.write_idx(2, mx.recordio.pack(mx.recordio.IRHeader(2, [1.0, 5.0], 2, 0), b'z'))
    w.close()
    r = mx.recordio.MXIndexedRecordIO(idx, rec, 'r')
    records = gd.RecordFile(rec, idx)
    for i in range(3):
        assert records.raw(i) == r.read_idx(i)
    r.close()
    assert records.read(1) == (2.0, payload) and records.read(0) == (4.0, b'x' * 8)
    with pytest.raises(gd.LabelError, match='record 2 has 2 labels'):
        records.read(2)


# ----------------------------------------------------------------------------- folders

def test_folder_normalization_labels_and_sharding(color_tree):
    root, files = color_tree
    cfg = _no_augment()
    classes = ['ant', 'bee', 'cat']
    by_index = {k: (rgb, classes.index(rel.split('/')[0])) for rel, (k, rgb) in files.items()}
    val_ids, train_ids = [], []
    for part in range(2):
        val = gd.FolderLoader(root, batch_size=4, train=False, aug=cfg, num_parts=2,
                              part_index=part, num_workers=0)
        assert val.classes == classes and val.num_classes == 3
        for data, label in val:
            assert data.shape[1:] == (3, INPUT, INPUT) and data.dtype == np.float32
            assert label.dtype == np.float32
            for img, lab, k in zip(data.asnumpy(), label.asnumpy(), _identity(data)):
                expected = (np.array(by_index[k][0], np.float32) - MEAN) / STD
                assert np.allclose(img, expected[:, None, None], atol=1e-4)
                assert lab == by_index[k][1]
                val_ids.append(k)
        tr = gd.FolderLoader(root, batch_size=2, aug=cfg, num_parts=2, part_index=part,
                             num_workers=0, seed=1)
        assert tr.num_samples == 7 and len(tr) == 3
        ids0 = sum((_identity(d) for d, _ in tr.iter_epoch(0)), [])
        ids1 = sum((_identity(d) for d, _ in tr.iter_epoch(1)), [])
        assert len(ids0) == len(set(ids0)) == 6 and ids0 != ids1
        train_ids.append(set(ids0))
    assert sorted(val_ids) == list(range(15))                      # every sample once
    assert not train_ids[0] & train_ids[1]                         # disjoint parts


def test_folder_train_augmentation_reproducible_across_workers(digits):
    cfg = gd.AugmentConfig(input_size=INPUT)
    a = gd.FolderLoader(digits.train_dir, batch_size=32, aug=cfg, seed=5, num_workers=0)
    b = gd.FolderLoader(digits.train_dir, batch_size=32, aug=cfg, seed=5, num_workers=2)
    for epoch in (0, 3):
        ia, ib = a.iter_epoch(epoch), b.iter_epoch(epoch)
        for _ in range(2):
            (da, la), (db, lb) = next(ia), next(ib)
            assert np.array_equal(da.asnumpy(), db.asnumpy())
            assert np.array_equal(la.asnumpy(), lb.asnumpy())
    d0, _ = next(a.iter_epoch(0))
    d1, _ = next(a.iter_epoch(1))
    assert not np.array_equal(d0.asnumpy(), d1.asnumpy())
    assert len(a) == 1437 // 32 and a.num_samples == 1437


def test_folder_errors_are_clear(color_tree, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        gd.FolderLoader(str(tmp_path / 'nowhere'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(gd.EmptyDatasetError, match='no class sub-directories'):
        gd.FolderLoader(str(empty))
    (empty / 'cls').mkdir()
    (empty / 'cls' / 'notes.txt').write_text('x')
    with pytest.raises(gd.EmptyDatasetError, match='no images'):
        gd.FolderLoader(str(empty))
    root = str(tmp_path / 'tree')
    shutil.copytree(color_tree[0], root)
    with open(os.path.join(root, 'ant', 'zz_broken.jpg'), 'wb') as f:
        f.write(b'garbage' * 10)
    loader = gd.FolderLoader(root, batch_size=4, train=False,
                             aug=gd.AugmentConfig(input_size=INPUT), num_workers=0)
    with pytest.raises(gd.CorruptImageError, match='zz_broken.jpg'):
        _collect(loader)
    # a validation folder with fewer classes keeps the training labels
    val = tmp_path / 'val'
    _write_color_tree(str(val), classes=('cat',), per_class=2)
    loader = gd.FolderLoader(str(val), batch_size=2, train=False, classes=['ant', 'bee', 'cat'],
                             aug=gd.AugmentConfig(input_size=INPUT), num_workers=0)
    assert loader.num_classes == 3 and _collect(loader)[1][0].tolist() == [2, 2]
    with pytest.raises(gd.LabelError, match='not among'):
        gd.FolderLoader(str(val), classes=['ant', 'bee'])


# ----------------------------------------------------------------------------- others

def test_synthetic_and_build_loaders(digits, digits_rec):
    syn = gd.SyntheticLoader(batch_size=8, num_samples=20, input_size=INPUT, num_classes=5,
                             train=False)
    sizes = [d.shape for d, _ in syn]
    assert len(syn) == 3 and sizes == [(8, 3, INPUT, INPUT)] * 2 + [(4, 3, INPUT, INPUT)]
    assert max(l.asnumpy().max() for _, l in syn) < 5

    rec_dir = os.path.dirname(digits_rec[0].rec_path)
    for opts, kind in ((dict(use_rec=True, data_dir=rec_dir), gd.RecordLoader),
                       (dict(data_dir=digits.root, num_workers=0), gd.FolderLoader),
                       (dict(synthetic_data=True), gd.SyntheticLoader)):
        cfg = gd.DataConfig(input_size=INPUT, **opts)
        train, val = gd.build_loaders(cfg, batch_size=16, progress=False)
        assert isinstance(train, kind) and isinstance(val, kind) and not val.train
        if kind is not gd.SyntheticLoader:
            assert (train.num_samples, val.num_samples) == (1437, 360)
            assert train.num_classes == val.num_classes == 10
        data, label = next(iter(train))
        assert data.shape == (16, 3, INPUT, INPUT) and label.shape == (16,)


def test_digits_dataset_is_deterministic_and_stratified(digits, tmp_path):
    assert (digits.num_train, digits.num_val) == (1437, 360)
    assert digits.classes == [str(i) for i in range(10)]
    counts = [len(os.listdir(os.path.join(digits.val_dir, c))) for c in digits.classes]
    assert sum(counts) == 360 and max(counts) - min(counts) <= 2    # stratified
    some = os.path.join(digits.train_dir, '3', sorted(os.listdir(
        os.path.join(digits.train_dir, '3')))[0])
    img = cv2.imread(some, cv2.IMREAD_UNCHANGED)
    assert img.shape == (DIGITS_SIZE, DIGITS_SIZE, 3) and img.max() > 200
    again = gd.make_digits_dataset(str(tmp_path), image_size=DIGITS_SIZE)
    for split in ('train', 'val'):
        for c in digits.classes:
            assert sorted(os.listdir(os.path.join(digits.root, split, c))) == \
                sorted(os.listdir(os.path.join(again.root, split, c)))
    with open(some, 'rb') as f1, open(some.replace(digits.root, again.root), 'rb') as f2:
        assert f1.read() == f2.read()
    with pytest.raises(FileExistsError):
        gd.make_digits_dataset(str(tmp_path))
    other = gd.make_digits_dataset(str(tmp_path), image_size=DIGITS_SIZE, seed=1, overwrite=True)
    assert sorted(os.listdir(os.path.join(other.val_dir, '3'))) != \
        sorted(os.listdir(os.path.join(digits.val_dir, '3')))


def _run_prepare(*argv):
    script = os.path.join(REPO, 'scripts', 'classification', 'prepare_imagenet.py')
    return subprocess.run([sys.executable, script] + list(argv), capture_output=True,
                          text=True, timeout=120)


def test_prepare_imagenet_end_to_end(tmp_path):
    data = tmp_path / 'ilsvrc'
    files = _write_color_tree(str(data / 'train'), classes=('n03', 'n01', 'n02'), per_class=3,
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
    _write_color_tree(str(val), classes=('n03',), per_class=2)
    r = _run_prepare('--data-dir', str(data), '--out-dir', str(tmp_path / 'out3'),
                     '--resize', '0', '--encoding', '.png', '--quality', '3')
    assert r.returncode == 0, r.stderr
    rows = gd.read_lst(str(tmp_path / 'out3' / 'val.lst'))
    assert [(label, rel) for _, label, rel in rows] == [(2, 'n03/img00.png'), (2, 'n03/img01.png')]


def test_prepare_imagenet_png_quality_default_and_errors(tmp_path):
    data = tmp_path / 'd'
    _write_color_tree(str(data / 'train'), classes=('a', 'b'), per_class=2)
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


@pytest.mark.parametrize('kind', ['rec', 'folder', 'synthetic'])
def test_resume_from_the_middle_of_an_epoch(kind, digits, digits_rec):
    """set_epoch(e, start_batch=k) yields exactly the batches k, k+1, ... of epoch e."""
    cfg = gd.AugmentConfig(input_size=INPUT)
    make = {'rec': lambda: gd.RecordLoader(digits_rec[0].rec_path, batch_size=64, aug=cfg,
                                           seed=3, num_workers=1, progress=False),
            'folder': lambda: gd.FolderLoader(digits.train_dir, batch_size=64, aug=cfg, seed=3,
                                              num_workers=0),
            'synthetic': lambda: gd.SyntheticLoader(64, 300, INPUT, 10)}[kind]
    a, b = make(), make()
    a.set_epoch(2)
    full_d, full_l = _collect(a)
    assert a.epoch == 3
    b.set_epoch(2, start_batch=3)
    part_d, part_l = _collect(b)
    assert len(part_d) == len(full_d) - 3 and b.epoch == 3
    assert all(np.array_equal(x, y) for x, y in zip(part_d, full_d[3:]))
    assert all(np.array_equal(x, y) for x, y in zip(part_l, full_l[3:]))
    next_d, _ = _collect(b)                                     # then epoch 3 from its start
    assert len(next_d) == len(full_d)


def test_data_modules_import_alone_without_cycles_or_tools():
    """Every module of gluon_tricks.data imports on its own; the imports between them, function
    -local ones included, form no cycle; none of them reaches the repo's tools package."""
    import ast
    import glob
    pkg = os.path.join(REPO, 'gluon_tricks', 'data')
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(pkg, '*.py')))
    graph = {}
    for name in names:
        with open(os.path.join(pkg, name + '.py')) as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module] if node.module else [a.name for a in node.names])
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or '']
                assert not any(m == 'tools' or m.startswith('tools.') for m in mods), name
        graph[name] = deps & set(names) - {'__init__'}
    state = {}

    def visit(n, path):
        assert state.get(n) != 'open', 'import cycle: %s' % ' -> '.join(path + [n])
        if state.get(n) is None:
            state[n] = 'open'
            for d in sorted(graph[n]):
                visit(d, path + [n])
            state[n] = 'done'
    for n in names:
        visit(n, [])
    for name in names + ['../loss', '../export', '../inference']:
        mod = 'gluon_tricks.' + name[3:] if name.startswith('../') else \
            'gluon_tricks.data' + ('' if name == '__init__' else '.' + name)
        code = ('import sys, %s; bad = [m for m in sys.modules if m == "tools" or '
                'm.startswith("tools.")]; assert not bad, bad' % mod)
        out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                             text=True)
        assert out.returncode == 0, (mod, out.stderr[-800:])


def test_predict_export_and_loaders_share_one_val_transform(tmp_path):
    """predict.py (load_image), the validation loaders (evaluate.py, training) and the export's
    metadata go through one ValTransform: the same input arrays bit for bit, hence the same
    probabilities; and that transform is section 2.1's (resize the shorter side, center crop,
    normalize), checked against a direct OpenCV computation."""
    import importlib.util
    from gluon_tricks.export import export_model
    from gluon_tricks.inference import open_classifier
    from gluon_tricks.model_zoo import get_model
    root = str(tmp_path / 'val')
    rng = np.random.RandomState(0)
    for k, (h, w) in enumerate([(40, 56), (61, 37), (33, 33)]):
        os.makedirs(os.path.join(root, 'c%d' % k))
        img = cv2.GaussianBlur(rng.randint(0, 256, (h, w, 3)).astype(np.uint8), (5, 5), 0)
        assert cv2.imwrite(os.path.join(root, 'c%d' % k, 'a.jpg' if k else 'a.png'), img)
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
    net = get_model('resnet18_v1b', classes=3)
    net.initialize(mx.init.Xavier(magnitude=3), force_reinit=True)
    prefix = str(tmp_path / 'm')
    export_model(net, prefix, input_size=INPUT, crop_ratio=0.8, mean=[120, 110, 100],
                 std=[50, 60, 70])
    clf = open_classifier(prefix)
    cfg = clf.aug
    assert (cfg.input_size, cfg.crop_ratio, cfg.mean, cfg.std, cfg.val_resize) == \
        (INPUT, 0.8, (120, 110, 100), (50, 60, 70), 40)

    loader = gd.FolderLoader(root, batch_size=3, train=False, aug=cfg, num_workers=0)
    batch = next(iter(loader))[0].asnumpy()
    single = np.stack([gd.load_image(f, cfg) for f in files])
    assert np.array_equal(batch, single)
    for f, x in zip(files, single):          # section 2.1, written out with OpenCV
        img = cv2.cvtColor(cv2.imread(f, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        h, w = img.shape[:2]
        # GluonCV's Resize(40, keep_ratio=True): the longer side floored
        nh, nw = (h * 40 // w, 40) if h > w else (40, w * 40 // h)
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float64)
        y0, x0 = (nh - INPUT) // 2, (nw - INPUT) // 2
        ref = (img[y0:y0 + INPUT, x0:x0 + INPUT] - [120, 110, 100]) / [50, 60, 70]
        np.testing.assert_allclose(x, ref.transpose(2, 0, 1), atol=1e-5)

    spec = importlib.util.spec_from_file_location(
        'predict', os.path.join(REPO, 'scripts', 'classification', 'predict.py'))
    predict = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(predict)
    results = predict.main(['--prefix', prefix, '--topk', '3'] + files)
    for x, got in zip(single, results):
        logits = np.asarray(clf(x[None]), np.float64)[0]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        top = prob.argsort()[::-1][:3]
        assert got == [(int(i), float(prob[i])) for i in top]
