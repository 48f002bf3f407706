"""The data options (gluon_tricks.data.options): the paper's defaults, the command-line
flags and their help, and the JSON form of a DataConfig."""
import argparse
import os

import pytest

from gluon_tricks import data as gd


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
