"""Worker for tests/test_distributed.py: run under `horovodrun -np 2 --gloo` (or plain python).

    python tests/helpers/dist_worker.py single OUT   # one process: batch 2b on one device,
                                                    # and 2 CPU devices x b (multi-device path)
    horovodrun -np 2 --gloo python tests/helpers/dist_worker.py ranks OUT   # two ranks x b
    horovodrun -np 2 --gloo python tests/helpers/dist_worker.py fail OUT [--thread] [--no-wrap]

(``fail --thread --no-wrap`` hangs until killed: without run_main the failing rank cannot exit
while a non-daemon thread lives, and the other rank waits in its collective forever.)

Every scenario goes through the same `train()` loop and `DistContext`, exactly as the training
script does; only the DistContext mode and the device list differ.  Each process writes its
results to OUT (``<name>_rank<r>.npz`` / ``rank<r>.json``); the test compares them.
"""
import argparse
import json
import os
import sys
import threading
import time

import numpy as np
import mxnet as mx
from mxnet import autograd, gluon

from gluon_tricks.distributed import DistContext
from gluon_tricks.errors import run_main

# The equivalence problem: N_TRAIN samples, global batch 2 * B, STEPS steps (one epoch).
B, STEPS, N_TRAIN, N_VAL, CLASSES = 8, 6, 96, 50, 10
OPT = 'nag'
OPT_PARAMS = {'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-3}


def dataset():
    """Deterministic data (identical in every process): 8x8 one-channel images whose labels
    come from a fixed random linear teacher, so accuracy counts are not trivial."""
    rs = np.random.RandomState(0)
    x = rs.normal(size=(N_TRAIN + N_VAL, 1, 8, 8)).astype('float32')
    teacher = rs.normal(size=(64, CLASSES)).astype('float32')
    y = (x.reshape(len(x), -1) @ teacher).argmax(1).astype('float32')
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def small_net():
    """Conv + BN (frozen statistics) + Dense: per-sample gradients are independent of the
    batch composition, so 2 x b and 1 x 2b are mathematically the same update."""
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, padding=1, in_channels=1),
            gluon.nn.BatchNorm(use_global_stats=True, in_channels=4),
            gluon.nn.Activation('relu'),
            gluon.nn.MaxPool2D(2),
            gluon.nn.Flatten(),
            gluon.nn.Dense(16, activation='relu', in_units=64),
            gluon.nn.Dense(CLASSES, in_units=16))
    return net


def no_bias_decay(net):
    for name, p in net.collect_params().items():
        if name.endswith(('bias', 'gamma', 'beta')):
            p.wd_mult = 0.0


def flat_params(net):
    """Parameter values by structural name ('0.weight', ...), comparable across processes."""
    return {k: v.data(v.list_ctx()[0]).asnumpy()
            for k, v in net._collect_params_with_prefix().items()}


def checksum(net):
    return float(sum(np.abs(v).sum() for v in flat_params(net).values()))


def train(dist, ctx, per_device_batch, net, x, y, steps, fail_at=None):
    """The one training loop: each process takes its shard of every global batch."""
    trainer = dist.make_trainer(net.collect_params(), OPT, OPT_PARAMS)
    local = dist.local_batch_size(per_device_batch, len(ctx))
    glob = dist.global_batch_size(per_device_batch, len(ctx))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for step in range(steps):
        if fail_at is not None and step == fail_at:
            raise RuntimeError('injected failure at step %d' % step)
        start = step * glob + dist.rank * local
        xb = gluon.utils.split_and_load(mx.nd.array(x[start:start + local]), ctx)
        yb = gluon.utils.split_and_load(mx.nd.array(y[start:start + local]), ctx)
        with autograd.record():
            ls = [loss_fn(net(a), b) for a, b in zip(xb, yb)]
        autograd.backward(ls)
        trainer.step(local)
        losses.append(float(sum(l.sum().asscalar() for l in ls)))
    return trainer, losses


def evaluate(dist, net, ctx, xv, yv):
    """Accuracy counts of this process's validation shard, summed over ranks."""
    num_parts, part_index = dist.shard()
    xs, ys = xv[part_index::num_parts], yv[part_index::num_parts]
    out = net(mx.nd.array(xs, ctx=ctx[0]))
    correct = int((out.argmax(1).asnumpy() == ys).sum())
    loss = float(gluon.loss.SoftmaxCrossEntropyLoss()(out, mx.nd.array(ys, ctx=ctx[0]))
                 .sum().asscalar())
    local = [correct, len(ys)]
    return local, dist.allreduce_sum(local).tolist(), float(dist.allreduce_sum(loss))


def equivalence(dist, ctx, per_device_batch, out, tag):
    """Init on every process from its own seed (rank 0 and the single process share seed
    1000), broadcast, train one epoch, evaluate; save parameters and counts."""
    x, y, xv, yv = dataset()
    mx.random.seed(1000 + dist.rank)
    net = small_net()
    net.initialize(mx.init.Xavier(), ctx=ctx)
    no_bias_decay(net)
    before = checksum(net)
    dist.broadcast_parameters(net.collect_params())
    after = checksum(net)
    net.hybridize()
    _, losses = train(dist, ctx, per_device_batch, net, x, y, STEPS)
    np.savez(os.path.join(out, 'equiv_%s_rank%d.npz' % (tag, dist.rank)), **flat_params(net))
    local, summed, loss_sum = evaluate(dist, net, ctx, xv, yv)
    return {'checksum_before_broadcast': before, 'checksum_after_broadcast': after,
            'train_losses': losses, 'val_local': local, 'val_sum': summed,
            'val_loss_sum': loss_sum}


def deferred_sync(dist, out):
    """Deferred-init parameters (shapes unknown) broadcast before the first forward, then
    DistributedTrainer steps on *different* data per rank."""
    ctx = dist.devices(0)
    mx.random.seed(7 + dist.rank)
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(32, activation='relu'), gluon.nn.Dense(CLASSES))
    net.initialize(mx.init.Xavier(), ctx=ctx)
    net.hybridize()
    deferred = [k for k, p in net.collect_params().items() if p._data is None]
    dist.broadcast_parameters(net.collect_params())   # broadcast happens in the first forward
    rs = np.random.RandomState(100 + dist.rank)       # rank-specific data
    x = rs.normal(size=(5 * 12, 20)).astype('float32')
    y = rs.randint(0, CLASSES, size=len(x)).astype('float32')
    first = {}

    def hook():
        first.update(flat_params(net))
    trainer = dist.make_trainer(net.collect_params(), 'sgd',
                                {'learning_rate': 0.2, 'momentum': 0.9, 'wd': 1e-3})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for i in range(5):
        xb, yb = mx.nd.array(x[i * 12:(i + 1) * 12]), mx.nd.array(y[i * 12:(i + 1) * 12])
        with autograd.record():
            loss = loss_fn(net(xb), yb)
        loss.backward()
        if i == 0:
            hook()   # parameters as initialized + broadcast, before the first update
        trainer.step(len(xb))
        losses.append(float(loss.sum().asscalar()))
    np.savez(os.path.join(out, 'sync_init_rank%d.npz' % dist.rank), **first)
    np.savez(os.path.join(out, 'sync_final_rank%d.npz' % dist.rank), **flat_params(net))
    return {'deferred_before_broadcast': deferred, 'sync_losses': losses}


def fp16_multi_precision(dist):
    """float16 weights with a float32 master copy, one weight with wd_mult=0 (no bias decay):
    the trainer must keep both settings; the gradient of rank r is 0.25 * (r + 1)."""
    w = gluon.Parameter('w', shape=(4,), dtype='float16', init=mx.init.Constant(1.0))
    b = gluon.Parameter('b', shape=(4,), dtype='float16', init=mx.init.Constant(1.0),
                        wd_mult=0.0)
    for p in (w, b):
        p.initialize(ctx=mx.cpu())
    trainer = dist.make_trainer({'w': w, 'b': b}, 'nag',
                                {'learning_rate': 0.5, 'momentum': 0.9, 'wd': 0.1,
                                 'multi_precision': True})
    g = 0.25 * (dist.rank + 1)
    with autograd.record():
        loss = (w.data() * g).sum() + (b.data() * 0).sum()
    loss.backward()
    trainer.step(1)
    states = [trainer._updaters[0].states[i] for i in sorted(trainer._updaters[0].states)]
    return {'fp16_w': w.data().asnumpy().astype(float).tolist(),
            'fp16_b': b.data().asnumpy().astype(float).tolist(),
            'fp16_w_dtype': str(w.data().dtype.__name__),
            'master_dtypes': [str(s[0].dtype.__name__) for s in states],
            'trainer_class': type(trainer).__name__}


def scenario_ranks(args):
    dist = DistContext(horovod=True)
    res = {'rank': dist.rank, 'size': dist.size, 'local_rank': dist.local_rank,
           'local_size': dist.local_size, 'is_master': dist.is_master,
           'shard': list(dist.shard()), 'devices': [str(c) for c in dist.devices(0)],
           'global_batch': dist.global_batch_size(B, 1),
           'local_batch': dist.local_batch_size(B, 1)}
    state = {'epoch': 7, 'from_rank': dist.rank, 'arr': np.arange(5) * (dist.rank + 1)}
    got = dist.broadcast_object(state)
    res['bcast_obj'] = {'epoch': got['epoch'], 'from_rank': got['from_rank'],
                        'arr': got['arr'].tolist()}
    res.update(equivalence(dist, dist.devices(0), B, args.out, 'hvd'))
    res.update(deferred_sync(dist, args.out))
    res.update(fp16_multi_precision(dist))
    # barrier: rank 1 arrives 1.5 s late; rank 0 must wait for it
    if dist.rank == 1:
        time.sleep(1.5)
    t = time.time()
    dist.barrier()
    res['barrier_wait'] = time.time() - t
    with open(os.path.join(args.out, 'rank%d.json' % dist.rank), 'w') as f:
        json.dump(res, f)
    dist.log('ranks scenario done')


def scenario_single(args):
    dist = DistContext(horovod=False)
    res = {'one_device': equivalence(dist, [mx.cpu()], 2 * B, args.out, 'single'),
           'two_devices': equivalence(dist, [mx.cpu(0), mx.cpu(1)], B, args.out, 'multidev')}
    res['fp16'] = fp16_multi_precision(dist)
    with open(os.path.join(args.out, 'single.json'), 'w') as f:
        json.dump(res, f)


def scenario_fail(args):
    """Both ranks train; rank 1 raises at step 2 while rank 0 goes on into the collectives of
    its next step.  With --thread rank 1 also has a live non-daemon thread (a prefetcher,
    say), which would keep a plainly exiting Python process alive forever."""
    dist = DistContext(horovod=True)
    if args.thread and dist.rank == 1:
        threading.Thread(target=time.sleep, args=(3600,), name='prefetcher').start()
    x, y, _, _ = dataset()
    mx.random.seed(1)
    net = small_net()
    net.initialize(mx.init.Xavier())
    dist.broadcast_parameters(net.collect_params())
    if dist.rank == 1:
        train(dist, [mx.cpu()], 4, net, x, y, 3, fail_at=2)
    else:   # rank 0 keeps training: its step-2 allreduce has no partner any more
        train(dist, [mx.cpu()], 4, net, x, y, STEPS)
        time.sleep(30)   # if the collectives did not fail, the launcher has to kill us
    dist.log('rank %d finished without error (unexpected)' % dist.rank, all_ranks=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('scenario', choices=['ranks', 'single', 'fail'])
    parser.add_argument('out')
    parser.add_argument('--thread', action='store_true')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    {'ranks': scenario_ranks, 'single': scenario_single, 'fail': scenario_fail}[
        args.scenario](args)


if __name__ == '__main__':
    if '--no-wrap' in sys.argv:   # for reproducing the hang run_main prevents (see fail)
        sys.argv.remove('--no-wrap')
        main()
    else:
        run_main(main)
