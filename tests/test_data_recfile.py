"""The RecordIO file reader (gluon_tricks.data.recfile): missing, truncated or shifted
.rec/.idx files give errors that name the file and the fix, and records split by the writer
are joined again."""
import os
import shutil

import numpy as np
import pytest

from gluon_tricks import data as gd
from helpers.data_trees import INPUT


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
