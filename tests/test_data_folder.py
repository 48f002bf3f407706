"""The class-folder loader (gluon_tricks.data.folder): normalization, labels, sharding,
augmentation reproducible whatever the worker count, and clear errors."""
import os
import shutil

import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import (MEAN, STD, INPUT, image_indices, write_color_tree, no_augment,
                                collect)


def test_folder_normalization_labels_and_sharding(color_tree):
    root, files = color_tree
    cfg = no_augment()
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
            for img, lab, k in zip(data.asnumpy(), label.asnumpy(), image_indices(data)):
                expected = (np.array(by_index[k][0], np.float32) - MEAN) / STD
                assert np.allclose(img, expected[:, None, None], atol=1e-4)
                assert lab == by_index[k][1]
                val_ids.append(k)
        tr = gd.FolderLoader(root, batch_size=2, aug=cfg, num_parts=2, part_index=part,
                             num_workers=0, seed=1)
        assert tr.num_samples == 7 and len(tr) == 3
        ids0 = sum((image_indices(d) for d, _ in tr.iter_epoch(0)), [])
        ids1 = sum((image_indices(d) for d, _ in tr.iter_epoch(1)), [])
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
        collect(loader)
    # a validation folder with fewer classes keeps the training labels
    val = tmp_path / 'val'
    write_color_tree(str(val), classes=('cat',), per_class=2)
    loader = gd.FolderLoader(str(val), batch_size=2, train=False, classes=['ant', 'bee', 'cat'],
                             aug=gd.AugmentConfig(input_size=INPUT), num_workers=0)
    assert loader.num_classes == 3 and collect(loader)[1][0].tolist() == [2, 2]
    with pytest.raises(gd.LabelError, match='not among'):
        gd.FolderLoader(str(val), classes=['ant', 'bee'])
