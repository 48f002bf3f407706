"""FCN on ADE20K (section 6.2, Table 9) as a task of :func:`gluon_tricks.training.fit`: its
flags (:class:`SegmenterConfig`, :class:`ADE20KDataConfig`, GluonCV's ADE20K recipe in
:data:`DEFAULTS`) and :class:`SegmentationTask`. The network, the data set and the metric are
:mod:`gluon_tricks.segmentation`'s."""
import dataclasses
import os
from typing import Optional

import mxnet as mx
from mxnet.gluon import nn

from ..config import check_positive
from ..threads import data_workers
from ..segmentation import (SegmentationMetric, ade20k_dataset, build_fcn, evaluate,
                            train_loader, val_loader)
from ..sections import flag
from .backbone import BackboneConfig, DatasetConfig, workers_flag
from ..data.pipeline import SamplerLoader
from .task import Task

__all__ = ['SegmenterConfig', 'ADE20KDataConfig', 'DEFAULTS', 'SegmentationTask']


@dataclasses.dataclass
class SegmenterConfig(BackboneConfig):
    """FCN on a dilated classification backbone (section 6.2; GluonCV's ADE20K settings)."""

    aux: bool = flag(True, '--no-aux', action='store_false',
                     help='drop the auxiliary FCN head on stage 3 (default: on)')
    aux_weight: float = flag(0.5, type=float, help='weight of the auxiliary loss')
    syncbn: bool = flag(False, action='store_true',
                        help='SyncBatchNorm over the devices of this process')

    def check_with(self, cfg):
        if self.syncbn and cfg.run.horovod:
            raise ValueError('--syncbn synchronizes the devices of one process, not Horovod '
                             'ranks')


@dataclasses.dataclass
class ADE20KDataConfig(DatasetConfig):
    """ADE20K (SceneParsing) for FCN: GluonCV's sizes and validation modes."""

    data_dir: str = flag(os.path.join('~', '.mxnet', 'datasets', 'ade'),
                         help='folder holding ADEChallengeData2016 (prepare_ade20k.py --out)')
    base_size: int = flag(520, type=int, help='base image size')
    crop_size: int = flag(480, type=int, help='crop image size')
    eval_mode: str = flag('val', choices=['val', 'testval'],
                          help='val: center crops of --crop-size (GluonCV\'s validation in '
                               'training); testval: full images, one at a time')
    test_batch_size: int = flag(4, type=int, help='validation images per device (testval: 1)')
    num_workers: Optional[int] = workers_flag()

    def check(self):
        check_positive(self, 'base_size', 'crop_size', 'test_batch_size')
        if self.crop_size % 8:
            raise ValueError('--crop-size must be a multiple of 8 (the output stride), got %d'
                             % self.crop_size)
        if self.eval_mode == 'testval':
            self.test_batch_size = 1


#: GluonCV's ADE20K recipe: the defaults of the shared flags.
DEFAULTS = {'optim': dict(optimizer='sgd', batch_size=4, num_epochs=120, base_lr=0.01,
                          base_batch_size=16, lr_mode='poly', power=0.9, warmup_epochs=1.0,
                          wd=1e-4),
            'run': {'save_dir': 'fcn', 'log_interval': 20}}
MODEL_CONFIG, DATA_CONFIG = SegmenterConfig, ADE20KDataConfig


class SegmentationTask(Task):
    """FCN on ADE20K (section 6.2, Table 9) as a task of :func:`gluon_tricks.training.fit`:
    GluonCV's data, loss (``MixSoftmaxCrossEntropyLoss`` with the auxiliary head) and
    pixAcc/mIoU evaluation."""

    name = 'segmentation'
    best_key = 'mIoU'
    meters = ('loss',)

    def build_data(self, run):
        d, dist = run.cfg.data, run.dist
        self.train_set = ade20k_dataset(d.data_dir, 'train', 'train', d.base_size, d.crop_size)
        self.val_set = ade20k_dataset(d.data_dir, 'val', d.eval_mode, d.base_size, d.crop_size)
        workers, why = data_workers(d.num_workers)
        run.log('loader: ' + why)
        loader, sampler = train_loader(self.train_set, run.local_batch, dist.size, dist.rank,
                                       run.cfg.run.seed, workers)
        self.val_data = val_loader(self.val_set, d.test_batch_size * len(run.devices),
                                   dist.size, dist.rank, workers)
        run.derived['classes'] = self.train_set.num_class
        run.log('data: %d training and %d validation images; %d iterations of %d per epoch'
                % (len(self.train_set), len(self.val_set), len(sampler), run.global_batch))
        return SamplerLoader(loader, sampler), self.val_data

    def build_model(self, run):
        m = run.cfg.model
        norm_layer, norm_kwargs = nn.BatchNorm, None
        if m.syncbn:
            norm_layer = mx.gluon.contrib.nn.SyncBatchNorm
            norm_kwargs = {'num_devices': len(run.devices)}
        net = build_fcn(m.backbone, m.backbone_params, nclass=self.train_set.num_class,
                        aux=m.aux, base_size=run.cfg.data.base_size,
                        crop_size=run.cfg.data.crop_size, ctx=run.devices,
                        norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        run.log('backbone %s from %s (stages 3-4 dilated, output stride 8), %d classes'
                % (m.backbone, net.backbone_params_file, self.train_set.num_class))
        self.result = None
        return net

    def prepare(self, run):
        from gluoncv.loss import MixSoftmaxCrossEntropyLoss
        self.criterion = MixSoftmaxCrossEntropyLoss(run.cfg.model.aux,
                                                    aux_weight=run.cfg.model.aux_weight)
        self.metric = SegmentationMetric(self.train_set.num_class)

    def _hybridize(self, run):
        if run.cfg.model.mode == 'hybrid':
            run.net.hybridize()   # a fresh cached graph for each phase

    def start_epoch(self, run, epoch):
        self._hybridize(run)

    def train_step(self, run, batch, epoch, i, rng):
        data, target = batch
        xs = mx.gluon.utils.split_and_load(data, run.devices, even_split=False)
        ys = mx.gluon.utils.split_and_load(target, run.devices, even_split=False)
        with mx.autograd.record(True):
            losses = [self.criterion(*run.net(x), y) for x, y in zip(xs, ys)]
        mx.autograd.backward(losses)
        run.trainer.step(run.local_batch)
        sums = [loss.sum().as_in_context(run.devices[0]) for loss in losses]
        return [mx.nd.add_n(*sums) if len(sums) > 1 else sums[0]], data.shape[0]

    def summarize(self, sums, samples):
        return {'train_loss': sums[0] / max(samples, 1)}

    def evaluate(self, run, epoch=None):
        self._hybridize(run)
        mode = run.cfg.data.eval_mode
        self.result = evaluate(run.net, self.val_data, run.devices, self.metric, run.dist, mode)
        if epoch is not None:
            run.log('epoch %d: pixAcc %.4f mIoU %.4f on %d validation images (%s, %.1f s)'
                    % (epoch + 1, self.result['pixAcc'], self.result['mIoU'], len(self.val_set),
                       mode, self.result['seconds']))
        return {'pixAcc': self.result['pixAcc'], 'mIoU': self.result['mIoU'],
                'eval_time': self.result['seconds']}

    def results(self, run, last_eval, best):
        if self.result is None:   # resumed after the last epoch: evaluate the final model
            run.dist.broadcast_statistics(run.net)
            self.evaluate(run)
        r, m, cfg = self.result, self.metric, run.cfg
        run.log('final evaluation (%s, %d images), %s: pixAcc %.4f  mIoU %.4f'
                % (cfg.data.eval_mode, len(self.val_set), cfg.model.backbone, r['pixAcc'],
                   r['mIoU']))
        return {'pixAcc': r['pixAcc'], 'mIoU': r['mIoU'], 'best_mIoU': best,
                'per_class_iou': dict(zip(self.train_set.classes, r['iou'])),
                # the integer counts behind pixAcc/mIoU, summed over ranks
                'counts': {'correct': m.correct, 'labeled': m.labeled,
                           'inter': m.inter.tolist(), 'area_pred': m.area_pred.tolist(),
                           'area_label': m.area_label.tolist()},
                'backbone': cfg.model.backbone, 'backbone_params': cfg.model.backbone_params,
                'epochs': cfg.optim.num_epochs, 'eval_mode': cfg.data.eval_mode,
                'val_images': len(self.val_set)}

