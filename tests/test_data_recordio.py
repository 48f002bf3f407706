"""The RecordIO loader (gluon_tricks.data.recordio): normalization, validation order,
reproducible epochs (in a fresh process too), sharding, and the class count and label checks
of record_info."""
import hashlib
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import (MEAN, STD, INPUT, color_of, image_indices, write_color_tree,
                                no_augment, collect)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_record_train_normalizes_constant_colors_exactly(color_rec, color_tree):
    res, classes = color_rec
    _, files = color_tree
    cfg = no_augment()
    loader = gd.RecordLoader(res.rec_path, batch_size=4, aug=cfg, num_workers=2,
                             progress=False)
    assert loader.num_samples == 15 and loader.num_classes == 3 and len(loader) == 3
    assert loader.classes == classes                                 # from classes.txt
    by_index = {k: (rgb, classes.index(rel.split('/')[0])) for rel, (k, rgb) in files.items()}
    n = 0
    for data, label in loader:
        assert data.shape == (4, 3, INPUT, INPUT) and data.dtype == np.float32
        assert label.shape == (4,) and label.dtype == np.float32
        for img, lab, k in zip(data.asnumpy(), label.asnumpy(), image_indices(data)):
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
    d1, l1 = collect(rec)
    d2, _ = collect(rec)
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
    f1, fl = collect(folder)
    assert [len(x) for x in fl] == [64] * 5 + [40]
    assert np.array_equal(np.concatenate(fl), np.concatenate(l1))
    assert np.abs(np.concatenate(f1) - np.concatenate(d1)).max() < 0.05


@pytest.mark.subprocess
def test_record_train_epochs_are_reproducible(digits_rec):
    train, _ = digits_rec
    cfg = gd.AugmentConfig(input_size=INPUT)
    make = lambda seed: gd.RecordLoader(train.rec_path, batch_size=64, aug=cfg, seed=seed,  # noqa
                                        num_workers=2, progress=False)
    a, b = make(7), make(7)
    assert len(a) == 1437 // 64
    da0, la0 = collect(a)                                        # epoch 0, then advances
    da1, la1 = collect(a)                                        # epoch 1
    assert a.epoch == 2 and len(da0) == len(a)
    b.set_epoch(1)
    db1, lb1 = collect(b)                                        # a fresh loader, epoch 1
    assert all(np.array_equal(x, y) for x, y in zip(da1, db1))
    assert all(np.array_equal(x, y) for x, y in zip(la1, lb1))
    assert not np.array_equal(np.concatenate(la0), np.concatenate(la1))   # new order
    dc0, lc0 = collect(make(8), epoch=0)
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
    cfg = no_augment()
    seen, train_ids = [], []
    for part in range(2):
        val = gd.RecordLoader(res.rec_path, batch_size=3, train=False, aug=cfg, num_parts=2,
                              part_index=part, num_workers=1, progress=False)
        ids = sum((image_indices(d) for d, _ in val), [])
        assert len(ids) == val.num_samples == [8, 7][part]      # samples part, part + 2, ...
        tr = gd.RecordLoader(res.rec_path, batch_size=3, aug=cfg, num_parts=2,
                             part_index=part, num_workers=1, progress=False)
        assert tr.num_samples == 7 and len(tr) == 2             # 15 // 2, the same on both
        tr_ids = sum((image_indices(d) for d, _ in tr), [])
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
        collect(loader)
    # a .lst that does not belong to the .rec
    with open(str(tmp_path / 'nolst.lst'), 'w') as f:
        f.write('0\t1.000000\ta.png\n')
    with pytest.raises(gd.LabelError, match='does not belong'):
        gd.record_info(rec)


def test_images_of_exactly_the_input_size_are_cropped_correctly(tmp_path):
    """ImageRecordIter corrupted these (it resized into the buffer it read from)."""
    root = str(tmp_path / 'tree')
    files = write_color_tree(root, classes=('a', 'b'), per_class=2, size=(INPUT, INPUT))
    res, _ = gd.pack_class_folder(root, str(tmp_path / 'same'), progress=False,
                                  encoding='.png', quality=3)
    loader = gd.RecordLoader(res.rec_path, batch_size=4, progress=False,
                             aug=gd.AugmentConfig(input_size=INPUT, brightness=0, contrast=0,
                                                  saturation=0, pca_noise=0))
    data, _ = next(iter(loader))
    colors = {rgb for _, rgb in files.values()}
    for img, k in zip(data.asnumpy(), image_indices(data)):
        expected = (np.array(color_of(k), np.float32) - MEAN) / STD
        assert color_of(k) in colors and np.allclose(img, expected[:, None, None], atol=1e-4)


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
