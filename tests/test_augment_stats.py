"""Statistical tests of the training pipeline (section 2.1) on RecordIO and class folders.

Every random draw must be independent across the positions of a batch, the batches of an
epoch, the epochs and the ranks (parts), and follow its distribution. MXNet 1.9.1's
``ImageRecordIter`` with ``seed_aug`` repeated the draws position by position (sample ``j`` of
every batch of an epoch got the same crop, flip and colour), which every distinct-draw test
below catches: with batch 50 and 4 batches an epoch, such a pipeline draws 50 values per
epoch instead of 200.

The geometry is read back from the images themselves, not from the pipeline's bookkeeping:
the source image has R = x and G = y (255 x 255 px, lossless PNG), so the crop box and the
flip of every output follow from a linear fit of its R and G values; a constant gray image
gives the brightness factor. The recorded draws (``with_params``) are checked against those
read-back values and against a re-application of the transform, then used for the draws that
cannot be read back (contrast, saturation, PCA noise).
"""
import math
import os

import cv2
import numpy as np
import pytest
from scipy import stats

from gluon_tricks import data as gd

SIDE = 255          # source image side: R = x and G = y are exact 8-bit values
INPUT = 32
BATCH = 50
PER_CLASS = 100     # 2 classes: 200 samples, 4 batches of 50 per epoch
EPOCHS = 3
ALPHA = 1e-3        # significance of the distribution tests (they run on fixed seeds)
FIELD = {name: i for i, name in enumerate(gd.PARAM_FIELDS)}

GEOMETRY = gd.AugmentConfig(input_size=INPUT, random_area=(0.08, 0.5), brightness=0.0,
                            contrast=0.0, saturation=0.0, pca_noise=0.0)
# area <= 0.5 of a square image always fits (w <= sqrt(0.5 * 4/3) * side < side): no retry,
# so the accepted area is exactly U[0.08, 0.5] and the log aspect ratio U[log 3/4, log 4/3].
BRIGHTNESS = gd.AugmentConfig(input_size=INPUT, contrast=0.0, saturation=0.0, pca_noise=0.0,
                              mirror=False)
GRAY = 100


def _write_tree(root, image):
    for c in ('a', 'b'):
        os.makedirs(os.path.join(root, c))
        for j in range(PER_CLASS):
            assert cv2.imwrite(os.path.join(root, c, '%03d.png' % j), image[:, :, ::-1])


def _sources(tmp_path_factory, name, image):
    root = str(tmp_path_factory.mktemp(name))
    tree = os.path.join(root, 'tree')
    _write_tree(tree, image)
    res, _ = gd.pack_class_folder(tree, os.path.join(root, 'rec'), shuffle=True, seed=1,
                                  encoding='.png', quality=1, progress=False)
    return tree, res.rec_path


@pytest.fixture(scope='module')
def coord_data(tmp_path_factory):
    ramp = np.arange(SIDE, dtype=np.uint8)
    img = np.empty((SIDE, SIDE, 3), np.uint8)
    img[:, :, 0] = ramp[None, :]           # R = x
    img[:, :, 1] = ramp[:, None]           # G = y
    img[:, :, 2] = 128
    return _sources(tmp_path_factory, 'coord', img)


@pytest.fixture(scope='module')
def gray_data(tmp_path_factory):
    return _sources(tmp_path_factory, 'gray', np.full((SIDE, SIDE, 3), GRAY, np.uint8))


def _loader(kind, data, cfg, num_parts=1, part_index=0, num_workers=2):
    """``kind``: 'rec' or 'folder'; '-uint8' appended: uint8 batches, as for GPU training."""
    tree, rec = data
    uint8 = kind.endswith('-uint8')
    if kind.startswith('rec'):
        return gd.RecordLoader(rec, batch_size=BATCH, aug=cfg, num_parts=num_parts,
                               part_index=part_index, seed=11, num_workers=num_workers,
                               progress=False, with_params=True, uint8=uint8)
    return gd.FolderLoader(tree, batch_size=BATCH, aug=cfg, num_parts=num_parts,
                           part_index=part_index, seed=11, num_workers=num_workers,
                           with_params=True, uint8=uint8)


def _epochs(loader, epochs=EPOCHS):
    """Per epoch: (images in 0-255 RGB, (N, 3, S, S); recorded draws (N, F)), batch order kept.
    uint8 batches are read through the training step's normalisation on the device."""
    mean = np.array(gd.IMAGENET_MEAN, np.float32)[None, :, None, None]
    std = np.array(gd.IMAGENET_STD, np.float32)[None, :, None, None]
    normalize = None
    if loader.uint8:
        from gluon_tricks.engine import DeviceNormalize
        normalize = DeviceNormalize(gd.IMAGENET_MEAN, gd.IMAGENET_STD)
        normalize.initialize()
    out = []
    for e in range(epochs):
        imgs, params = [], []
        for batch in loader.iter_epoch(e):
            data, p = batch[0], batch[2]
            if normalize is not None:
                data = normalize(data, batch[3])
            imgs.append(data.asnumpy() * std + mean)
            params.append(p.asnumpy())
        out.append((np.concatenate(imgs), np.concatenate(params)))
    return out


def read_geometry(imgs):
    """Crop box and flip of each output of the coordinate image, from its R and G values.

    cv2's bilinear resize samples source x = x0 + (j + 0.5) * w / S - 0.5 at output column j,
    so R along a row is linear in j with slope w / S (negative when flipped); the middle half
    of the columns never touches the crop border. Returns (area fraction, log(w / h), flip,
    (N, 4) of area, log aspect and the box centre: a key that tells draws apart).
    """
    s = imgs.shape[-1]
    j = np.arange(s // 4, 3 * s // 4)
    r = imgs[:, 0, s // 4:3 * s // 4, s // 4:3 * s // 4].mean(axis=1)   # (N, cols)
    g = imgs[:, 1, s // 4:3 * s // 4, s // 4:3 * s // 4].mean(axis=2)   # (N, rows)
    slope_x, icpt_x = np.polyfit(j, r.T, 1)
    slope_y, icpt_y = np.polyfit(j, g.T, 1)
    w, h = np.abs(slope_x) * s, slope_y * s
    area, log_aspect = w * h / SIDE ** 2, np.log(w / h)
    centre = np.stack([icpt_x + slope_x * (s - 1) / 2, icpt_y + slope_y * (s - 1) / 2], 1)
    key = np.column_stack([area, log_aspect, centre / SIDE])
    return area, log_aspect, slope_x < 0, key


def assert_no_positional_repeat(draw, what, decimals=5):
    """``draw``: (N,) or (N, k) draws in batch order, N a multiple of the batch size.

    Fails on the seed_aug defect: too few distinct draws, or the same draw at a position of
    a batch as at that position of the previous batch.
    """
    draw = np.asarray(draw, np.float64).reshape(len(draw), -1)
    n = len(draw)
    distinct = len({tuple(row) for row in np.round(draw, decimals)})
    assert distinct >= 0.97 * n, '%s: only %d distinct draws out of %d' % (what, distinct, n)
    by_pos = draw.reshape(-1, BATCH, draw.shape[1])        # (batches, positions, k)
    same = np.mean(np.isclose(by_pos[1:], by_pos[:-1], atol=1e-4).all(axis=2))
    assert same < 0.02, '%s: %.0f%% of positions repeat the previous batch' % (what, 100 * same)


@pytest.mark.parametrize('kind', ['rec', 'folder', 'rec-uint8'])
def test_crop_and_flip_are_independent_and_follow_the_paper(kind, coord_data):
    epochs = _epochs(_loader(kind, coord_data, GEOMETRY))
    imgs = np.concatenate([e[0] for e in epochs])
    params = np.concatenate([e[1] for e in epochs])
    area, log_aspect, flip, key = read_geometry(imgs)
    # the recorded draws are what was applied (to about a pixel of the crop side)
    assert np.abs(area - params[:, FIELD['area']]).max() < 0.02
    assert np.abs(log_aspect - params[:, FIELD['log_aspect']]).max() < 0.03
    assert np.array_equal(flip, params[:, FIELD['flip']] > 0.5)
    assert not params[:, FIELD['fallback']].any()
    # independent across positions, batches and epochs
    assert_no_positional_repeat(key, 'crop box', decimals=3)
    per_epoch = [{tuple(r) for r in np.round(k, 3)} for k in key.reshape(EPOCHS, -1, 4)]
    assert len(per_epoch[0] & per_epoch[1]) < 5 and len(per_epoch[1] & per_epoch[2]) < 5
    # positions j and j+1 of a batch are uncorrelated
    pos = area.reshape(-1, BATCH)
    assert abs(stats.pearsonr(pos[:, :-1].ravel(), pos[:, 1:].ravel())[0]) < 0.15
    # the distributions of section 2.1 (area fraction, log aspect ratio, flip p = 0.5)
    exact_area = params[:, FIELD['area']]
    assert stats.kstest(exact_area, stats.uniform(0.08, 0.42).cdf).pvalue > ALPHA
    lo, hi = math.log(3 / 4), math.log(4 / 3)
    assert stats.kstest(params[:, FIELD['log_aspect']],
                        stats.uniform(lo, hi - lo).cdf).pvalue > ALPHA
    assert stats.binomtest(int(flip.sum()), flip.size, 0.5).pvalue > ALPHA


def test_per_position_repeat_is_caught():
    """The check above fails on draws that repeat position by position (the old defect)."""
    draws = np.random.default_rng(0).uniform(0.08, 0.5, (BATCH * 4 * EPOCHS, 2))
    assert_no_positional_repeat(draws, 'independent draws')
    epoch_wise = draws.reshape(EPOCHS, 4, BATCH, 2)
    epoch_wise[:, 1:] = epoch_wise[:, :1]                  # seed_aug: same per position
    with pytest.raises(AssertionError, match='only 150 distinct draws out of 600'):
        assert_no_positional_repeat(epoch_wise.reshape(-1, 2), 'crop area')


@pytest.mark.parametrize('kind', ['rec', 'folder'])
def test_ranks_draw_independently(kind, coord_data):
    """Two parts (Horovod ranks) of one epoch: disjoint samples, unrelated draws."""
    parts = [_epochs(_loader(kind, coord_data, GEOMETRY, num_parts=2, part_index=i), 2)
             for i in range(2)]
    for e in range(2):
        a, b = (read_geometry(parts[i][e][0]) for i in range(2))
        assert len(a[0]) == len(b[0]) == 100
        assert not {tuple(r) for r in np.round(a[3], 3)} & {tuple(r) for r in np.round(b[3], 3)}
        assert abs(stats.pearsonr(a[0], b[0])[0]) < 0.35
    both = np.concatenate([read_geometry(parts[i][e][0])[0] for i in range(2) for e in range(2)])
    assert stats.kstest(both, stats.uniform(0.08, 0.42).cdf).pvalue > ALPHA


@pytest.mark.parametrize('kind', ['rec', 'folder', 'folder-uint8'])
def test_brightness_factor_is_uniform_and_independent(kind, gray_data):
    epochs = _epochs(_loader(kind, gray_data, BRIGHTNESS))
    imgs = np.concatenate([e[0] for e in epochs])
    params = np.concatenate([e[1] for e in epochs])
    factor = imgs.reshape(len(imgs), -1).mean(axis=1) / GRAY       # gray 100 -> 100 * b
    rounding = 0.5 / GRAY if kind.endswith('uint8') else 0.0        # uint8: 100 * b rounded
    assert np.abs(factor - params[:, FIELD['brightness']]).max() < 1e-3 + rounding
    # (read back from uint8, 100 * b takes 80 values: the draws themselves are checked)
    assert_no_positional_repeat(params[:, FIELD['brightness']] if rounding else factor,
                                'brightness')
    assert 0.6 <= factor.min() and factor.max() <= 1.4
    assert stats.kstest(factor, stats.uniform(0.6, 0.8).cdf).pvalue > ALPHA


@pytest.mark.parametrize('kind', ['rec', 'folder'])
def test_all_draws_of_the_paper_pipeline(kind, coord_data):
    """The default configuration: colour factors U[0.6, 1.4], PCA alpha N(0, 0.1), random
    order; the recorded draws reproduce the loader's output exactly."""
    cfg = gd.AugmentConfig(input_size=INPUT)
    loader = _loader(kind, coord_data, cfg, num_workers=0)
    params = np.concatenate([p.asnumpy() for _, _, p in loader.iter_epoch(0)] +
                            [p.asnumpy() for _, _, p in loader.iter_epoch(1)])
    for name in ('brightness', 'contrast', 'saturation'):
        f = params[:, FIELD[name]]
        assert 0.6 <= f.min() and f.max() <= 1.4, name
        assert stats.kstest(f, stats.uniform(0.6, 0.8).cdf).pvalue > ALPHA, name
        assert_no_positional_repeat(f, name)
    alpha = params[:, [FIELD['pca_r'], FIELD['pca_g'], FIELD['pca_b']]]
    assert abs(alpha.std() - 0.1) < 0.01
    assert stats.kstest(alpha.ravel(), stats.norm(0, 0.1).cdf).pvalue > ALPHA
    assert abs(np.corrcoef(alpha.T)[np.triu_indices(3, 1)]).max() < 0.15
    area = params[:, FIELD['area']]
    assert 0.08 <= area.min() and area.max() <= 1.0 and params[:, FIELD['fallback']].mean() < 0.1
    # re-apply the transform with a sample's own generator: the same image, bit for bit
    data, _, p = next(loader.iter_epoch(1))
    key = loader.sampler.batches(1)[0][3]
    label, buf = loader.dataset._source.read(key[0])
    img = gd.decode_image(buf)
    out, again = gd.TrainTransform(cfg)(img, np.random.default_rng([key[1], key[0]]))
    assert np.array_equal(out, data.asnumpy()[3])
    assert np.allclose(again.vector(*img.shape[:2]), p.asnumpy()[3])
