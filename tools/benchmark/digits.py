"""A small trained classifier on the embedded digits, quickly, for accuracy checks of
reduced-precision exports (``tests/test_quantize.py`` and ``scripts/classification/
benchmark.py --what digits``).

The digits demo (``scripts/classification/demo.py``) trains ResNet-18-D with every trick for
12 epochs; these helpers train a network in-process on the same images for a few hundred
steps with plain NAG and a cosine schedule (no augmentation: the validation transform for
training too), enough for about 98 % top-1 on the held-out 360 digits, so that a drop of one
point is measurable.
"""
import os

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from gluon_tricks.data import AugmentConfig, FolderLoader, make_digits_dataset
from gluon_tricks.data.digits import DigitsInfo
from gluon_tricks.model_zoo import get_initializer, get_model

__all__ = ['digits_arrays', 'train_quick', 'top1']


def digits_arrays(root, input_size=16, image_size=None):
    """``(x_train, y_train, x_val, y_val, info)`` of the digits written to ``root`` (with
    :func:`gluon_tricks.data.make_digits_dataset`, reused when present), decoded through the
    validation transform at ``input_size`` (crop ratio 1: the images are ``image_size``
    squares, default ``input_size``)."""
    image_size = image_size or input_size
    train_dir, val_dir = os.path.join(root, 'train'), os.path.join(root, 'val')
    if os.path.isdir(train_dir) and os.path.isdir(val_dir) and os.listdir(val_dir):
        classes = sorted(os.listdir(train_dir))
        info = DigitsInfo(root, train_dir, val_dir, None, None, classes)
    else:
        info = make_digits_dataset(root, image_size=image_size)
    aug = AugmentConfig(input_size=input_size, crop_ratio=input_size / float(image_size))
    out = []
    for d in (info.train_dir, info.val_dir):
        loader = FolderLoader(d, batch_size=256, train=False, aug=aug, num_workers=0)
        xs, ys = zip(*[(x.asnumpy(), y.asnumpy()) for x, y in loader])
        out += [np.concatenate(xs), np.concatenate(ys).astype(np.int64)]
    return tuple(out) + (info,)


def train_quick(x, y, model='resnet18_v1b', steps=120, batch_size=128, lr=0.4, seed=0,
                ctx=None):
    """Train ``model`` (our zoo, paper init) on arrays ``x, y`` for ``steps`` steps of random
    batches: NAG (momentum 0.9, wd 1e-4), 10 % linear warmup, cosine decay. Returns the
    hybridized network (float32)."""
    ctx = ctx or mx.cpu()
    mx.random.seed(seed)
    rng = np.random.RandomState(seed)
    net = get_model(model, classes=int(y.max()) + 1)
    net.initialize(get_initializer('paper'), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    sched = mx.lr_scheduler.CosineScheduler(steps, lr, 0.0, warmup_steps=max(1, steps // 10))
    trainer = gluon.Trainer(net.collect_params(), 'nag',
                            {'learning_rate': lr, 'momentum': 0.9, 'wd': 1e-4,
                             'lr_scheduler': sched})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for _ in range(steps):
        idx = rng.randint(0, len(x), batch_size)
        data, label = mx.nd.array(x[idx], ctx=ctx), mx.nd.array(y[idx], ctx=ctx)
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        trainer.step(batch_size)
    mx.nd.waitall()
    return net


def top1(net, x, y, batch_size=120, ctx=None):
    """Top-1 accuracy of ``net`` (a block called on float32 batches) on arrays ``x, y``."""
    ctx = ctx or mx.cpu()
    pred = [net(mx.nd.array(x[i:i + batch_size], ctx=ctx)).asnumpy().argmax(1)
            for i in range(0, len(x), batch_size)]
    return float((np.concatenate(pred) == y).mean())
