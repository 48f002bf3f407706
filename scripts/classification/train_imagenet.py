"""Train an ImageNet classifier with the paper's bag of tricks.

One training path for one device, several devices and Horovod (``--horovod`` under
``horovodrun``). Flags follow GluonCV's ``train_imagenet.py``; every constant of the paper is
a named flag whose default is the paper's baseline (section 2.1), and the tricks of
sections 3 and 5 are switched on by flags::

    # efficient setting (section 3) + cosine + label smoothing, 8 GPUs x 128
    python scripts/classification/train_imagenet.py --model resnet50_v1d --num-gpus 8 \\
        --batch-size 128 --dtype float16 --warmup-epochs 5 --last-gamma --no-wd \\
        --lr-mode cosine --label-smoothing --use-rec --data-dir ~/data/imagenet

The learning rate defaults to the linear scaling rule 0.1 x global_batch / 256; ``--lr``
overrides it.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

import argparse
import json
import os
import sys
import time

import mxnet as mx
import numpy as np

from gluon_tricks import data as gdata
from gluon_tricks.checkpoint import CheckpointManager
from gluon_tricks.data.base import derive_seed
from gluon_tricks.distributed import run_main
from gluon_tricks.engine import NonFiniteLossError, Recipe, TrainStep, evaluate
from gluon_tricks.lr_scheduler import MODES, LRScheduler, resolve_lr
from gluon_tricks.model_zoo import get_initializer, get_model, get_model_list
from gluon_tricks.model_zoo.io import load_model
from gluon_tricks.optim import apply_no_bias_decay, optimizer_params
from gluon_tricks.precision import LossScaler, cast_network, init_amp
from gluon_tricks.runlog import TrainingRun, add_run_args, append_jsonl, check_run_args, \
    resume_run, run_config, start_run

# independent random streams derived from (--seed, epoch, stream, rank[, batch])
_STREAM_INIT, _STREAM_MXNET, _STREAM_MIXUP = 0, 1, 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a classifier with the tricks of "Bag of Tricks for Image '
                    'Classification" (He et al., 2018).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    gdata.add_data_args(parser)
    g = parser.add_argument_group('model')
    g.add_argument('--model', default='resnet50_v1d',
                   help='get_model name: resnet{18,34,50,101,152}_v1{,b,c,d}, resnet*_v1e/s, '
                        'mobilenet1.0 ... mobilenet0.25, inceptionv3')
    g.add_argument('--mode', default='hybrid', choices=['hybrid', 'imperative'],
                   help='hybrid: hybridize with static_alloc/static_shape')
    g.add_argument('--last-gamma', action='store_true',
                   help='zero gamma (section 3.1): last BN of every residual block starts at 0')
    g.add_argument('--init', default='paper', choices=['paper', 'msra'],
                   help="paper: Xavier uniform (section 2.1); msra: GluonCV script's MSRAPrelu")
    g.add_argument('--dtype', default='float32', choices=['float32', 'float16', 'bfloat16'],
                   help='float16: FP16 network, FP32 BN and master weights (section 3.2); '
                        'bfloat16: through mxnet.contrib.amp (CPU)')
    g.add_argument('--loss-scale', default=None,
                   help="loss scaling: a number (static), 'dynamic', or 'none'; default "
                        "'dynamic' for float16, 'none' otherwise")
    g = parser.add_argument_group('optimization')
    g.add_argument('--batch-size', type=int, default=32,
                   help='batch per device (paper baseline: 32 x 8 GPUs = 256)')
    g.add_argument('--num-gpus', type=int, default=0, help='GPUs per process; 0 = CPU')
    g.add_argument('--num-epochs', type=int, default=120, help='paper: 120 (200 with mixup)')
    g.add_argument('--lr', type=float, default=None,
                   help='learning rate; default: linear scaling base-lr x global batch / '
                        'base-batch-size (section 3.1)')
    g.add_argument('--base-lr', type=float, default=0.1, help='lr for --base-batch-size')
    g.add_argument('--base-batch-size', type=int, default=256, help='batch of --base-lr')
    g.add_argument('--lr-mode', default='step', choices=list(MODES),
                   help='step (section 2.1) or cosine (section 5.1, eq. 1), poly, linear, '
                        'constant')
    g.add_argument('--lr-decay', type=float, default=0.1, help='step decay factor')
    g.add_argument('--lr-decay-epoch', default='30,60,90', help='epochs of step decay')
    g.add_argument('--warmup-epochs', type=float, default=0,
                   help='linear warmup epochs (section 3.1: 5)')
    g.add_argument('--warmup-lr', type=float, default=0.0, help='lr at the start of warmup')
    g.add_argument('--target-lr', type=float, default=0.0,
                   help='final lr of cosine/poly/linear decay')
    g.add_argument('--momentum', type=float, default=0.9, help='NAG momentum')
    g.add_argument('--wd', type=float, default=1e-4, help='weight decay')
    g.add_argument('--no-wd', action='store_true',
                   help='no bias decay (section 3.1): biases and BN gamma/beta get no weight '
                        'decay, selected by layer role')
    g = parser.add_argument_group('refinements (section 5)')
    g.add_argument('--label-smoothing', action='store_true', help='label smoothing (5.2)')
    g.add_argument('--smoothing-eps', type=float, default=0.1, help='epsilon of eq. (4)')
    g.add_argument('--smoothing-style', default='paper', choices=['paper', 'gluoncv'],
                   help="paper: eq. (4), eps/(K-1) off target; gluoncv: eps/K")
    g.add_argument('--mixup', action='store_true', help='mixup training (5.4)')
    g.add_argument('--mixup-alpha', type=float, default=0.2, help='Beta(alpha, alpha)')
    g.add_argument('--mixup-off-epoch', type=int, default=0,
                   help='train the last N epochs without mixup')
    g.add_argument('--teacher', default=None, help='distillation teacher model name (5.3)')
    g.add_argument('--teacher-params', default=None, help='teacher .params file')
    g.add_argument('--temperature', type=float, default=20.0, help='T of eq. (6)')
    g.add_argument('--hard-weight', type=float, default=None,
                   help="GluonCV's blend w*hard + (1-w)*T^2*soft; default: eq. (6), 1 and 1")
    g = parser.add_argument_group('run')
    g.add_argument('--save-dir', default='params', help='checkpoints, metrics and log')
    g.add_argument('--save-frequency', type=int, default=1,
                   help='write a checkpoint every N epochs (and after the last)')
    g.add_argument('--resume', action='store_true',
                   help='continue from the latest checkpoint in --save-dir')
    add_run_args(g)
    g.add_argument('--logging-file', default=None,
                   help='log file (default: SAVE_DIR/train.log)')
    g.add_argument('--log-interval', type=int, default=50, help='batches between log lines')
    g.add_argument('--seed', type=int, default=0, help='seed of every random choice')
    g.add_argument('--horovod', action='store_true',
                   help='Horovod data parallelism (launch with horovodrun)')
    g.add_argument('--kvstore', default=None,
                   help='kvstore for several local devices (default: device; not with '
                        '--horovod)')
    g.add_argument('--progress', default='auto', choices=['auto', 'bar', 'log'],
                   help='tqdm bar (auto: when stderr is a terminal) or log lines only')
    g.add_argument('--tensorboard', default=None, metavar='DIR',
                   help='also write the metrics.jsonl scalars as TensorBoard event files in '
                        'DIR (rank 0; needs tensorboardX, the [tensorboard] extra)')
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser, args):
    check_run_args(parser, args)
    if args.mixup and args.mixup_alpha <= 0:
        parser.error('--mixup-alpha must be positive (the Beta(alpha, alpha) of mixup; paper: '
                     '0.2), got %g' % args.mixup_alpha)
    if args.label_smoothing and not 0 <= args.smoothing_eps < 1:
        parser.error('--smoothing-eps must be in [0, 1) (paper: 0.1), got %g'
                     % args.smoothing_eps)
    if args.last_gamma and not args.model.lower().startswith('resnet'):
        parser.error('--last-gamma zero-initializes the last BatchNorm of residual blocks; '
                     '--model %s has none (use a resnet* model or drop --last-gamma)'
                     % args.model)
    if args.model.lower() not in get_model_list():
        parser.error('unknown --model %r; valid names: %s'
                     % (args.model, ', '.join(get_model_list())))
    if args.teacher and args.teacher.lower() not in get_model_list():
        parser.error('unknown --teacher %r; valid names: %s'
                     % (args.teacher, ', '.join(get_model_list())))
    if args.teacher and not args.teacher_params:
        parser.error('--teacher needs --teacher-params FILE (the teacher\'s trained weights)')
    if args.teacher_params and not os.path.isfile(args.teacher_params):
        parser.error('--teacher-params %s does not exist' % args.teacher_params)
    if args.batch_size < 1:
        parser.error('--batch-size must be positive, got %d' % args.batch_size)
    try:
        args.lr_decay_epoch = [float(e) for e in str(args.lr_decay_epoch).split(',') if e]
    except ValueError:
        parser.error('--lr-decay-epoch must be comma-separated epochs, got %r'
                     % args.lr_decay_epoch)
    if args.loss_scale is None:
        args.loss_scale = 'dynamic' if args.dtype == 'float16' else 'none'
    if args.loss_scale not in ('dynamic', 'none'):
        try:
            args.loss_scale = float(args.loss_scale)
        except ValueError:
            parser.error("--loss-scale must be a number, 'dynamic' or 'none', got %r"
                         % args.loss_scale)


def build_network(args, classes, devices):
    net = get_model(args.model, classes=classes, last_gamma=args.last_gamma) \
        if args.model.startswith('resnet') else get_model(args.model, classes=classes)
    cast_network(net, args.dtype)
    net.initialize(get_initializer(args.init), ctx=devices)
    if args.mode == 'hybrid':
        net.hybridize(static_alloc=True, static_shape=True)
    # finish deferred shapes so parameters can be broadcast, counted and decay-tagged
    size = args.input_size
    net(mx.nd.zeros((1, 3, size, size), ctx=devices[0],
                    dtype='float16' if args.dtype == 'float16' else 'float32'))
    return net


def build_teacher(args, classes, devices):
    teacher = load_model(args.teacher, args.teacher_params, ctx=devices, classes=classes)
    cast_network(teacher, args.dtype)
    for p in teacher.collect_params().values():
        p.grad_req = 'null'
    if args.mode == 'hybrid':
        teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


def main(argv=None):
    args = parse_args(argv)
    dist, devices, local_batch, global_batch = start_run(args)
    log = dist.log
    init_amp(args.dtype)  # bfloat16: must run before any network is built
    num_parts, part_index = dist.shard()

    train_loader, val_loader = gdata.build_loaders(
        args, batch_size=local_batch, num_parts=num_parts, part_index=part_index,
        seed=args.seed)
    classes = train_loader.num_classes
    iters_per_epoch = len(train_loader)
    log('data: %d classes; this rank (%d of %d) trains on %d samples (%d batches of %d per '
        'epoch) and validates %d' % (classes, dist.rank + 1, dist.size, train_loader.num_samples,
                                     iters_per_epoch, local_batch, val_loader.num_samples))
    lr, how = resolve_lr(args.lr, global_batch, args.base_lr, args.base_batch_size,
                         batch_description='%d per device x %d device(s) x %d worker(s)'
                                           % (args.batch_size, len(devices), dist.size))
    log(how)
    step_epochs = [e for e in args.lr_decay_epoch if e < args.num_epochs]
    if args.lr_mode == 'step' and len(step_epochs) < len(args.lr_decay_epoch):
        log('note: --lr-decay-epoch %s beyond --num-epochs %d are never reached'
            % ([e for e in args.lr_decay_epoch if e >= args.num_epochs], args.num_epochs))
    scheduler = LRScheduler(args.lr_mode, lr, iters_per_epoch, args.num_epochs,
                            warmup_epochs=args.warmup_epochs, warmup_lr=args.warmup_lr,
                            step_epochs=step_epochs, step_factor=args.lr_decay,
                            target_lr=args.target_lr)

    # the same initial weights for the same --seed (Horovod then broadcasts rank 0's)
    mx.random.seed(derive_seed(args.seed, _STREAM_INIT))
    np.random.seed(derive_seed(args.seed, _STREAM_INIT) % 2 ** 32)
    net = build_network(args, classes, devices)
    if args.no_wd:
        selection = apply_no_bias_decay(net)
        log('no bias decay: %s' % selection.summary())
    dist.broadcast_parameters(net.collect_params())
    trainer = dist.make_trainer(
        net.collect_params(), 'nag',
        optimizer_params(scheduler, momentum=args.momentum, wd=args.wd,
                         multi_precision=args.dtype == 'float16'),
        kvstore=args.kvstore)
    scaler = LossScaler(None if args.loss_scale == 'none' else args.loss_scale)
    teacher = build_teacher(args, classes, devices) if args.teacher else None
    if teacher is not None:
        dist.broadcast_parameters(teacher.collect_params())  # one teacher for every rank

    ckpt = CheckpointManager(args.save_dir) if dist.is_master else None
    best_top1, record, totals, tic = 0.0, None, None, time.time()

    def checkpoint_state(epochs_done, batch):
        state = {'epoch': epochs_done, 'best_top1': best_top1, 'model': args.model,
                 'classes': classes, 'loss_scaler': scaler.state_dict(), 'seed': args.seed,
                 'metrics': record}
        if batch:   # mid-epoch: the sums of the running epoch, for its metrics line
            read_window()
            state['partial'] = dict(totals, time=totals['time'] + time.time() - tic)
        return state

    config = run_config(args, lr=lr, global_batch=global_batch, classes=classes,
                        iters_per_epoch=iters_per_epoch)
    run = TrainingRun(args, dist, ckpt, net, trainer, iters_per_epoch, checkpoint_state, config)
    resumed_totals = None
    if args.resume:
        state = resume_run(args.save_dir, net, trainer, devices, dist, config, 'top1',
                           {'lr_scheduler': scheduler, 'momentum': args.momentum,
                            'wd': args.wd})
        scaler.load_state_dict(state.get('loss_scaler', {}))
        best_top1 = state.get('best_top1', 0.0)
        resumed_totals = state.get('partial')
        run.resume_from(state)

    recipe = Recipe(classes, args.smoothing_eps if args.label_smoothing else 0.0,
                    args.smoothing_style, args.mixup_alpha if args.mixup else 0.0,
                    args.mixup_off_epoch, args.num_epochs, args.temperature, args.hard_weight)
    step = TrainStep(net, trainer, devices, recipe, scaler, args.dtype, teacher)
    log('training %s: %s' % (args.model, json.dumps({k: v for k, v in vars(args).items()
                                                     if not k.startswith('_')},
                                                    sort_keys=True, default=str)))
    metrics_path = os.path.join(args.save_dir, 'metrics.jsonl')
    board = None
    if args.tensorboard and dist.is_master:
        from gluon_tricks.curves import TensorBoardWriter
        board = TensorBoardWriter(args.tensorboard)
    show_bar = dist.is_master and (args.progress == 'bar' or
                                   (args.progress == 'auto' and sys.stderr.isatty()))

    def read_window():
        """Fold the step's meters into the epoch totals (stop on a NaN/inf loss)."""
        m = step.read_meters()
        if m['first_bad_batch'] >= 0:
            raise NonFiniteLossError(
                'the training loss became NaN/inf at epoch %d, batch %d (lr %.5g); '
                'the last good checkpoint is %s. Lower --lr, add --warmup-epochs or '
                'check the data.' % (epoch + 1, m['first_bad_batch'] + 1,
                                     trainer.learning_rate, run.last_saved or 'none'))
        totals['loss'] += m['loss'] * m['samples']
        totals['acc'] += m['accuracy'] * m['samples']
        totals['samples'] += m['samples']
        return m

    for epoch in range(run.start_epoch, args.num_epochs):
        start = run.start_batch(epoch)
        train_loader.set_epoch(epoch, start_batch=start)
        tic = time.time()
        totals = dict(resumed_totals) if start and resumed_totals else \
            {'loss': 0.0, 'acc': 0.0, 'samples': 0, 'time': 0.0}
        window_tic = time.time()
        batches = iter(train_loader)
        if show_bar:
            from tqdm import tqdm
            batches = tqdm(batches, total=iters_per_epoch, initial=start,
                           desc='epoch %d' % (epoch + 1), leave=False)
        for i, batch in enumerate(batches, start):
            # Every random choice of a step derives from (seed, epoch, stream, rank, batch): a
            # run resumed at any batch repeats exactly what the uninterrupted run did.
            mx.random.seed(derive_seed(args.seed, epoch, _STREAM_MXNET, dist.rank, i))
            step.rng = np.random.RandomState(derive_seed(args.seed, epoch, _STREAM_MIXUP,
                                                         dist.rank, i))
            step(batch[0], batch[1], epoch, i)
            if (i + 1) % args.log_interval == 0 or i + 1 == iters_per_epoch:
                m = read_window()
                speed = m['samples'] * dist.size / max(time.time() - window_tic, 1e-9)
                log('epoch %d batch %d/%d: %.1f samples/s  lr %.5g  loss %.4f  train-acc %.4f%s'
                    % (epoch + 1, i + 1, iters_per_epoch, speed, trainer.learning_rate,
                       m['loss'], m['accuracy'],
                       '  skipped-steps %d  loss-scale %g' % (scaler.num_skipped, scaler.scale)
                       if scaler.mode != "off" else ''))
                window_tic = time.time()
            run.after_batch(epoch, i)
        train_time = totals['time'] + time.time() - tic
        epoch_loss, epoch_acc, epoch_samples = totals['loss'], totals['acc'], totals['samples']
        dist.broadcast_statistics(net)          # rank 0's BN statistics: the saved model
        val = evaluate(net, val_loader, devices, dist, args.dtype)
        is_best = val['top1'] > best_top1
        best_top1 = max(best_top1, val['top1'])
        record = {'epoch': epoch + 1, 'train_loss': epoch_loss / max(epoch_samples, 1),
                  'train_acc': epoch_acc / max(epoch_samples, 1), 'top1': val['top1'],
                  'top5': val['top5'], 'val_samples': val['total'],
                  'lr': trainer.learning_rate, 'epoch_time': train_time,
                  'samples_per_sec': epoch_samples * dist.size / max(train_time, 1e-9),
                  'skipped_steps': scaler.num_skipped}
        log('epoch %d done in %.1fs: val top-1 %.4f top-5 %.4f (%d images), %.1f samples/s'
            % (epoch + 1, train_time, val['top1'], val['top5'], val['total'],
               record['samples_per_sec']))
        if dist.is_master:
            append_jsonl(metrics_path, record)
            if board is not None:
                board.write(record)
        run.end_epoch(epoch, is_best, due=(epoch + 1) % args.save_frequency == 0 or
                      epoch + 1 == args.num_epochs)
    run.close()
    if board is not None:
        board.close()
    log('finished: best val top-1 %.4f' % best_top1)
    return best_top1


if __name__ == '__main__':
    run_main(main)
