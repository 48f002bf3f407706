"""From JPEG bytes to batches, fast and exact: the draws come from the frame header's size, a
crop at least twice the output on both sides is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's
DCT scaling) with the draws of the full decode and pixels close to it; the decoder gives
OpenCV's pixels; batches are written in place (shared or page-locked memory) with the values
of the samples stacked."""
import cv2
import numpy as np
import pytest

from gluon_tricks import data as gd
from gluon_tricks.data import decode as dec


def _natural(rng, width, height):
    """Structure at several scales plus fine noise (as the benchmark's synthetic JPEGs)."""
    img = np.zeros((height, width, 3), np.float32)
    for cells, amp in ((4, 70.0), (16, 40.0), (64, 25.0)):
        low = rng.uniform(-1, 1, (max(2, cells * height // width), cells, 3)).astype(np.float32)
        img += amp * cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    img += rng.standard_normal((height, width, 3)).astype(np.float32) * 12 + 128
    return np.clip(img, 0, 255).astype(np.uint8)


def _class_tree(root, rng, per_class, width, height, ext):
    """Class folders ``root/a``, ``root/b`` of ``per_class`` natural images each (drawn from
    ``rng`` in that order); returns ``str(root)``."""
    for c in ('a', 'b'):
        (root / c).mkdir(parents=True)
        for j in range(per_class):
            cv2.imwrite(str(root / c / ('%d%s' % (j, ext))),
                        _natural(rng, width, height)[:, :, ::-1])
    return str(root)


def _jpeg(img, quality=90, progressive=False):
    flags = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(img[:, :, ::-1]), flags)
    assert ok
    return buf.tobytes()


def _with_exif(buf):
    """``buf`` with a minimal APP1 Exif segment right after the start-of-image marker."""
    body = b'Exif\x00\x00' + b'MM\x00\x2a\x00\x00\x00\x08\x00\x00'
    return buf[:2] + b'\xff\xe1' + (len(body) + 2).to_bytes(2, 'big') + body + buf[2:]


@pytest.mark.parametrize('size', [(640, 480), (333, 250), (1201, 899)])
@pytest.mark.parametrize('progressive', [False, True])
def test_header_size_and_reduced_shapes(size, progressive):
    w, h = size
    buf = _jpeg(_natural(np.random.RandomState(0), w, h), progressive=progressive)
    assert dec.jpeg_shape(buf) == (h, w)
    for factor in (1, 2, 4, 8):     # libjpeg rounds the scaled size up
        assert dec.decode_reduced(buf, factor).shape == (-(-h // factor), -(-w // factor), 3)


def test_header_size_is_not_trusted_where_it_may_be_wrong():
    img = _natural(np.random.RandomState(1), 64, 48)
    assert dec.jpeg_shape(_with_exif(_jpeg(img))) is None           # orientation may rotate it
    ok, png = cv2.imencode('.png', img)
    assert dec.jpeg_shape(png.tobytes()) is None
    assert dec.jpeg_shape(b'') is None and dec.jpeg_shape(b'\xff\xd8\xff') is None
    assert dec.jpeg_shape(_jpeg(img)[:20]) is None                 # cut before the frame header


def test_reduction_factor_keeps_the_resize_a_shrink():
    t = gd.TrainTransform(gd.AugmentConfig(input_size=100))
    box = lambda w, h: gd.AugParams((0, 0, w, h), False, False, (), {}, (0, 0, 0))  # noqa: E731
    assert t.reduction(box(199, 400)) == 1
    assert t.reduction(box(200, 200)) == 2
    assert t.reduction(box(400, 399)) == 2
    assert t.reduction(box(400, 400)) == 4
    assert t.reduction(box(800, 900)) == 8
    assert t.reduction(box(5000, 5000)) == 8


def test_draws_are_those_of_the_full_decode_and_pixels_close():
    """Same crop, flip, colour and lighting draws as decoding in full; where no reduction
    applies the output is the same bit for bit; reduced crops differ by the finer
    downsampling only: channel means equal, spread within 1 %, mean pixel difference small."""
    rng = np.random.RandomState(2)
    buf = _jpeg(_natural(rng, 1200, 900))
    full_img = gd.decode_image(buf)
    t = gd.TrainTransform(gd.AugmentConfig(input_size=224))
    fulls, reduced, factors = [], [], []
    for i in range(200):
        out, p, shape = t.from_bytes(buf, np.random.default_rng([i, 7]))
        ref, q = t(full_img, np.random.default_rng([i, 7]))
        assert shape == (900, 1200)
        assert p == q, 'draw %d differs from the full decode' % i
        factor = t.reduction(p)
        factors.append(factor)
        if factor == 1:
            assert np.array_equal(out, ref)
        else:
            fulls.append(ref)
            reduced.append(out)
    assert factors.count(1) > 10 and factors.count(2) > 50     # both paths exercised
    fulls, reduced = np.array(fulls), np.array(reduced)
    np.testing.assert_allclose(reduced.mean(axis=(0, 2, 3)), fulls.mean(axis=(0, 2, 3)),
                               atol=0.01)
    np.testing.assert_allclose(reduced.std(axis=(0, 2, 3)), fulls.std(axis=(0, 2, 3)),
                               rtol=0.01)
    assert np.abs(reduced - fulls).mean() < 0.1        # normalized units (1 = one std)


def test_reduced_crop_covers_the_drawn_box():
    """The crop geometry survives the reduction: on an image whose R channel is x / 4 and G
    channel y / 4, the reduced output's R and G means match the full decode's within half a
    gray level (rounding the box to whole pixels at 1/8 scale was off by up to one level)."""
    side = 1020
    ramp = (np.arange(side) // 4).astype(np.uint8)
    img = np.empty((side, side, 3), np.uint8)
    img[:, :, 0], img[:, :, 1], img[:, :, 2] = ramp[None, :], ramp[:, None], 128
    buf = _jpeg(img, quality=100)
    cfg = gd.AugmentConfig(input_size=64, brightness=0, contrast=0, saturation=0, pca_noise=0)
    t = gd.TrainTransform(cfg)
    full_img = gd.decode_image(buf)
    checked = 0
    for i in range(60):
        out, p, _ = t.from_bytes(buf, np.random.default_rng(i))
        if t.reduction(p) == 1:
            continue
        ref, _ = t(full_img, np.random.default_rng(i))
        for c in (0, 1):     # R = x / 4, G = y / 4, in gray levels
            a = out[c] * cfg.std[c] + cfg.mean[c]
            b = ref[c] * cfg.std[c] + cfg.mean[c]
            assert abs(a.mean() - b.mean()) < 0.5, (i, c, p.box, a.mean(), b.mean())
        checked += 1
    assert checked > 20


def test_loader_on_large_jpegs_reads_back_the_header_draws(tmp_path):
    """Through the RecordIO loader, the recorded draws are in the header's pixel units."""
    root = _class_tree(tmp_path / 'tree', np.random.RandomState(3), 8, 900, 700, '.png')
    res, _ = gd.pack_class_folder(str(root), str(tmp_path / 'rec'), shuffle=True, seed=1,
                                  encoding='.jpg', quality=90, progress=False)
    cfg = gd.AugmentConfig(input_size=96)
    loader = gd.RecordLoader(res.rec_path, batch_size=8, aug=cfg, seed=5, num_workers=0,
                             progress=False, with_params=True)
    data, label, params = next(loader.iter_epoch(0))
    assert data.shape == (8, 3, 96, 96) and np.isfinite(data.asnumpy()).all()
    key = loader.sampler.batches(0)[0][0]
    _, buf = loader.dataset._source.read(key[0])
    ref, q = gd.TrainTransform(cfg)(gd.decode_image(buf), np.random.default_rng([key[1], key[0]]))
    np.testing.assert_allclose(params.asnumpy()[0], q.vector(700, 900), rtol=1e-6)


def _opencv_rgb(buf, flag=cv2.IMREAD_COLOR):
    img = cv2.imdecode(np.frombuffer(buf, np.uint8), flag)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize('kind', ['420', '444', 'progressive', 'gray', 'odd', 'exif'])
def test_decoded_pixels_are_opencvs(kind):
    """Whatever decodes the JPEG (libjpeg-turbo through simplejpeg, or OpenCV), the pixels are
    OpenCV's ``IMREAD_COLOR`` ones, bit for bit, at full and at reduced scale."""
    rng = np.random.RandomState(4)
    img = _natural(rng, 333 if kind == 'odd' else 320, 241 if kind == 'odd' else 240)
    flags = [cv2.IMWRITE_JPEG_QUALITY, 92]
    if kind == '444':
        flags += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    if kind == 'progressive':
        flags += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    src = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if kind == 'gray' else img[:, :, ::-1]
    buf = cv2.imencode('.jpg', np.ascontiguousarray(src), flags)[1].tobytes()
    if kind == 'exif':
        buf = _with_exif(buf)
    assert np.array_equal(gd.decode_image(buf), _opencv_rgb(buf))
    for factor in (2, 4, 8):
        reduced = _opencv_rgb(buf, getattr(cv2, 'IMREAD_REDUCED_COLOR_%d' % factor))
        assert np.array_equal(dec.decode_reduced(buf, factor), reduced), factor


def test_cmyk_and_damaged_jpegs_still_decode_as_opencv_does(tmp_path):
    from PIL import Image
    img = _natural(np.random.RandomState(5), 96, 64)
    path = str(tmp_path / 'cmyk.jpg')
    Image.fromarray(img).convert('CMYK').save(path, quality=95)
    with open(path, 'rb') as f:
        cmyk = f.read()
    assert np.array_equal(gd.decode_image(cmyk), _opencv_rgb(cmyk))
    good = _jpeg(img)
    scan = good.rfind(b'\xff\xda')
    damaged = good[:scan + 40] + bytes(200) + good[scan + 240:]   # zeros inside the scan
    expected = _opencv_rgb(damaged)
    assert expected is not None and np.array_equal(gd.decode_image(damaged), expected)


def test_plain_jpegs_do_not_need_opencv_to_decode(monkeypatch):
    """libjpeg-turbo through simplejpeg (a dependency) decodes the common JPEG, OpenCV only
    what it cannot read."""
    buf = _jpeg(_natural(np.random.RandomState(6), 64, 48))
    expected = gd.decode_image(buf)

    def refuse(*args):
        raise AssertionError('OpenCV asked to decode a plain JPEG')
    monkeypatch.setattr(cv2, 'imdecode', refuse)
    assert np.array_equal(gd.decode_image(buf), expected)
    assert dec.decode_reduced(buf, 2).shape == (24, 32, 3)


@pytest.mark.parametrize('train', [True, False])
def test_batches_are_built_in_place_as_the_samples_stacked(tmp_path, train):
    """A worker's batch is written sample by sample into one (shared-memory) NDArray: the
    same values as stacking the samples one by one."""
    root = _class_tree(tmp_path / 'tree', np.random.RandomState(7), 5, 150, 120, '.png')
    res, _ = gd.pack_class_folder(str(root), str(tmp_path / 'rec'), shuffle=True, seed=1,
                                  encoding='.jpg', quality=90, progress=False)
    loader = gd.RecordLoader(res.rec_path, batch_size=4, train=train,
                             aug=gd.AugmentConfig(input_size=40), seed=5, num_workers=0,
                             progress=False, with_params=train)
    keys = loader.sampler.batches(0)[1]
    for shared in (False, True):
        batch = loader.dataset.batch(keys, shared=shared)
        samples = [loader.dataset[k] for k in keys]
        assert len(batch) == len(samples[0])
        for column, values in zip(batch, zip(*samples)):
            assert column.dtype == np.float32
            assert np.array_equal(column.asnumpy(), np.stack(values))


def test_pinned_batches_hold_the_same_values(tmp_path):
    """build_loaders(pin_memory=True), as for GPU training: every batch arrives in
    page-locked memory (cpu_pinned), with the values of the unpinned loader."""
    import mxnet as mx
    root, rng = tmp_path / 'data', np.random.RandomState(8)
    for split in ('train', 'val'):
        _class_tree(root / split, rng, 4, 60, 50, '.jpg')
    cfg = gd.DataConfig(data_dir=str(root), input_size=32, num_workers=0)
    batches = {}
    for pin in (False, True):
        train, val = gd.build_loaders(cfg, batch_size=4, pin_memory=pin)
        batches[pin] = [b for loader in (train, val) for b in loader.iter_epoch(0)]
    for plain, pinned in zip(batches[False], batches[True]):
        for a, b in zip(plain, pinned):
            assert b.context == mx.cpu_pinned(0) and a.context == mx.cpu(0)
            assert np.array_equal(a.asnumpy(), b.asnumpy())


def test_gpu_training_asks_for_pinned_uint8_batches(monkeypatch):
    """The classification task asks build_loaders for page-locked uint8 batches exactly when
    the run trains on GPUs (--num-gpus > 0)."""
    import types
    from gluon_tricks import data as gdata
    from gluon_tricks.config import OptimConfig
    from gluon_tricks.training import classification
    asked = []

    def fake_build_loaders(cfg, **kwargs):
        assert kwargs['uint8'] is kwargs['pin_memory']
        asked.append(kwargs['pin_memory'])
        raise StopIteration     # enough: the task's choice is made
    monkeypatch.setattr(gdata, 'build_loaders', fake_build_loaders)
    for num_gpus, want in ((0, False), (1, True), (8, True)):
        run = types.SimpleNamespace(
            dist=types.SimpleNamespace(shard=lambda: (1, 0)), local_batch=4,
            cfg=types.SimpleNamespace(data=gd.DataConfig(num_workers=0, synthetic_data=True),
                                      optim=OptimConfig(num_gpus=num_gpus),
                                      run=types.SimpleNamespace(seed=0)),
            log=lambda msg: None)
        with pytest.raises(StopIteration):
            classification.ClassificationTask().build_data(run)
        assert asked[-1] is want


def _uint8_tree(tmp_path):
    return _class_tree(tmp_path / 'data' / 'train', np.random.RandomState(9), 6, 90, 70, '.jpg')


@pytest.mark.parametrize('workers', [0, 2])
def test_uint8_batches_normalized_on_the_device_are_the_float_batches(tmp_path, workers):
    """uint8 until the device: the same draws, the image rounded once (at most 0.5 of 255
    before normalisation), lighting and normalisation added on the device, on one device and
    split over two (cpu(0), cpu(1) stand for GPUs)."""
    import mxnet as mx
    from gluon_tricks.engine import DeviceNormalize
    root = _uint8_tree(tmp_path)
    aug = gd.AugmentConfig(input_size=32)
    def make(u8):
        return gd.FolderLoader(root, batch_size=4, aug=aug, seed=5, num_workers=workers,
                               with_params=True, uint8=u8)
    floats = list(make(False).iter_epoch(1))
    uint8s = list(make(True).iter_epoch(1))
    assert len(floats) == len(uint8s) == 3
    norm = DeviceNormalize(aug.mean, aug.std)
    norm.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    bound = 0.5 / min(aug.std) + 1e-4
    diffs = []
    for (x, y, p), (u, yu, pu, off) in zip(floats, uint8s):
        assert u.dtype == np.uint8 and off.shape == (4, 3) and x.dtype == np.float32
        assert np.array_equal(p.asnumpy(), pu.asnumpy())             # the same draws
        assert np.array_equal(y.asnumpy(), yu.asnumpy())
        one = norm(u.as_in_context(mx.cpu(0)), off.as_in_context(mx.cpu(0))).asnumpy()
        two = np.concatenate([norm(u[k:k + 2].as_in_context(mx.cpu(k // 2)),
                                   off[k:k + 2].as_in_context(mx.cpu(k // 2))).asnumpy()
                              for k in (0, 2)])
        assert np.array_equal(one, two)
        d = np.abs(one - x.asnumpy())
        assert d.max() <= bound
        diffs.append(d)
    d = np.concatenate([a.ravel() for a in diffs])
    # the rounding is there (not a float batch), and uniform: a mean of 0.25 of 255
    assert d.mean() == pytest.approx(0.25 * np.mean(1 / np.asarray(aug.std)), rel=0.2)


def test_a_training_step_on_uint8_batches_matches_the_float_step(tmp_path):
    """TrainStep(normalize=...) on uint8 batches over two devices: the loss of the float
    batch within the rounding, the top-1 hits the same."""
    import mxnet as mx
    from gluon_tricks.classifier_config import TricksConfig
    from gluon_tricks.engine import TrainStep
    from gluon_tricks.optim import make_trainer
    from gluon_tricks.precision import LossScaler
    root = _uint8_tree(tmp_path)
    aug = gd.AugmentConfig(input_size=32)
    batches = [next(iter(gd.FolderLoader(root, batch_size=4, aug=aug, seed=5, num_workers=0,
                                          uint8=u8).iter_epoch(0))) for u8 in (False, True)]
    devices = [mx.cpu(0), mx.cpu(1)]
    sums = []
    for uint8, batch in zip((False, True), batches):
        net = mx.gluon.nn.Dense(2, in_units=3 * 32 * 32)    # smooth in its input (a ResNet
        net.initialize(ctx=devices)                          # with BN over 2 samples is not)
        net.weight.set_data(mx.nd.array(np.random.RandomState(3).normal(0, 0.05, (2, 3072))))
        trainer = make_trainer(net.collect_params(), {'learning_rate': 0.0}, 'sgd')
        step = TrainStep(net, trainer, devices, TricksConfig(), 2, 1, LossScaler(None),
                         normalize=(aug.mean, aug.std) if uint8 else None)
        out = step(batch[0], batch[1], 0, 0, None, batch[2] if uint8 else None)
        sums.append([float(v.asscalar()) for v in out])
    assert sums[0][0] > 2 * 4 * np.log(2)                   # far from a constant log(2)
    assert sums[1][0] == pytest.approx(sums[0][0], rel=5e-3) and sums[1][1] == sums[0][1]



def test_training_as_on_gpus_runs_on_uint8_batches(rec_dir, tmp_path, monkeypatch):
    """train_imagenet.py --num-gpus 2 with GLUON_TRICKS_EMULATE_GPUS=2 (cpu(0), cpu(1)): the
    training loader gives uint8 batches in page-locked memory, the step normalizes them on the
    devices, and the run follows the float32 run of the same flags on the same devices (the
    task's choice switched off), with the same draws; only the rounding differs."""
    import json
    from gluon_tricks import data as gdata
    from gluon_tricks.training import classification
    from helpers.scripts_runner import load_script
    made = []
    build = gdata.build_loaders

    def recording_build_loaders(cfg, **kwargs):
        loaders = build(cfg, **kwargs)
        made.append((kwargs['uint8'], kwargs['pin_memory'], loaders[0].uint8))
        return loaders
    monkeypatch.setattr(gdata, 'build_loaders', recording_build_loaders)
    monkeypatch.setenv('GLUON_TRICKS_EMULATE_GPUS', '2')
    real, losses = classification.gpu_training, {}
    for gpu in (False, True):
        monkeypatch.setattr(classification, 'gpu_training',
                            real if gpu else (lambda cfg: False))
        save = tmp_path / ('run-%s' % gpu)
        load_script('classification', 'train_imagenet').main([
            '--model', 'resnet18_v1b', '--data-dir', rec_dir, '--use-rec', '--input-size',
            '24', '--crop-ratio', '0.8', '--batch-size', '8', '--num-gpus', '2', '-j', '1',
            '--num-epochs', '3', '--base-lr', '0.1', '--log-interval', '5',
            '--save-dir', str(save)])
        with open(str(save / 'metrics.jsonl')) as f:
            losses[gpu] = [r['train_loss'] for r in map(json.loads, f) if 'train_loss' in r]
    assert made == [(False, False, False), (True, True, True)]
    assert len(losses[True]) == len(losses[False]) >= 2
    assert losses[True] == pytest.approx(losses[False], rel=0.05)   # measured: within 2.3 %
    assert losses[True][-1] < 0.8 * losses[True][0]          # and it learns
    assert losses[True] != losses[False]                    # the uint8 path was taken
