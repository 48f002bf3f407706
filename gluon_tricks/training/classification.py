"""Image classification with the bag of tricks (sections 2-5) as a task of the loop."""
import dataclasses

import mxnet as mx

from ..engine import TrainStep, evaluate
from ..model_zoo import get_initializer, get_model
from ..model_zoo.io import load_model
from ..precision import LossScaler, cast_network, data_dtype, init_amp
from ..threads import data_workers
from .task import Task

__all__ = ['ClassificationTask']


def gpu_training(cfg):
    """Whether the run trains on GPUs (``--num-gpus`` > 0; emulated GPUs included): its
    training batches then come as uint8 images in page-locked memory and are normalized on
    the device (on CPU devices MXNet's broadcast operators are slower than the workers'
    numpy: docs/performance.md)."""
    return cfg.optim.num_gpus > 0


class ClassificationTask(Task):
    """ImageNet-style classification: the data of ``cfg.data``, the network of ``cfg.model``,
    the section-5 tricks of ``cfg.tricks`` (:class:`~gluon_tricks.engine.TrainStep`), top-1
    and top-5 on the validation set."""

    name = 'classification'
    best_key = 'top1'
    meters = ('loss', 'correct')
    uint8 = False   # training batches normalized on the device (GPU devices; build_data)

    def build_data(self, run):
        from ..data import build_loaders
        dist = run.dist
        num_parts, part_index = dist.shard()
        workers, why = data_workers(run.cfg.data.num_workers)
        if not run.cfg.data.synthetic_data:
            run.log('loader: ' + why)
        self.train_loader, self.val_loader = build_loaders(
            dataclasses.replace(run.cfg.data, num_workers=workers),
            batch_size=run.local_batch, num_parts=num_parts,
            part_index=part_index, seed=run.cfg.run.seed, pin_memory=gpu_training(run.cfg),
            uint8=gpu_training(run.cfg))
        self.uint8 = getattr(self.train_loader, 'uint8', False)
        self.classes = self.train_loader.num_classes
        run.derived['classes'] = self.classes
        run.log('data: %d classes; this rank (%d of %d) trains on %d samples (%d batches of %d '
                'per epoch) and validates %d'
                % (self.classes, dist.rank + 1, dist.size, self.train_loader.num_samples,
                   len(self.train_loader), run.local_batch, self.val_loader.num_samples))
        return self.train_loader, self.val_loader

    @property
    def multi_precision(self):
        return self.dtype == 'float16'

    def build_model(self, run):
        m = run.cfg.model
        # after the data (a missing file is reported before a missing CPU capability), before
        # any network is built or oneDNN primitive created
        if m.dtype == 'bfloat16':
            # bfloat16 convolutions on AMX tiles where the CPU has them (gluon_tricks/amx.py):
            # 1.6-1.7x float32 training on such CPUs
            from ..amx import enable_amx
            run.log(enable_amx()[1])
        init_amp(m.dtype)
        self.dtype, self.model_name = m.dtype, m.model
        net = get_model(m.model, classes=self.classes, last_gamma=m.last_gamma) \
            if m.model.startswith('resnet') else get_model(m.model, classes=self.classes)
        cast_network(net, m.dtype)
        net.initialize(get_initializer(m.init), ctx=run.devices)
        if m.mode == 'hybrid':
            net.hybridize(static_alloc=True, static_shape=True)
        # finish deferred shapes so parameters can be broadcast, counted and decay-tagged
        size = run.cfg.data.input_size
        net(mx.nd.zeros((1, 3, size, size), ctx=run.devices[0], dtype=data_dtype(m.dtype)))
        if m.initial_checkpoint:
            from ..finetune import load_initial, set_backbone_training
            load_initial(net, m.initial_checkpoint, run.devices, get_initializer(m.init),
                         run.log)
            if m.freeze_backbone or m.backbone_lr_mult != 1.0:
                n = set_backbone_training(net, m.freeze_backbone, m.backbone_lr_mult)
                run.log('%d backbone parameters %s' % (n, 'frozen: the classifier trains alone'
                                                       if m.freeze_backbone else
                                                       'at lr x %g' % m.backbone_lr_mult))
        return net

    def prepare(self, run):
        m, t = run.cfg.model, run.cfg.tricks
        self.scaler = LossScaler(None if m.loss_scale == 'none' else m.loss_scale)
        teacher = None
        if t.teacher:
            teacher = load_model(t.teacher, t.teacher_params, ctx=run.devices,
                                 classes=self.classes)
            cast_network(teacher, m.dtype)
            for p in teacher.collect_params().values():
                p.grad_req = 'null'
            if m.mode == 'hybrid':
                teacher.hybridize(static_alloc=True, static_shape=True)
            run.dist.broadcast_parameters(teacher.collect_params())  # one teacher for all ranks
        aug = run.cfg.data
        self.step = TrainStep(run.net, run.trainer, run.devices, t, self.classes,
                              run.cfg.optim.num_epochs, self.scaler, m.dtype, teacher,
                              teacher_size=t.teacher_input_size,
                              normalize=(aug.mean, aug.std) if self.uint8 else None)
        self.ema = None
        if t.model_ema:
            from ..ema import ModelEMA
            self.ema = ModelEMA(run.net, t.model_ema_decay)

    def stateful(self):
        out = {'loss_scaler': self.scaler}
        if self.ema is not None:
            out['model_ema'] = self.ema
        return out

    def train_step(self, run, batch, epoch, i, rng):
        sums = self.step(batch[0], batch[1], epoch, i, rng, batch[-1] if self.uint8 else None)
        if self.ema is not None:
            self.ema.update()
        return sums, batch[0].shape[0]

    def summarize(self, sums, samples):
        n = max(samples, 1)
        return {'train_loss': sums[0] / n, 'train_acc': sums[1] / n}

    def log_extra(self):
        if self.scaler.mode == 'off':
            return ''
        return '  skipped-steps %d  loss-scale %g' % (self.scaler.num_skipped, self.scaler.scale)

    def epoch_fields(self):
        return {'skipped_steps': self.scaler.num_skipped}

    def evaluate(self, run, epoch):
        val = evaluate(run.net, self.val_loader, run.devices, run.dist, self.dtype)
        run.log('epoch %d: val top-1 %.4f top-5 %.4f (%d images)'
                % (epoch + 1, val['top1'], val['top5'], val['total']))
        out = {'top1': val['top1'], 'top5': val['top5'], 'val_samples': val['total']}
        if self.ema is not None:
            self.ema.swap()
            try:
                ema = evaluate(run.net, self.val_loader, run.devices, run.dist, self.dtype)
            finally:
                self.ema.swap()
            run.log('epoch %d: model EMA val top-1 %.4f top-5 %.4f'
                    % (epoch + 1, ema['top1'], ema['top5']))
            out.update(top1_ema=ema['top1'], top5_ema=ema['top5'])
        return out

    def results(self, run, last_eval, best):
        run.log('finished: best val top-1 %.4f' % (best or 0.0))
        out = {'model': run.cfg.model.model, 'epochs': run.cfg.optim.num_epochs,
               'best_top1': best, 'classes': self.classes}
        out.update(last_eval or {})
        return out

    def checkpoint_info(self):
        return {'model': self.model_name, 'classes': self.classes}
