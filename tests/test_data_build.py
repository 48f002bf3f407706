"""The loaders built from the options (gluon_tricks.data.build), and the synthetic loader
(gluon_tricks.data.synthetic)."""
import os

from gluon_tricks import data as gd
from helpers.data_trees import INPUT


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
