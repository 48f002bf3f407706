"""Verification of record files (gluon_tricks.data.verify): a corrupt record is found
before training or when its batch is reached, and training and verification agree on a
1x1 image."""
import os

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import INPUT, write_color_tree, collect


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
        collect(train)
    assert gd.verify_record_file(res.rec_path, progress=False).ok


def test_one_pixel_image_trains_and_verifies_alike(tmp_path):
    """Training and verify_record_file agree on a 1x1 image: both accept it."""
    root = str(tmp_path / 'tree')
    write_color_tree(root, classes=('a', 'b'), per_class=2, size=(1, 1))
    res, _ = gd.pack_class_folder(root, str(tmp_path / 'one'), progress=False,
                                  encoding='.png')
    assert gd.verify_record_file(res.rec_path, progress=False).ok
    cfg = gd.AugmentConfig(input_size=INPUT)
    for train in (True, False):
        data, _ = next(iter(gd.RecordLoader(res.rec_path, batch_size=4, train=train, aug=cfg,
                                            num_workers=0, progress=False, verify=True)))
        assert data.shape == (4, 3, INPUT, INPUT) and np.isfinite(data.asnumpy()).all()


def test_each_rank_verifies_only_its_validation_part(color_rec, tmp_path, monkeypatch):
    """With P parts, the validation loader of part i decodes the records i, i + P, ... only
    (not the whole file on every rank), stamps that part, and finds a bad record in the part
    that holds it."""
    res, _ = color_rec
    rec = str(tmp_path / 'bad.rec')
    _corrupt_copy(res.rec_path, rec, bad_key=6)          # 15 records: part 0 of 2 holds 6
    from gluon_tricks.data import verify
    seen = []
    real = verify._check_record
    monkeypatch.setattr(verify, '_check_record',
                        lambda records, i, n: seen.append(i) or real(records, i, n))
    cfg = gd.AugmentConfig(input_size=INPUT)
    loader = gd.RecordLoader(rec, batch_size=4, train=False, aug=cfg, num_classes=3,
                             num_parts=2, part_index=1, progress=False)
    assert sorted(seen) == list(range(1, 15, 2)) and loader.num_samples == 7
    assert gd.is_verified(rec, str(tmp_path / 'bad.idx'), 2, 1)
    assert not gd.is_verified(rec, str(tmp_path / 'bad.idx'))          # not the whole file
    seen.clear()
    gd.RecordLoader(rec, batch_size=4, train=False, aug=cfg, num_classes=3, num_parts=2,
                    part_index=1, progress=False)
    assert seen == []                                                    # the stamp holds
    with pytest.raises(gd.CorruptRecordError, match=r'part 1 of 2.*6: image does not decode'):
        gd.RecordLoader(rec, batch_size=4, train=False, aug=cfg, num_classes=3, num_parts=2,
                        part_index=0, progress=False)
    assert sorted(seen) == list(range(0, 15, 2))
