"""Faster-RCNN on Pascal VOC (section 6.1, Table 8) as a task of
:func:`gluon_tricks.training.fit`: its flags (:class:`DetectorConfig`, :class:`VOCDataConfig`,
GluonCV's VOC recipe in :data:`DEFAULTS`) and :class:`DetectionTask`. The detector, the data
set and the VOC07 evaluation are :mod:`gluon_tricks.detection`'s."""
import dataclasses
import math
import os
import pickle
from typing import Optional

import mxnet as mx

from ..errors import ConfigError
from ..config import check_positive
from ..threads import data_workers
from ..data import ShardBatchSampler
from ..detection import (build_faster_rcnn, evaluate, format_ap_table, parse_voc_splits,
                         train_loader, trainable_params, val_loader, voc_dataset)
from ..sections import flag
from .backbone import BackboneConfig, DatasetConfig, workers_flag
from ..data.pipeline import SamplerLoader
from .task import Task

__all__ = ['DetectorConfig', 'VOCDataConfig', 'DEFAULTS', 'DetectionTask']


@dataclasses.dataclass
class DetectorConfig(BackboneConfig):
    """Faster-RCNN on a classification backbone (section 6.1; GluonCV's VOC settings)."""

    frozen_stages: int = flag(1, type=int,
                              help='ResNet stages kept frozen besides the stem (GluonCV VOC: 1)')
    rpn_train_post_nms: int = flag(2000, type=int,
                                   help='RPN proposals kept per image in training (GluonCV VOC: '
                                        '2000; small images have fewer anchors: at most '
                                        '(short/16)^2 x 15)')
    rpn_test_post_nms: int = flag(300, type=int,
                                  help='RPN proposals kept per image at test time (GluonCV '
                                       'VOC: 300)')
    rcnn_num_samples: int = flag(128, type=int,
                                 help='RoIs per image sampled for the R-CNN head in training '
                                      '(GluonCV VOC: 128); layer4 runs on each of them')

    def check(self):
        super().check()
        check_positive(self, 'rpn_train_post_nms', 'rpn_test_post_nms', 'rcnn_num_samples')

    def check_with(self, cfg):
        # GluonCV's RPN slices post-NMS proposals out of all anchors of the image
        side = -(-min(cfg.data.short, cfg.data.max_size) // 16)
        anchors = side * side * 15
        for name in ('rpn_train_post_nms', 'rpn_test_post_nms'):
            if getattr(self, name) > anchors:
                raise ValueError(
                    '--%s %d exceeds the %d anchors of a %dx%d image (--short %d): lower '
                    'it or raise --short' % (name.replace('_', '-'), getattr(self, name),
                                             anchors, cfg.data.short, cfg.data.short,
                                             cfg.data.short))


@dataclasses.dataclass
class VOCDataConfig(DatasetConfig):
    """Pascal VOC for Faster-RCNN (paper: train VOC07+12 trainval, test VOC07 test)."""

    data_dir: str = flag(os.path.join('~', '.mxnet', 'datasets', 'voc'),
                         help='VOC root holding VOC2007/ and VOC2012/ (prepare_voc.py --out)')
    train_splits: str = flag('2007_trainval,2012_trainval',
                             help='training splits YEAR_NAME,... (paper: VOC07+12 trainval)')
    val_splits: str = flag('2007_test', help='evaluation splits')
    short: int = flag(600, type=int, help='shorter image side')
    max_size: int = flag(1000, type=int, help='bound of the longer side')
    num_workers: Optional[int] = workers_flag()

    def check(self):
        parse_voc_splits(self.train_splits)
        parse_voc_splits(self.val_splits)
        check_positive(self, 'short', 'max_size')


#: GluonCV's VOC recipe: the defaults of the shared flags.
DEFAULTS = {'optim': dict(optimizer='sgd', batch_size=1, num_epochs=20, base_lr=0.001,
                          base_batch_size=1, lr_mode='step', lr_decay_epoch=(14.0, 20.0),
                          warmup_iters=500, warmup_factor=1. / 3., wd=5e-4),
            'run': {'save_dir': 'faster_rcnn', 'log_interval': 100}}
MODEL_CONFIG, DATA_CONFIG = DetectorConfig, VOCDataConfig


class DetectionTask(Task):
    """Faster-RCNN on Pascal VOC (section 6.1, Table 8) as a task of
    :func:`gluon_tricks.training.fit`: GluonCV's transforms, losses
    (``ForwardBackwardTask``) and VOC07 mAP."""

    name = 'detection'
    best_key = 'map'
    losses = ('rpn_conf', 'rpn_smoothl1', 'rcnn_ce', 'rcnn_smoothl1')
    meters = losses + ('rpn_correct', 'rpn_count', 'rcnn_correct', 'rcnn_count')

    def build_data(self, run):
        d = run.cfg.data
        self.train_splits = parse_voc_splits(d.train_splits)
        self.val_splits = parse_voc_splits(d.val_splits)
        self.train_set = voc_dataset(d.data_dir, self.train_splits)
        self.val_set = voc_dataset(d.data_dir, self.val_splits)
        run.derived['classes'] = len(self.train_set.classes)
        # the loaders need the network (anchors, RPN targets): made in build_model
        self.loader = SamplerLoader(None, ShardBatchSampler(
            len(self.train_set), run.local_batch, True, run.dist.size, run.dist.rank,
            run.cfg.run.seed, last_batch='discard'))
        if len(self.loader) == 0:
            raise ConfigError('%d training images give no batch of %d on each of %d rank(s)'
                             % (len(self.train_set), run.local_batch, run.dist.size))
        run.log('data: %d training images (%s), %d test images (%s); %d iterations of %d per '
                'epoch' % (len(self.train_set), self.train_splits, len(self.val_set),
                           self.val_splits, len(self.loader), run.global_batch))
        return self.loader, None

    def build_model(self, run):
        m, d = run.cfg.model, run.cfg.data
        net = build_faster_rcnn(m.backbone, m.backbone_params, classes=self.train_set.classes,
                                short=d.short, max_size=d.max_size, ctx=run.devices,
                                per_device_batch_size=run.cfg.optim.batch_size,
                                rpn_train_post_nms=m.rpn_train_post_nms,
                                rpn_test_post_nms=m.rpn_test_post_nms,
                                num_sample=m.rcnn_num_samples)
        run.log('backbone %s from %s (frozen BN statistics)'
                % (m.backbone, net.backbone_params_file))
        workers, why = data_workers(d.num_workers)
        run.log('loader: ' + why)
        self.loader.loader, self.loader.sampler = train_loader(
            net, self.train_set, run.cfg.optim.batch_size, len(run.devices), run.dist.size,
            run.dist.rank, run.cfg.run.seed, workers)
        self.val_data = val_loader(net, self.val_set, len(run.devices), run.dist.size,
                                   run.dist.rank, workers)
        self.result, self.per_device = None, run.cfg.optim.batch_size
        return net

    def trainable_params(self, run):
        frozen = run.cfg.model.frozen_stages
        params = trainable_params(run.net, frozen)
        if run.cfg.run.verbose:
            run.log('trained parameters: %s' % ', '.join(params))
        run.log('fine-tuning %d parameter tensors: convolutions of stages %d-4, RPN and heads; '
                'the stem%s and all BatchNorm parameters stay frozen'
                % (len(params), frozen + 1, ', stages 1-%d' % frozen if frozen else ''))
        return params

    def prepare(self, run):
        from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
        from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
        loss = mx.gluon.loss
        self.step = ForwardBackwardTask(
            run.net, run.trainer, loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
            loss.HuberLoss(rho=1. / 9.), loss.SoftmaxCrossEntropyLoss(), loss.HuberLoss(), 1.0,
            False)
        self.metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(self.val_set.classes))

    def _hybridize(self, run):
        if run.cfg.model.mode == 'hybrid':
            run.net.hybridize()   # training and test graphs differ: a fresh cache each phase

    def start_epoch(self, run, epoch):
        self._hybridize(run)

    def train_step(self, run, batch, epoch, i, rng):
        ctx = run.devices
        batch = [[x.as_in_context(c) for x, c in zip(part, ctx)]
                 if isinstance(part, (list, tuple)) else [part.as_in_context(ctx[0])]
                 for part in batch]
        rows = []
        for shard in zip(*batch):
            out = self.step.forward_backward(shard)
            (rpn_label, rpn_weight), (rpn_score,) = out[4]
            (rcnn_label,), (rcnn_cls,) = out[6]
            # GluonCV's RPNAccMetric and RCNNAccMetric, kept on the device
            rpn_hit = ((rpn_score.sigmoid() >= 0.5) == rpn_label) * rpn_weight
            rcnn_hit = rcnn_cls.argmax(axis=-1) == rcnn_label
            rows.append(mx.nd.concat(*[v.reshape((1,)).as_in_context(ctx[0]) for v in (
                list(out[:4]) + [rpn_hit.sum(), rpn_weight.sum(), rcnn_hit.sum(),
                                 mx.nd.full((1,), rcnn_label.size, ctx=rcnn_label.context)])],
                dim=0))
        run.trainer.step(run.local_batch)
        return [mx.nd.add_n(*rows) if len(rows) > 1 else rows[0]], run.local_batch

    def summarize(self, sums, samples):
        shards = max(samples / self.per_device, 1)   # losses are means per device batch
        out = {n: s / shards for n, s in zip(self.losses, sums)}
        out.update(rpn_acc=sums[4] / max(sums[5], 1), rcnn_acc=sums[6] / max(sums[7], 1))
        return out

    def evaluate(self, run, epoch=None, predictions=None):
        self._hybridize(run)
        self.result = evaluate(run.net, self.val_data, run.devices, self.metric, run.dist,
                               predictions)
        if epoch is not None:
            run.log('epoch %d: VOC07 mAP %.4f on %d test images (%.1f s)'
                    % (epoch + 1, self.result['map'], len(self.val_set), self.result['seconds']))
        return {'map': self.result['map'], 'per_class_ap': _json_ready(self.result['per_class']),
                'eval_time': self.result['seconds']}

    def results(self, run, last_eval, best):
        cfg = run.cfg
        predictions = [] if cfg.run.save_predictions else None
        if self.result is None or predictions is not None:
            self.evaluate(run, predictions=predictions)
        r = self.result
        run.log('final evaluation on %s (%d images), %s:\n%s'
                % (self.val_splits, len(self.val_set), cfg.model.backbone, format_ap_table(r)))
        if predictions is not None:
            with open(cfg.run.save_predictions, 'wb') as f:
                pickle.dump(predictions, f)
        return _json_ready({
            'map': r['map'], 'per_class_ap': r['per_class'], 'backbone': cfg.model.backbone,
            'backbone_params': cfg.model.backbone_params, 'epochs': cfg.optim.num_epochs,
            'best_map': max(best if best is not None else -1.0, r['map']),
            'metric': 'VOC07 11-point mAP, IoU 0.5, difficult ignored',
            'positives': r['positives'], 'detections': r['detections'],
            'test_images': len(self.val_set)})

    def checkpoint_info(self):
        return {'classes': list(self.val_set.classes)}


def _json_ready(value):
    """NaN (the AP of a class without ground truth) becomes None, valid JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
