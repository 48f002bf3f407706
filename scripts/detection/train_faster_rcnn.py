"""Train Faster-RCNN on Pascal VOC from one of our classification backbones (paper
section 6.1, Table 8).

Train on VOC 2007 trainval + 2012 trainval, evaluate on VOC 2007 test with the VOC07 11-point
mAP (difficult objects ignored); GluonCV's VOC recipe is the default (20 epochs, lr 0.001 per
image decayed by 10 at epochs 14 and 20, weight decay 5e-4, momentum 0.9, short side 600 /
max 1000) plus the linear warmup the paper takes from Detectron::

    python scripts/detection/prepare_voc.py --archives ~/Downloads
    python scripts/detection/train_faster_rcnn.py --backbone resnet50_v1d \\
        --backbone-params runs/r50d/checkpoint-best/net.params --num-gpus 8 --save-dir runs/frcnn

``--backbone-params`` takes a ``.params`` file of ``train_imagenet.py`` (or a checkpoint
directory, or its ``--save-dir``) or GluonCV's ``.params`` for the same model name. The same
script runs on one device, several devices, or under ``horovodrun`` with ``--horovod``.
Output in SAVE_DIR: ``train.log``, ``metrics.jsonl`` (one line per epoch), checkpoints
(``checkpoint-epochNNNN``, ``checkpoint-best``, resumable with ``--resume``) and
``results.json`` with the final mAP and the AP of every class.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

import argparse
import json
import math
import os
import pickle
import random
import time


import mxnet as mx
import numpy as np

from gluon_tricks import detection
from gluon_tricks.checkpoint import CheckpointManager
from gluon_tricks.data.base import derive_seed
from gluon_tricks.distributed import run_main
from gluon_tricks.lr_scheduler import LRScheduler, resolve_lr
from gluon_tricks.model_zoo import get_model_list
from gluon_tricks.optim import optimizer_params
from gluon_tricks.runlog import TrainingRun, add_run_args, append_jsonl, check_run_args, \
    resume_run, run_config, start_run


def parse_args(argv=None):
    """Command-line flags (GluonCV's ``train_faster_rcnn.py`` names where it has them)."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group('backbone')
    g.add_argument('--backbone', required=True,
                   help='zoo ResNet name, e.g. resnet50_v1b (B-standard) or resnet50_v1d')
    g.add_argument('--backbone-params', required=True,
                   help='classification checkpoint: .params of train_imagenet.py (or its '
                        'checkpoint dir / --save-dir) or GluonCV\'s for the same name')
    g.add_argument('--frozen-stages', type=int, default=1,
                   help='ResNet stages kept frozen besides the stem (GluonCV VOC: 1)')
    g = p.add_argument_group('data')
    g.add_argument('--dataset', default='voc', choices=['voc'], help='training data set')
    g.add_argument('--data-dir', default=os.path.join('~', '.mxnet', 'datasets', 'voc'),
                   help='VOC root holding VOC2007/ and VOC2012/ (prepare_voc.py --out)')
    g.add_argument('--train-splits', default='2007_trainval,2012_trainval',
                   help='training splits YEAR_NAME,... (paper: VOC07+12 trainval)')
    g.add_argument('--val-splits', default='2007_test', help='evaluation splits')
    g.add_argument('--short', type=int, default=600, help='shorter image side')
    g.add_argument('--max-size', type=int, default=1000, help='bound of the longer side')
    g.add_argument('--rpn-train-post-nms', type=int, default=2000,
                   help='RPN proposals kept per image in training (GluonCV VOC: 2000; small '
                        'images have fewer anchors: at most (short/16)^2 x 15)')
    g.add_argument('--rpn-test-post-nms', type=int, default=300,
                   help='RPN proposals kept per image at test time (GluonCV VOC: 300)')
    g.add_argument('--rcnn-num-samples', type=int, default=128,
                   help='RoIs per image sampled for the R-CNN head in training (GluonCV VOC: '
                        '128); layer4 runs on each of them')
    g.add_argument('-j', '--num-workers', dest='num_workers', type=int, default=4,
                   help='data loader worker processes')
    g = p.add_argument_group('optimization (defaults: GluonCV VOC recipe)')
    g.add_argument('--batch-size', type=int, default=1, help='images per device')
    g.add_argument('--num-gpus', type=int, default=0, help='GPUs per process; 0 = CPU')
    g.add_argument('--epochs', type=int, default=20, help='training epochs')
    g.add_argument('--lr', type=float, default=None,
                   help='learning rate; default --base-lr x global batch / --base-batch-size')
    g.add_argument('--base-lr', type=float, default=0.001,
                   help='lr for --base-batch-size images (GluonCV VOC: 0.001 for 1)')
    g.add_argument('--base-batch-size', type=int, default=1, help='batch of --base-lr')
    g.add_argument('--lr-decay', type=float, default=0.1, help='step decay factor')
    g.add_argument('--lr-decay-epoch', default='14,20', help='epochs of the lr decay')
    g.add_argument('--lr-warmup', type=int, default=500,
                   help='linear warmup iterations (Detectron; 0 disables, as GluonCV\'s VOC '
                        'default)')
    g.add_argument('--lr-warmup-factor', type=float, default=1. / 3.,
                   help='warmup starts at this fraction of the lr')
    g.add_argument('--momentum', type=float, default=0.9, help='SGD momentum')
    g.add_argument('--wd', type=float, default=5e-4, help='weight decay')
    g.add_argument('--optimizer', default='sgd', choices=['sgd', 'nag'], help='optimizer')
    g = p.add_argument_group('run')
    g.add_argument('--save-dir', default='faster_rcnn', help='checkpoints, metrics and log')
    g.add_argument('--save-interval', type=int, default=1, help='checkpoint every N epochs')
    g.add_argument('--val-interval', type=int, default=1,
                   help='evaluate every N epochs (and after the last)')
    g.add_argument('--resume', action='store_true',
                   help='continue from the latest checkpoint in --save-dir')
    add_run_args(g)
    g.add_argument('--log-interval', type=int, default=100, help='batches between log lines')
    g.add_argument('--logging-file', default=None, help='default SAVE_DIR/train.log')
    g.add_argument('--seed', type=int, default=233, help='seed of every random choice')
    g.add_argument('--horovod', action='store_true', help='Horovod data parallelism')
    g.add_argument('--kvstore', default=None,
                   help='kvstore for several local devices (default: device; not with '
                        '--horovod)')
    g.add_argument('--disable-hybridization', action='store_true', help='run imperatively')
    g.add_argument('--save-predictions', default=None,
                   help='write the final test predictions of this rank (pickle) to this file')
    g.add_argument('--verbose', action='store_true', help='log the trained parameters')
    args = p.parse_args(argv)
    check_run_args(p, args)
    if args.backbone.lower() not in get_model_list() or not args.backbone.startswith('resnet'):
        p.error('unknown --backbone %r; valid: %s' % (
            args.backbone, ', '.join(m for m in get_model_list() if m.startswith('resnet'))))
    try:
        args.lr_decay_epoch = [float(e) for e in args.lr_decay_epoch.split(',') if e.strip()]
        args.train_splits = detection.parse_voc_splits(args.train_splits)
        args.val_splits = detection.parse_voc_splits(args.val_splits)
    except ValueError as err:
        p.error(str(err))
    for flag in ('batch_size', 'epochs', 'short', 'max_size', 'save_interval', 'val_interval',
                 'log_interval', 'rpn_train_post_nms', 'rpn_test_post_nms', 'rcnn_num_samples'):
        if getattr(args, flag) < 1:
            p.error('--%s must be positive' % flag.replace('_', '-'))
    # GluonCV's RPN slices post-NMS proposals out of all anchors of the image: an image with
    # fewer anchors than that fails inside the network
    side = -(-min(args.short, args.max_size) // 16)
    anchors = side * side * 15
    for flag in ('rpn_train_post_nms', 'rpn_test_post_nms'):
        if getattr(args, flag) > anchors:
            p.error('--%s %d exceeds the %d anchors of a %dx%d image (--short %d): lower it '
                    'or raise --short' % (flag.replace('_', '-'), getattr(args, flag), anchors,
                                          args.short, args.short, args.short))
    return args


def _voc(args, splits):
    return detection.voc_dataset(args.data_dir, splits)


def _split_and_load(batch, devices):
    return [[x.as_in_context(c) for x, c in zip(part, devices)] if isinstance(part, (list, tuple))
            else [part.as_in_context(devices[0])] for part in batch]


def _json_ready(value):
    """NaN (the AP of a class without ground truth) becomes None, valid JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _hybridize(net, args):
    if not args.disable_hybridization:
        net.hybridize()  # also drops the cached graph of the other phase


def _scheduler(args, lr, iters_per_epoch):
    try:
        return LRScheduler('step', lr, iters_per_epoch, args.epochs,
                           warmup_epochs=args.lr_warmup / iters_per_epoch,
                           warmup_lr=lr * args.lr_warmup_factor,
                           step_epochs=args.lr_decay_epoch, step_factor=args.lr_decay)
    except ValueError as err:
        raise ValueError('%s (--lr-warmup %d iterations = %.2f epochs of %d iterations; lower '
                         '--lr-warmup or change --lr-decay-epoch)'
                         % (err, args.lr_warmup, args.lr_warmup / iters_per_epoch,
                            iters_per_epoch))


def main(argv=None):
    """Train, evaluate and report; returns the final evaluation (dict)."""
    from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
    from gluoncv.utils.metrics.rcnn import RCNNAccMetric, RPNAccMetric
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric

    args = parse_args(argv)
    dist, devices, local_batch, global_batch = start_run(args)
    log = dist.log
    mx.random.seed(derive_seed(args.seed, 0, 9, dist.rank))

    train_set, val_set = _voc(args, args.train_splits), _voc(args, args.val_splits)
    net = detection.build_faster_rcnn(args.backbone, args.backbone_params,
                                      classes=train_set.classes, short=args.short,
                                      max_size=args.max_size, ctx=devices,
                                      per_device_batch_size=args.batch_size,
                                      rpn_train_post_nms=args.rpn_train_post_nms,
                                      rpn_test_post_nms=args.rpn_test_post_nms,
                                      num_sample=args.rcnn_num_samples)
    log('backbone %s from %s (frozen BN statistics)' % (args.backbone, net.backbone_params_file))
    params = detection.trainable_params(net, args.frozen_stages)
    if args.verbose:
        log('trained parameters: %s' % ', '.join(params))
    log('fine-tuning %d parameter tensors: convolutions of stages %d-4, RPN and heads; the '
        'stem%s and all BatchNorm parameters stay frozen'
        % (len(params), args.frozen_stages + 1,
           ', stages 1-%d' % args.frozen_stages if args.frozen_stages else ''))
    train_data, sampler = detection.train_loader(net, train_set, args.batch_size, len(devices),
                                                 dist.size, dist.rank, args.seed,
                                                 args.num_workers)
    val_data = detection.val_loader(net, val_set, len(devices), dist.size, dist.rank,
                                    args.num_workers)
    iters_per_epoch = len(sampler)
    log('data: %d training images (%s), %d test images (%s); %d iterations of %d per epoch'
        % (len(train_set), args.train_splits, len(val_set), args.val_splits, iters_per_epoch,
           global_batch))
    lr, how = resolve_lr(args.lr, global_batch, args.base_lr, args.base_batch_size,
                         batch_description='%d per device x %d device(s) x %d worker(s)'
                                           % (args.batch_size, len(devices), dist.size))
    log(how)
    scheduler = _scheduler(args, lr, iters_per_epoch)
    dist.broadcast_parameters(net.collect_params())
    trainer = dist.make_trainer(params, args.optimizer,
                                optimizer_params(scheduler, momentum=args.momentum, wd=args.wd),
                                kvstore=args.kvstore)

    ckpt = CheckpointManager(args.save_dir) if dist.is_master else None
    best_map, result, partial, tic = -1.0, None, None, time.time()

    def checkpoint_state(epochs_done, batch):
        state = {'epoch': epochs_done, 'best_map': best_map, 'result': _json_ready(result),
                 'backbone': args.backbone, 'seed': args.seed,
                 'backbone_params': os.path.abspath(net.backbone_params_file),
                 'classes': list(val_set.classes)}
        if batch:   # mid-epoch: the sums of the running epoch, for its metrics line
            state['partial'] = {'sums': (sums + window).tolist(), 'seen': seen,
                                'rpn_acc': [rpn_acc.sum_metric, rpn_acc.num_inst],
                                'rcnn_acc': [rcnn_acc.sum_metric, rcnn_acc.num_inst],
                                'time': partial_time + time.time() - tic}
        return state

    config = run_config(args, lr=lr, global_batch=global_batch,
                        iters_per_epoch=iters_per_epoch)
    run = TrainingRun(args, dist, ckpt, net, trainer, iters_per_epoch, checkpoint_state, config)
    if args.resume:
        state = resume_run(args.save_dir, net, trainer, devices, dist, config, 'map',
                           {'lr_scheduler': scheduler, 'momentum': args.momentum,
                            'wd': args.wd})
        best_map, partial = state.get('best_map', -1.0), state.get('partial')
        run.resume_from(state)
    log('training: %s' % json.dumps(vars(args), sort_keys=True, default=str))

    task = ForwardBackwardTask(net, trainer, mx.gluon.loss.SigmoidBinaryCrossEntropyLoss(
        from_sigmoid=False), mx.gluon.loss.HuberLoss(rho=1. / 9.),
        mx.gluon.loss.SoftmaxCrossEntropyLoss(), mx.gluon.loss.HuberLoss(), 1.0, False)
    loss_names = ('rpn_conf', 'rpn_smoothl1', 'rcnn_ce', 'rcnn_smoothl1')
    metrics_path = os.path.join(args.save_dir, 'metrics.jsonl')
    voc_metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(val_set.classes))
    for epoch in range(run.start_epoch, args.epochs):
        start = run.start_batch(epoch)
        sampler.epoch, sampler.start_batch = epoch, start
        _hybridize(net, args)  # training and test graphs differ: a fresh cache each phase
        rpn_acc, rcnn_acc = RPNAccMetric(), RCNNAccMetric()
        sums, window = np.zeros(len(loss_names)), np.zeros(len(loss_names))
        tic = window_tic = time.time()
        seen = window_seen = 0
        partial_time = 0.0
        if start and partial:   # resumed mid-epoch: the sums of the batches before
            sums[:] = partial['sums']
            seen, partial_time = partial['seen'], partial['time']
            for metric, (total, count) in ((rpn_acc, partial['rpn_acc']),
                                           (rcnn_acc, partial['rcnn_acc'])):
                metric.sum_metric = metric.global_sum_metric = total
                metric.num_inst = metric.global_num_inst = count
        for i, batch in enumerate(train_data, start):
            # every random choice of a step derives from (seed, epoch, stream, rank, batch):
            # a run resumed at any batch repeats what the uninterrupted run did
            mx.random.seed(derive_seed(args.seed, epoch, 1, dist.rank, i))
            np.random.seed(derive_seed(args.seed, epoch, 2, dist.rank, i))
            random.seed(derive_seed(args.seed, epoch, 3, dist.rank, i))
            batch = _split_and_load(batch, devices)
            for shard in zip(*batch):
                out = task.forward_backward(shard)
                values = np.array([float(v.asscalar()) for v in out[:4]])
                if not np.all(np.isfinite(values)):
                    raise FloatingPointError(
                        'non-finite loss %s at epoch %d batch %d (lr %.5g); lower --lr or '
                        'raise --lr-warmup' % (dict(zip(loss_names, values)), epoch + 1, i + 1,
                                                trainer.learning_rate))
                window += values
                rpn_acc.update(*out[4])
                rcnn_acc.update(*out[6])
            trainer.step(local_batch)
            seen += local_batch
            window_seen += local_batch
            if (i + 1) % args.log_interval == 0 or i + 1 == iters_per_epoch:
                shards = window_seen / args.batch_size
                speed = window_seen * dist.size / max(time.time() - window_tic, 1e-9)
                log('epoch %d batch %d/%d: %.2f samples/s  lr %.5g  %s  rpn_acc %.3f  '
                    'rcnn_acc %.3f' % (epoch + 1, i + 1, iters_per_epoch, speed,
                                       trainer.learning_rate,
                                       '  '.join('%s %.4f' % (n, v / shards)
                                                 for n, v in zip(loss_names, window)),
                                       rpn_acc.get()[1], rcnn_acc.get()[1]))
                sums += window
                window[:] = 0
                window_seen, window_tic = 0, time.time()
            run.after_batch(epoch, i)
        train_time = partial_time + time.time() - tic
        record = {'epoch': epoch + 1, 'lr': trainer.learning_rate, 'epoch_time': train_time,
                  'samples_per_sec': seen * dist.size / max(train_time, 1e-9),
                  'rpn_acc': rpn_acc.get()[1], 'rcnn_acc': rcnn_acc.get()[1]}
        record.update({n: s / max(seen / args.batch_size, 1) for n, s in zip(loss_names, sums)})
        if (epoch + 1) % args.val_interval == 0 or epoch + 1 == args.epochs:
            _hybridize(net, args)
            result = detection.evaluate(net, val_data, devices, voc_metric, dist)
            record.update(map=result['map'], per_class_ap=_json_ready(result['per_class']),
                          eval_time=result['seconds'])
            log('epoch %d: VOC07 mAP %.4f on %d test images (%.1f s)'
                % (epoch + 1, result['map'], len(val_set), result['seconds']))
        log('epoch %d done in %.1f s, %.2f samples/s' % (epoch + 1, train_time,
                                                         record['samples_per_sec']))
        is_best = 'map' in record and record['map'] > best_map
        best_map = max(best_map, record.get('map', -1.0))
        if dist.is_master:
            append_jsonl(metrics_path, record)
        run.end_epoch(epoch, is_best, due=(epoch + 1) % args.save_interval == 0 or
                      epoch + 1 == args.epochs)
    run.close()

    predictions = [] if args.save_predictions else None
    if result is None or predictions is not None:
        _hybridize(net, args)
        result = detection.evaluate(net, val_data, devices, voc_metric, dist, predictions)
    log('final evaluation on %s (%d images), %s:\n%s'
        % (args.val_splits, len(val_set), args.backbone, detection.format_ap_table(result)))
    if dist.is_master:
        report = {'map': result['map'], 'per_class_ap': _json_ready(result['per_class']),
                  'backbone': args.backbone, 'backbone_params': args.backbone_params,
                  'epochs': args.epochs, 'best_map': max(best_map, result['map']),
                  'metric': 'VOC07 11-point mAP, IoU 0.5, difficult ignored',
                  'positives': result['positives'], 'detections': result['detections'],
                  'test_images': len(val_set)}
        with open(os.path.join(args.save_dir, 'results.json'), 'w') as f:
            json.dump(_json_ready(report), f, indent=1, sort_keys=True)
    if predictions is not None:
        with open(args.save_predictions, 'wb') as f:
            pickle.dump(predictions, f)
    return result


if __name__ == '__main__':
    run_main(main)
