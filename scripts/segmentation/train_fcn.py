"""Train FCN on ADE20K from one of our classification backbones (paper section 6.2, Table 9).

GluonCV's FCN with the backbone's stages 3 and 4 dilated (output stride 8) and the auxiliary
head on stage 3, 150 classes, base size 520 and crop 480, SGD with poly decay (power 0.9)
after a linear warmup; pixAcc and mIoU on the validation set after every ``--val-interval``
epochs::

    python scripts/segmentation/prepare_ade20k.py --archive ~/Downloads/ADEChallengeData2016.zip
    python scripts/segmentation/train_fcn.py --backbone resnet50_v1d \\
        --backbone-params runs/r50d/checkpoint-best/net.params --num-gpus 4 --save-dir runs/fcn

Defaults follow GluonCV's ADE20K FCN recipe (16 images per step as 4 GPUs x 4, lr 0.01 for
that batch, 120 epochs, weight decay 1e-4, auxiliary loss weight 0.5); the lr is scaled
linearly with the global batch unless ``--lr`` is given. One script for one device, several
devices and Horovod (``--horovod`` under ``horovodrun``). Output in SAVE_DIR: ``train.log``,
``metrics.jsonl``, checkpoints (``--resume``) and ``results.json`` (pixAcc, mIoU, per-class
IoU).
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

import argparse
import json
import os
import random
import time


import mxnet as mx
import numpy as np
from mxnet import autograd

from gluon_tricks import segmentation
from gluon_tricks.checkpoint import CheckpointManager
from gluon_tricks.data.base import derive_seed
from gluon_tricks.distributed import run_main
from gluon_tricks.lr_scheduler import LRScheduler, resolve_lr
from gluon_tricks.model_zoo import get_model_list
from gluon_tricks.optim import apply_no_bias_decay, optimizer_params
from gluon_tricks.runlog import TrainingRun, add_run_args, append_jsonl, check_run_args, \
    resume_run, run_config, start_run


def parse_args(argv=None):
    """Command-line flags (GluonCV's segmentation ``train.py`` names where it has them)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group('model')
    g.add_argument('--model', default='fcn', choices=['fcn'], help='segmentation model')
    g.add_argument('--backbone', required=True,
                   help='zoo ResNet name, e.g. resnet50_v1b (B-standard) or resnet50_v1d')
    g.add_argument('--backbone-params', required=True,
                   help='classification checkpoint: .params of train_imagenet.py (or its '
                        'checkpoint dir / --save-dir) or GluonCV\'s for the same name')
    g.add_argument('--no-aux', dest='aux', action='store_false',
                   help='drop the auxiliary FCN head on stage 3 (default: on)')
    g.add_argument('--aux-weight', type=float, default=0.5, help='weight of the auxiliary loss')
    g.add_argument('--syncbn', action='store_true',
                   help='SyncBatchNorm over the devices of this process')
    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='ade20k', choices=['ade20k'], help='data set')
    g.add_argument('--data-dir', default=os.path.join('~', '.mxnet', 'datasets', 'ade'),
                   help='folder holding ADEChallengeData2016 (prepare_ade20k.py --out)')
    g.add_argument('--base-size', type=int, default=520, help='base image size')
    g.add_argument('--crop-size', type=int, default=480, help='crop image size')
    g.add_argument('--eval-mode', default='val', choices=['val', 'testval'],
                   help='val: center crops of --crop-size (GluonCV\'s validation in training); '
                        'testval: full images, one at a time')
    g.add_argument('-j', '--workers', dest='num_workers', type=int, default=4,
                   help='data loader worker processes')
    g = p.add_argument_group('optimization (defaults: GluonCV ADE20K FCN recipe)')
    g.add_argument('--batch-size', type=int, default=4, help='training images per device')
    g.add_argument('--test-batch-size', type=int, default=4,
                   help='validation images per device (testval: 1)')
    g.add_argument('--num-gpus', type=int, default=0, help='GPUs per process; 0 = CPU')
    g.add_argument('--epochs', type=int, default=120, help='training epochs')
    g.add_argument('--lr', type=float, default=None,
                   help='learning rate; default --base-lr x global batch / --base-batch-size')
    g.add_argument('--base-lr', type=float, default=0.01, help='lr for --base-batch-size')
    g.add_argument('--base-batch-size', type=int, default=16, help='batch of --base-lr')
    g.add_argument('--power', type=float, default=0.9, help='exponent of the poly decay')
    g.add_argument('--warmup-epochs', type=float, default=1.0,
                   help='linear warmup epochs before the poly decay (GluonCV default: 0)')
    g.add_argument('--warmup-lr', type=float, default=0.0, help='lr at the start of warmup')
    g.add_argument('--momentum', type=float, default=0.9, help='SGD momentum')
    g.add_argument('--weight-decay', '--wd', dest='weight_decay', type=float, default=1e-4,
                   help='weight decay')
    g.add_argument('--no-wd', action='store_true',
                   help='no weight decay on biases and BN gamma/beta (selected by layer role)')
    g.add_argument('--optimizer', default='sgd', choices=['sgd', 'nag'], help='optimizer')
    g = p.add_argument_group('run')
    g.add_argument('--save-dir', default='fcn', help='checkpoints, metrics and log')
    g.add_argument('--save-interval', type=int, default=1, help='checkpoint every N epochs')
    g.add_argument('--val-interval', type=int, default=1,
                   help='evaluate every N epochs (and after the last)')
    g.add_argument('--resume', action='store_true',
                   help='continue from the latest checkpoint in --save-dir')
    add_run_args(g)
    g.add_argument('--log-interval', type=int, default=20, help='batches between log lines')
    g.add_argument('--logging-file', default=None, help='default SAVE_DIR/train.log')
    g.add_argument('--seed', type=int, default=0, help='seed of every random choice')
    g.add_argument('--horovod', action='store_true', help='Horovod data parallelism')
    g.add_argument('--kvstore', default=None,
                   help='kvstore for several local devices (default: device; not with '
                        '--horovod)')
    g.add_argument('--disable-hybridization', action='store_true', help='run imperatively')
    args = p.parse_args(argv)
    check_run_args(p, args)
    if args.backbone.lower() not in get_model_list() or not args.backbone.startswith('resnet'):
        p.error('unknown --backbone %r; valid: %s' % (
            args.backbone, ', '.join(m for m in get_model_list() if m.startswith('resnet'))))
    for flag in ('batch_size', 'test_batch_size', 'epochs', 'base_size', 'crop_size',
                 'save_interval', 'val_interval', 'log_interval'):
        if getattr(args, flag) < 1:
            p.error('--%s must be positive' % flag.replace('_', '-'))
    if args.crop_size % 8:
        p.error('--crop-size must be a multiple of 8 (the output stride), got %d'
                % args.crop_size)
    if args.eval_mode == 'testval':
        args.test_batch_size = 1
    if args.horovod and args.syncbn:
        p.error('--syncbn synchronizes the devices of one process, not Horovod ranks')
    return args


def _hybridize(net, args):
    if not args.disable_hybridization:
        net.hybridize()


def main(argv=None):
    """Train, evaluate and report; returns the final evaluation (dict)."""
    from gluoncv.loss import MixSoftmaxCrossEntropyLoss

    args = parse_args(argv)
    dist, devices, local_batch, global_batch = start_run(args)
    log = dist.log
    mx.random.seed(derive_seed(args.seed, 0, 9, dist.rank))

    root = args.data_dir
    train_set = segmentation.ade20k_dataset(root, 'train', 'train', args.base_size,
                                            args.crop_size)
    val_set = segmentation.ade20k_dataset(root, 'val', args.eval_mode, args.base_size,
                                          args.crop_size)
    norm_layer, norm_kwargs = mx.gluon.nn.BatchNorm, None
    if args.syncbn:
        norm_layer = mx.gluon.contrib.nn.SyncBatchNorm
        norm_kwargs = {'num_devices': len(devices)}
    net = segmentation.build_fcn(args.backbone, args.backbone_params,
                                 nclass=train_set.num_class, aux=args.aux,
                                 base_size=args.base_size, crop_size=args.crop_size,
                                 ctx=devices, norm_layer=norm_layer, norm_kwargs=norm_kwargs)
    log('backbone %s from %s (stages 3-4 dilated, output stride 8), %d classes'
        % (args.backbone, net.backbone_params_file, train_set.num_class))
    if args.no_wd:
        log('no bias decay: %s' % apply_no_bias_decay(net).summary())

    train_data, sampler = segmentation.train_loader(train_set, local_batch, dist.size,
                                                    dist.rank, args.seed, args.num_workers)
    val_data = segmentation.val_loader(val_set, args.test_batch_size * len(devices), dist.size,
                                       dist.rank, args.num_workers)
    iters_per_epoch = len(sampler)
    log('data: %d training and %d validation images; %d iterations of %d per epoch'
        % (len(train_set), len(val_set), iters_per_epoch, global_batch))
    lr, how = resolve_lr(args.lr, global_batch, args.base_lr, args.base_batch_size,
                         batch_description='%d per device x %d device(s) x %d worker(s)'
                                           % (args.batch_size, len(devices), dist.size))
    log(how)
    scheduler = LRScheduler('poly', lr, iters_per_epoch, args.epochs,
                            warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr,
                            power=args.power)
    dist.broadcast_parameters(net.collect_params())
    trainer = dist.make_trainer(net.collect_params(), args.optimizer,
                                optimizer_params(scheduler, momentum=args.momentum,
                                                 wd=args.weight_decay),
                                kvstore=args.kvstore)

    ckpt = CheckpointManager(args.save_dir) if dist.is_master else None
    best_miou, result, partial, tic = -1.0, None, None, time.time()

    def checkpoint_state(epochs_done, batch):
        state = {'epoch': epochs_done, 'best_miou': best_miou, 'result': result,
                 'backbone': args.backbone, 'seed': args.seed,
                 'backbone_params': os.path.abspath(net.backbone_params_file)}
        if batch:   # mid-epoch: the sums of the running epoch, for its metrics line
            state['partial'] = {'loss': loss_sum + window_loss, 'seen': seen + window_seen,
                                'time': partial_time + time.time() - tic}
        return state

    config = run_config(args, lr=lr, global_batch=global_batch,
                        iters_per_epoch=iters_per_epoch)
    run = TrainingRun(args, dist, ckpt, net, trainer, iters_per_epoch, checkpoint_state, config)
    if args.resume:
        state = resume_run(args.save_dir, net, trainer, devices, dist, config, 'mIoU',
                           {'lr_scheduler': scheduler, 'momentum': args.momentum,
                            'wd': args.weight_decay})
        best_miou, partial = state.get('best_miou', -1.0), state.get('partial')
        run.resume_from(state)
    log('training: %s' % json.dumps(vars(args), sort_keys=True, default=str))

    criterion = MixSoftmaxCrossEntropyLoss(args.aux, aux_weight=args.aux_weight)
    metric = segmentation.SegmentationMetric(train_set.num_class)
    metrics_path = os.path.join(args.save_dir, 'metrics.jsonl')
    for epoch in range(run.start_epoch, args.epochs):
        start = run.start_batch(epoch)
        sampler.epoch, sampler.start_batch = epoch, start
        _hybridize(net, args)
        tic = window_tic = time.time()
        loss_sum = window_loss = 0.0
        seen = window_seen = 0
        partial_time = 0.0
        if start and partial:   # resumed mid-epoch: the sums of the batches before
            loss_sum, seen, partial_time = partial['loss'], partial['seen'], partial['time']
        for i, (data, target) in enumerate(train_data, start):
            # every random choice of a step derives from (seed, epoch, stream, rank, batch):
            # a run resumed at any batch repeats what the uninterrupted run did
            mx.random.seed(derive_seed(args.seed, epoch, 1, dist.rank, i))
            np.random.seed(derive_seed(args.seed, epoch, 2, dist.rank, i))
            random.seed(derive_seed(args.seed, epoch, 3, dist.rank, i))
            xs = mx.gluon.utils.split_and_load(data, devices, even_split=False)
            ys = mx.gluon.utils.split_and_load(target, devices, even_split=False)
            with autograd.record(True):
                losses = [criterion(*net(x), y) for x, y in zip(xs, ys)]
            autograd.backward(losses)
            trainer.step(local_batch)
            batch_loss = sum(float(l.sum().asscalar()) for l in losses)
            if not np.isfinite(batch_loss):
                raise FloatingPointError('non-finite loss at epoch %d batch %d (lr %.5g); lower '
                                         '--lr or raise --warmup-epochs'
                                         % (epoch + 1, i + 1, trainer.learning_rate))
            window_loss += batch_loss
            window_seen += data.shape[0]
            if (i + 1) % args.log_interval == 0 or i + 1 == iters_per_epoch:
                speed = window_seen * dist.size / max(time.time() - window_tic, 1e-9)
                log('epoch %d batch %d/%d: %.2f samples/s  lr %.5g  loss %.4f'
                    % (epoch + 1, i + 1, iters_per_epoch, speed, trainer.learning_rate,
                       window_loss / max(window_seen, 1)))
                loss_sum += window_loss
                seen += window_seen
                window_loss, window_seen, window_tic = 0.0, 0, time.time()
            run.after_batch(epoch, i)
        train_time = partial_time + time.time() - tic
        record = {'epoch': epoch + 1, 'lr': trainer.learning_rate, 'epoch_time': train_time,
                  'train_loss': loss_sum / max(seen, 1),
                  'samples_per_sec': seen * dist.size / max(train_time, 1e-9)}
        if (epoch + 1) % args.val_interval == 0 or epoch + 1 == args.epochs:
            _hybridize(net, args)
            dist.broadcast_statistics(net)      # rank 0's BN statistics: the saved model
            result = segmentation.evaluate(net, val_data, devices, metric, dist, args.eval_mode)
            record.update(pixAcc=result['pixAcc'], mIoU=result['mIoU'],
                          eval_time=result['seconds'])
            log('epoch %d: pixAcc %.4f mIoU %.4f on %d validation images (%s, %.1f s)'
                % (epoch + 1, result['pixAcc'], result['mIoU'], len(val_set), args.eval_mode,
                   result['seconds']))
        log('epoch %d done in %.1f s, %.2f samples/s' % (epoch + 1, train_time,
                                                         record['samples_per_sec']))
        is_best = 'mIoU' in record and record['mIoU'] > best_miou
        best_miou = max(best_miou, record.get('mIoU', -1.0))
        if dist.is_master:
            append_jsonl(metrics_path, record)
        run.end_epoch(epoch, is_best, due=(epoch + 1) % args.save_interval == 0 or
                      epoch + 1 == args.epochs)
    run.close()

    if result is None:
        _hybridize(net, args)
        dist.broadcast_statistics(net)
        result = segmentation.evaluate(net, val_data, devices, metric, dist, args.eval_mode)
    log('final evaluation (%s, %d images), %s: pixAcc %.4f  mIoU %.4f'
        % (args.eval_mode, len(val_set), args.backbone, result['pixAcc'], result['mIoU']))
    if dist.is_master:
        report = {'pixAcc': result['pixAcc'], 'mIoU': result['mIoU'],
                  'per_class_iou': dict(zip(train_set.classes, result['iou'])),
                  # the integer counts behind pixAcc/mIoU, summed over ranks
                  'counts': {'correct': metric.correct, 'labeled': metric.labeled,
                             'inter': metric.inter.tolist(),
                             'area_pred': metric.area_pred.tolist(),
                             'area_label': metric.area_label.tolist()},
                  'backbone': args.backbone, 'backbone_params': args.backbone_params,
                  'epochs': args.epochs, 'eval_mode': args.eval_mode,
                  'val_images': len(val_set)}
        with open(os.path.join(args.save_dir, 'results.json'), 'w') as f:
            json.dump(report, f, indent=1, sort_keys=True)
    return result


if __name__ == '__main__':
    run_main(main)
