"""FCN on ADE20K from our backbones (paper section 6.2, Table 9).

The model is GluonCV's FCN (:class:`gluoncv.model_zoo.FCN`: the dilated ResNet, an ``_FCNHead``
on stage 4 -- 3x3 conv to a quarter of the channels, BN, ReLU, dropout 0.1, 1x1 conv to the
classes -- and the auxiliary ``_FCNHead`` on stage 3, both upsampled bilinearly to the crop,
heads at 10x the learning rate) with its backbone replaced by one of ours:
:class:`FCN` keeps GluonCV's forward, ``evaluate`` and ``predict`` and its parameter names
(``conv1``, ``layer1`` ... ``layer4``, ``head``, ``auxlayer``), so an FCN on ``resnet50_v1s``
has the layout of GluonCV's ``fcn_resnet50_ade``. The head widths follow the backbone (2048
and 1024 channels for ResNet-50 and deeper, 512 and 256 for ResNet-18/34).

Data and evaluation are GluonCV's: :class:`~gluoncv.data.ADE20KSegmentation` (150 classes,
label 0 "other" becomes -1 and is ignored; training crops: random scale of the longer side in
[0.5, 2] x base size, random crop, flip and blur; validation: shorter side resized to the
crop size and a center crop, or the full image with ``mode='testval'``). The metric is
:class:`SegmentationMetric`: pixel accuracy over labeled pixels and mean IoU over the 150
classes, computed as GluonCV's ``SegmentationMetric`` does (its mIoU averages over *all*
classes, a class absent from both prediction and labels counting 0), from integer counts that
are summed exactly over Horovod ranks.

The training task (flags and :class:`~gluon_tricks.training.segmentation.SegmentationTask`) is
:mod:`gluon_tricks.training.segmentation`.
"""
import os
import time

import numpy as np
import mxnet as mx
from mxnet.gluon import nn
from mxnet.gluon.block import HybridBlock

from gluoncv.model_zoo.fcn import FCN as _GluonCVFCN, _FCNHead

from .errors import ConfigError
from .data.pipeline import ShardBatchSampler, WorkerLoader
from .data.pipeline import SeededDataset
from .transfer import backbone_stages, load_backbone, stage_channels

__all__ = ['ADE20K_CLASSES', 'FCN', 'build_fcn', 'ade20k_dataset', 'train_loader',
           'val_loader', 'SegmentationMetric', 'evaluate', 'INPUT_MEAN', 'INPUT_STD']

#: Number of ADE20K (SceneParsing) classes.
ADE20K_CLASSES = 150
#: Input normalization of GluonCV's segmentation scripts (= the paper's on a 0-1 scale).
INPUT_MEAN, INPUT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class FCN(_GluonCVFCN):
    """GluonCV's FCN on one of our (dilated) ResNets.

    Parameters
    ----------
    backbone : gluon_tricks.model_zoo.ResNetV1
        Dilated (``load_backbone(..., task='segmentation')``); its stem and stages become
        this model's ``conv1`` ... ``layer4``.
    nclass : int
        Classes (ADE20K: 150).
    aux : bool
        Auxiliary head on stage 3 (its loss is weighted by ``aux_weight`` in training).
    base_size, crop_size : int
        GluonCV's sizes (ADE20K: 520 and 480); the outputs are upsampled to
        ``crop_size`` x ``crop_size``.
    norm_layer : type
        Normalization of the heads (e.g. ``SyncBatchNorm``).
    norm_kwargs : dict, optional
    head_lr_mult : float
        Learning-rate multiplier of the heads (GluonCV: 10).
    ctx : mxnet.Context or list
        Where the heads are initialized.
    """

    def __init__(self, backbone, nclass, aux=True, base_size=520, crop_size=480,
                 norm_layer=nn.BatchNorm, norm_kwargs=None, head_lr_mult=10.0, ctx=mx.cpu()):
        # SegBaseModel.__init__ would build a GluonCV backbone: set up the same attributes
        # around ours instead (forward, evaluate and predict are GluonCV's)
        HybridBlock.__init__(self)  # pylint: disable=non-parent-init-called
        self.aux = aux
        self.nclass = nclass
        c3, c4 = stage_channels(backbone)
        with self.name_scope():
            for name, block in backbone_stages(backbone):
                setattr(self, name, block)
            self.head = _FCNHead(c4, nclass, norm_layer=norm_layer, norm_kwargs=norm_kwargs)
            if aux:
                self.auxlayer = _FCNHead(c3, nclass, norm_layer=norm_layer,
                                         norm_kwargs=norm_kwargs)
        for head in [self.head] + ([self.auxlayer] if aux else []):
            head.initialize(ctx=ctx)
            head.collect_params().setattr('lr_mult', head_lr_mult)
        self._up_kwargs = {'height': crop_size, 'width': crop_size}
        self.base_size = base_size
        self.crop_size = crop_size
        # plain attributes (a Block attribute would become a child with parameters)
        self.backbone_name = getattr(backbone, 'model_name', None)
        self.backbone_params_file = getattr(backbone, 'params_file', None)


def build_fcn(backbone, backbone_params, nclass=ADE20K_CLASSES, aux=True, base_size=520,
              crop_size=480, ctx=None, norm_layer=nn.BatchNorm, norm_kwargs=None):
    """FCN with a dilated backbone loaded from a classification checkpoint.

    Parameters
    ----------
    backbone : str
        Zoo ResNet name (``resnet50_v1b`` B-standard, ``resnet50_v1d`` ...).
    backbone_params : str
        Its classification checkpoint (see :func:`gluon_tricks.transfer.load_backbone`).
    nclass : int
    aux : bool
    base_size, crop_size : int
    ctx : mxnet.Context or list, optional
    norm_layer : type
        Normalization of backbone and heads (``SyncBatchNorm`` for ``--syncbn``).
    norm_kwargs : dict, optional

    Returns
    -------
    FCN
    """
    ctx = ctx if ctx is not None else mx.cpu()
    base = load_backbone(backbone, backbone_params, task='segmentation', ctx=ctx,
                         norm_layer=norm_layer, norm_kwargs=norm_kwargs)
    return FCN(base, nclass, aux=aux, base_size=base_size, crop_size=crop_size,
               norm_layer=norm_layer, norm_kwargs=norm_kwargs, ctx=ctx)


def ade20k_dataset(root, split, mode, base_size=520, crop_size=480):
    """GluonCV's ADE20K data set with the normalization of its segmentation scripts.

    Parameters
    ----------
    root : str
        Folder holding ``ADEChallengeData2016`` (``prepare_ade20k.py --out``).
    split : {'train', 'val'}
    mode : {'train', 'val', 'testval'}
    base_size, crop_size : int

    Returns
    -------
    gluoncv.data.ADE20KSegmentation
    """
    from mxnet.gluon.data.vision import transforms
    from gluoncv.data import ADE20KSegmentation
    root = os.path.expanduser(root)
    _check_ade20k_split(root, 'training' if split == 'train' else 'validation')
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize(INPUT_MEAN, INPUT_STD)])
    dataset = ADE20KSegmentation(root=root, split=split, mode=mode, transform=transform,
                                 base_size=base_size, crop_size=crop_size)
    # os.listdir order differs between file systems: sort for reproducible sharding
    order = np.argsort(dataset.images)
    dataset.images = [dataset.images[i] for i in order]
    dataset.masks = [dataset.masks[i] for i in order]
    return dataset


def train_loader(dataset, batch_size, num_parts=1, part_index=0, seed=0, num_workers=0):
    """Shuffled, sharded training batches with per-sample seeded augmentation.

    Parameters
    ----------
    dataset : ADE20KSegmentation
        In ``'train'`` mode.
    batch_size : int
        Images per step of this process (per device x devices).
    num_parts, part_index : int
    seed : int
    num_workers : int

    Returns
    -------
    (gluon_tricks.data.workers.WorkerLoader, gluon_tricks.data.ShardBatchSampler)
        Set ``sampler.epoch`` before each epoch.
    """
    sampler = ShardBatchSampler(len(dataset), batch_size, True, num_parts, part_index, seed,
                                last_batch='discard')
    if len(sampler) == 0:
        raise ConfigError('%d training images give no batch of %d on each of %d rank(s)'
                         % (len(dataset), batch_size, num_parts))
    loader = WorkerLoader(SeededDataset(dataset), batch_sampler=sampler,
                          num_workers=num_workers, name='the ADE20K training images')
    return loader, sampler


def val_loader(dataset, batch_size, num_parts=1, part_index=0, num_workers=0):
    """Validation batches; rank ``i`` of ``P`` gets images ``i, i + P, ...`` (each image is
    scored exactly once over all ranks). ``'testval'`` mode needs ``batch_size`` 1 (images of
    different sizes)."""
    if dataset.mode == 'testval' and batch_size != 1:
        raise ValueError("mode 'testval' scores full images of different sizes: batch size 1")
    sampler = ShardBatchSampler(len(dataset), batch_size, False, num_parts, part_index,
                                last_batch='keep')
    return WorkerLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                        name='the ADE20K validation images')


class SegmentationMetric(object):
    """Pixel accuracy and mean IoU, as GluonCV's ``SegmentationMetric`` defines them, from
    integer counts that can be summed over ranks.

    For labels ``t`` (``-1`` = ignored) and predictions ``p = argmax(logits, axis=1)``:
    ``pixAcc = #(p == t, t >= 0) / #(t >= 0)`` and ``mIoU = mean_c I_c / U_c`` over all
    ``nclass`` classes, with ``I_c = #(p == c, t == c)`` and
    ``U_c = #(p == c, t >= 0) + #(t == c) - I_c`` (``eps`` guards empty classes, which count 0).

    Parameters
    ----------
    nclass : int
    """

    def __init__(self, nclass):
        self.nclass = int(nclass)
        self.reset()

    def reset(self):
        """Clear the counts."""
        self.correct = 0
        self.labeled = 0
        self.inter = np.zeros(self.nclass, np.int64)
        self.area_pred = np.zeros(self.nclass, np.int64)
        self.area_label = np.zeros(self.nclass, np.int64)

    def update(self, labels, preds):
        """Add a batch (or lists of batches, one per device).

        Parameters
        ----------
        labels : NDArray or numpy array (N, H, W), or a list of them
            Class indices, ``-1`` ignored.
        preds : NDArray or numpy array (N, C, H, W), or a list of them
            Scores; the prediction is their argmax over ``C``.
        """
        if not isinstance(labels, (list, tuple)):
            labels, preds = [labels], [preds]
        for label, pred in zip(labels, preds):
            if isinstance(pred, mx.nd.NDArray):
                pred = mx.nd.argmax(pred, axis=1).asnumpy()
            else:
                pred = np.argmax(np.asarray(pred), axis=1)
            label = label.asnumpy() if isinstance(label, mx.nd.NDArray) else np.asarray(label)
            pred, label = pred.astype(np.int64).ravel(), label.astype(np.int64).ravel()
            if pred.shape != label.shape:
                raise ValueError('prediction has %d pixels, label %d' % (pred.size, label.size))
            keep = label >= 0
            pred, label = pred[keep], label[keep]
            self.labeled += int(label.size)
            self.correct += int(np.count_nonzero(pred == label))
            # labels >= nclass count as labeled pixels but belong to no class (GluonCV)
            row = np.minimum(label, self.nclass)
            counts = np.bincount(row * self.nclass + pred,
                                 minlength=(self.nclass + 1) * self.nclass)
            counts = counts.reshape(self.nclass + 1, self.nclass)
            self.area_pred += counts.sum(axis=0)
            self.area_label += counts[:self.nclass].sum(axis=1)
            self.inter += np.diagonal(counts[:self.nclass])

    def state(self):
        """All counts as one int64 vector (for summing over ranks)."""
        return np.concatenate([[self.correct, self.labeled], self.inter, self.area_pred,
                               self.area_label]).astype(np.int64)

    def load_state(self, vector):
        """Set the counts from :meth:`state` (e.g. summed over ranks)."""
        vector = np.asarray(vector, np.int64)
        n = self.nclass
        self.correct, self.labeled = int(vector[0]), int(vector[1])
        self.inter = vector[2:2 + n].copy()
        self.area_pred = vector[2 + n:2 + 2 * n].copy()
        self.area_label = vector[2 + 2 * n:2 + 3 * n].copy()

    def iou(self):
        """Per-class IoU (numpy array), 0 for classes absent from predictions and labels."""
        union = self.area_pred + self.area_label - self.inter
        return self.inter / (np.spacing(1) + union)

    def get(self):
        """``(pixAcc, mIoU)``."""
        pix_acc = 1.0 * self.correct / (np.spacing(1) + self.labeled)
        return float(pix_acc), float(self.iou().mean())


def evaluate(net, loader, devices, metric, dist=None, mode='val'):
    """pixAcc and mIoU of ``net`` on ``loader``.

    Parameters
    ----------
    net : FCN
    loader : DataLoader
        From :func:`val_loader`.
    devices : list of mxnet.Context
    metric : SegmentationMetric
        Reset here; holds the counts of all ranks afterwards.
    dist : gluon_tricks.distributed.DistContext, optional
        Sum the counts over ranks.
    mode : {'val', 'testval'}
        ``'val'``: crops of ``crop_size`` (GluonCV's validation during training), the
        hybridized network; ``'testval'``: full images one by one, imperatively (the output is
        upsampled to each image's size).

    Returns
    -------
    dict
        ``pixAcc``, ``mIoU``, ``iou`` (per class list), ``images`` (this rank), ``seconds``.
    """
    tic = time.time()
    metric.reset()
    images = 0
    if mode == 'testval':
        net.hybridize(active=False)
    saved = dict(net._up_kwargs)
    try:
        for data, target in loader:
            xs = mx.gluon.utils.split_and_load(data, devices, even_split=False)
            ys = mx.gluon.utils.split_and_load(target, devices, even_split=False)
            for x, y in zip(xs, ys):
                if mode == 'testval':
                    net._up_kwargs = {'height': x.shape[2], 'width': x.shape[3]}
                out = net(x)
                metric.update(y, out[0] if isinstance(out, (list, tuple)) else out)
                images += x.shape[0]
    finally:
        net._up_kwargs = saved
    if dist is not None and dist.is_distributed:
        metric.load_state(dist.allreduce_sum(metric.state()))
    pix_acc, miou = metric.get()
    return {'pixAcc': pix_acc, 'mIoU': miou, 'iou': metric.iou().tolist(), 'images': images,
            'seconds': time.time() - tic}


# --------------------------------------------------------------------------- data
def _check_ade20k_split(root, split):
    """Number of image/mask pairs of one split (``'training'``/``'validation'``), checked."""
    img_dir = os.path.join(root, 'ADEChallengeData2016', 'images', split)
    ann_dir = os.path.join(root, 'ADEChallengeData2016', 'annotations', split)
    for folder in (img_dir, ann_dir):
        if not os.path.isdir(folder):
            raise FileNotFoundError('ADE20K folder %s is missing (prepare the data with '
                                    'scripts/segmentation/prepare_ade20k.py, or set --data-dir)'
                                    % folder)
    images = sorted(f for f in os.listdir(img_dir) if f.endswith('.jpg'))
    if not images:
        raise FileNotFoundError('ADE20K folder %s holds no .jpg image' % img_dir)
    missing = [os.path.join(ann_dir, f[:-4] + '.png') for f in images
               if not os.path.isfile(os.path.join(ann_dir, f[:-4] + '.png'))]
    if missing:
        raise FileNotFoundError('ADE20K %s: %d image(s) without label mask, e.g. %s'
                                % (split, len(missing), ', '.join(missing[:3])))
    return len(images)
