"""The image transforms (gluon_tricks.data.transforms): each color step of the training
augmentation against its equation, and the one validation transform shared by predict.py,
the loaders and the export."""
import os

import cv2
import mxnet as mx
import numpy as np

from gluon_tricks import data as gd
from helpers.data_trees import MEAN, STD, INPUT

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
