"""Faster-RCNN on Pascal VOC from our backbones (paper section 6.1, Table 8).

The detector is GluonCV's :class:`~gluoncv.model_zoo.rcnn.faster_rcnn.FasterRCNN` with the
hyper-parameters of GluonCV's ``faster_rcnn_resnet50_v1b_voc`` (RoIAlign 14x14, stride 16,
short side 600 / max 1000, RPN with 1024 channels and anchors 16 x (2, 4, 8, 16, 32) x
(0.5, 1, 2) ...), built on a backbone from :func:`gluon_tricks.transfer.load_backbone`:
``features`` = stem + ``layer1..layer3`` (stride 16), ``top_features`` = ``layer4`` (run on
the RoI features). Any zoo ResNet can be the backbone, so the paper's B-standard and D
models are compared with everything else equal.

What is trained (as GluonCV does for VOC): the convolutions of stages 2-4 (including the
shortcut convolutions), the RPN and the two output layers. The stem, stage 1 and every
BatchNorm (statistics *and* gamma/beta) stay as the classifier left them; GluonCV selects these
with the name regex ``.*dense|.*rpn|.*down(2|3|4)_conv|.*layers(2|3|4)_conv``, which depends on
its own prefixes -- :func:`trainable_params` selects by structure instead, so the rule holds
for any backbone.

Evaluation is GluonCV's: predictions are clipped to the resized image, scaled back to the
original resolution and scored with :class:`~gluoncv.utils.metrics.voc_detection.VOC07MApMetric`
(VOC07 11-point AP at IoU 0.5, difficult ground truths ignored: neither counted as positives
nor as false positives when detected). Under Horovod every rank scores its shard and the
metric states are merged (:func:`merge_voc_states`) before AP is computed, so the result
equals one process scoring the whole test set.

The training task (flags and :class:`~gluon_tricks.training.detection.DetectionTask`) is
:mod:`gluon_tricks.training.detection`.
"""
import os
import time
from collections import OrderedDict, defaultdict

import numpy as np
import mxnet as mx
from mxnet.gluon import nn

from .errors import ConfigError
from .data.pipeline import ShardBatchSampler, WorkerLoader
from .data.pipeline import SeededDataset
from .transfer import load_backbone

__all__ = ['VOC_CLASSES', 'VOC_FASTER_RCNN', 'parse_voc_splits', 'build_faster_rcnn',
           'backbone_stage',
           'trainable_params', 'train_loader', 'val_loader', 'evaluate', 'voc_state',
           'merge_voc_states', 'set_voc_state', 'format_ap_table',
           'check_voc_layout', 'check_voc_annotations', 'voc_dataset']

#: The 20 Pascal VOC classes in GluonCV's label order.
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')

#: GluonCV's ``faster_rcnn_resnet50_v1b_voc`` settings (besides backbone, classes and
#: image size).
VOC_FASTER_RCNN = dict(
    nms_thresh=0.3, nms_topk=400, post_nms=100, roi_mode='align', roi_size=(14, 14),
    strides=16, clip=None, rpn_channel=1024, base_size=16, scales=(2, 4, 8, 16, 32),
    ratios=(0.5, 1, 2), alloc_size=(128, 128), rpn_nms_thresh=0.7, rpn_train_pre_nms=12000,
    rpn_train_post_nms=2000, rpn_test_pre_nms=6000, rpn_test_post_nms=300, rpn_min_size=16,
    num_sample=128, pos_iou_thresh=0.5, pos_ratio=0.25, max_num_gt=100)


def parse_voc_splits(text):
    """Parse ``'2007_trainval,2012_trainval'`` into GluonCV's ``[(2007, 'trainval'), ...]``.

    Parameters
    ----------
    text : str
        Comma-separated ``YEAR_NAME`` items, NAME in train, val, trainval, test.

    Returns
    -------
    list of (int, str)
    """
    splits = []
    for item in str(text).split(','):
        item = item.strip()
        if not item:
            continue
        year, _, name = item.partition('_')
        if not year.isdigit() or name not in ('train', 'val', 'trainval', 'test'):
            raise ConfigError('VOC split %r must look like 2007_trainval (YEAR_NAME, NAME one of '
                             'train, val, trainval, test)' % item)
        splits.append((int(year), name))
    if not splits:
        raise ConfigError('no VOC split in %r' % (text,))
    return splits


def build_faster_rcnn(backbone, backbone_params, classes=VOC_CLASSES, short=600, max_size=1000,
                      ctx=None, per_device_batch_size=1, **overrides):
    """GluonCV's VOC Faster-RCNN on one of our backbones.

    Parameters
    ----------
    backbone : str
        Zoo ResNet name (``resnet50_v1b`` is the paper's B-standard, ``resnet50_v1d`` ...).
    backbone_params : str
        Its classification checkpoint (see :func:`gluon_tricks.transfer.load_backbone`).
    classes : sequence of str
        Object classes (default the 20 VOC classes).
    short, max_size : int
        Shorter image side and upper bound of the longer side (VOC: 600 and 1000).
    ctx : mxnet.Context or list, optional
        Devices (default CPU).
    per_device_batch_size : int
        Images per device in a training step.
    **overrides
        Replace entries of :data:`VOC_FASTER_RCNN`.

    Returns
    -------
    gluoncv.model_zoo.FasterRCNN
        Backbone weights from the checkpoint (BatchNorm with frozen statistics), the RPN and
        the heads initialized as GluonCV initializes them. ``net.backbone_name`` and
        ``net.backbone_params_file`` record where the backbone came from;
        :func:`backbone_stage` returns its stages.
    """
    from gluoncv.model_zoo.rcnn.faster_rcnn import FasterRCNN
    ctx = ctx if ctx is not None else mx.cpu()
    base = load_backbone(backbone, backbone_params, task='detection', ctx=ctx)
    features = nn.HybridSequential()
    for name in ('conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3'):
        features.add(getattr(base, name))
    top_features = nn.HybridSequential()
    top_features.add(base.layer4)
    config = dict(VOC_FASTER_RCNN)
    unknown = set(overrides) - set(config)
    if unknown:
        raise ValueError('unknown Faster-RCNN option(s) %s; known: %s'
                         % (sorted(unknown), ', '.join(sorted(config))))
    config.update(overrides)
    net = FasterRCNN(features=features, top_features=top_features, classes=list(classes),
                     short=short, max_size=max_size, train_patterns=None,
                     per_device_batch_size=per_device_batch_size, **config)
    for param in net.collect_params().values():
        if param._data is None and not param._deferred_init:
            param.initialize(ctx=ctx)
    # GluonCV creates the R-CNN target generator (a child block with two constants) on first
    # use in training; create it now so that saved and freshly built detectors have the same
    # parameters (checkpoints and --resume)
    net.target_generator.collect_params().reset_ctx(ctx)
    # plain attributes: assigning the ResNet itself would register it as a child block
    # and add its unused classifier (and duplicate names) to the detector's parameters
    net.backbone_name, net.backbone_params_file = base.model_name, base.params_file
    return net


def backbone_stage(net, stage):
    """``layer{stage}`` of the ResNet inside a detector of :func:`build_faster_rcnn`."""
    if stage in (1, 2, 3):
        return net.features[3 + stage]
    if stage == 4:
        return net.top_features[0]
    raise ValueError('stage must be 1, 2, 3 or 4, got %r' % (stage,))


def _blocks(block):
    yield block
    for child in block._children.values():
        for b in _blocks(child):
            yield b


def trainable_params(net, frozen_stages=1):
    """Select what Faster-RCNN fine-tunes and freeze the rest (``grad_req = 'null'``).

    Parameters
    ----------
    net : FasterRCNN
        From :func:`build_faster_rcnn`.
    frozen_stages : int
        Stages kept frozen besides the stem (GluonCV's VOC recipe: 1, i.e. ``layer1``).

    Returns
    -------
    collections.OrderedDict
        Structural name -> Parameter, sorted by name: the convolution weights (and biases) of
        ``layer{frozen_stages+1}`` .. ``layer4``, every parameter of the RPN and of the class
        and box predictors. Every other parameter (stem, frozen stages, all BatchNorm
        parameters) gets ``grad_req = 'null'``.
    """
    if not 0 <= frozen_stages <= 4:
        raise ValueError('frozen_stages must be in [0, 4], got %r' % (frozen_stages,))
    chosen = []
    for stage in range(frozen_stages + 1, 5):
        for block in _blocks(backbone_stage(net, stage)):
            if isinstance(block, nn.Conv2D):
                chosen.extend(p for p in block._reg_params.values())
    for head in (net.rpn, net.class_predictor, net.box_predictor):
        chosen.extend(p for p in head.collect_params().values()
                      if not isinstance(p, mx.gluon.Constant))
    ids = {id(p) for p in chosen}
    for param in net.collect_params().values():
        if id(param) not in ids and not isinstance(param, mx.gluon.Constant):
            param.grad_req = 'null'
    for param in chosen:
        param.grad_req = 'write'
    names = {id(p): n for n, p in net._collect_params_with_prefix().items()}
    return OrderedDict(sorted((names[id(p)], p) for p in chosen))


def train_loader(net, dataset, per_device_batch, num_devices, num_parts=1, part_index=0,
                 seed=0, num_workers=0):
    """Training batches: GluonCV's Faster-RCNN train transform (resize, random flip, RPN
    targets) and batchify, on a sharded, per-epoch shuffled sampler with per-sample seeds.

    Parameters
    ----------
    net : FasterRCNN
    dataset : gluoncv.data.VOCDetection
    per_device_batch, num_devices : int
        Images per device and devices of this process.
    num_parts, part_index : int
        Horovod size and rank.
    seed : int
    num_workers : int
        Worker processes (:class:`~gluon_tricks.data.workers.WorkerLoader`).

    Returns
    -------
    (gluon_tricks.data.workers.WorkerLoader, gluon_tricks.data.ShardBatchSampler)
        Set ``sampler.epoch`` before each epoch.
    """
    from gluoncv.data.batchify import FasterRCNNTrainBatchify
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultTrainTransform
    transform = FasterRCNNDefaultTrainTransform(net.short, net.max_size, net, ashape=net.ashape)
    sampler = ShardBatchSampler(len(dataset), per_device_batch * num_devices, True, num_parts,
                                part_index, seed, last_batch='discard')
    if len(sampler) == 0:
        raise ConfigError('%d training images give no batch of %d on each of %d rank(s)'
                         % (len(dataset), per_device_batch * num_devices, num_parts))
    loader = WorkerLoader(
        SeededDataset(dataset.transform(transform)), batch_sampler=sampler, name='the VOC images',
        batchify_fn=FasterRCNNTrainBatchify(net, num_devices), num_workers=num_workers)
    return loader, sampler


def val_loader(net, dataset, num_devices, num_parts=1, part_index=0, num_workers=0):
    """Test batches (one image per device) with GluonCV's Faster-RCNN validation transform;
    rank ``i`` of ``P`` gets images ``i, i + P, ...``.

    Returns
    -------
    gluon_tricks.data.workers.WorkerLoader
        Yields ``(images, labels, im_scales)``, lists of one NDArray per image.
    """
    from gluoncv.data.batchify import Append, Tuple
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultValTransform
    sampler = ShardBatchSampler(len(dataset), num_devices, False, num_parts, part_index,
                                last_batch='keep')
    return WorkerLoader(
        dataset.transform(FasterRCNNDefaultValTransform(net.short, net.max_size)),
        batch_sampler=sampler, batchify_fn=Tuple(Append(), Append(), Append()),
        num_workers=num_workers, name='the VOC test images')


# --------------------------------------------------------------------------- evaluation
def voc_state(metric):
    """The accumulated state of a ``VOCMApMetric``: positives, scores and matches per class.

    Returns
    -------
    dict
        ``{'n_pos': {cls: int}, 'score': {cls: [float]}, 'match': {cls: [int]}}``
    """
    return {'n_pos': {int(k): int(v) for k, v in metric._n_pos.items()},
            'score': {int(k): [float(s) for s in v] for k, v in metric._score.items()},
            'match': {int(k): [int(m) for m in v] for k, v in metric._match.items()}}


def merge_voc_states(states):
    """Merge the states of metrics that scored disjoint parts of a test set.

    Parameters
    ----------
    states : list of dict
        From :func:`voc_state`, one per rank.

    Returns
    -------
    dict
        The state one metric would hold after scoring every part (AP does not depend on the
        order of detections with different scores; ties keep rank order).
    """
    merged = {'n_pos': {}, 'score': {}, 'match': {}}
    for state in states:
        for cls, n in state['n_pos'].items():
            merged['n_pos'][cls] = merged['n_pos'].get(cls, 0) + n
        for key in ('score', 'match'):
            for cls, values in state[key].items():
                merged[key].setdefault(cls, []).extend(values)
    return merged


def set_voc_state(metric, state):
    """Load a state from :func:`voc_state`/:func:`merge_voc_states` into ``metric``."""
    metric.reset()
    metric._n_pos = defaultdict(int, state['n_pos'])
    metric._score = defaultdict(list, {k: list(v) for k, v in state['score'].items()})
    metric._match = defaultdict(list, {k: list(v) for k, v in state['match'].items()})


def evaluate(net, loader, devices, metric, dist=None, predictions=None):
    """VOC07 mAP of ``net`` on ``loader`` (GluonCV's validation procedure).

    Parameters
    ----------
    net : FasterRCNN
    loader : DataLoader
        From :func:`val_loader`.
    devices : list of mxnet.Context
    metric : gluoncv.utils.metrics.voc_detection.VOC07MApMetric
        Reset here; holds the merged state of all ranks afterwards.
    dist : gluon_tricks.distributed.DistContext, optional
        Merge the metric states of all ranks.
    predictions : list, optional
        If given, one dict per image is appended: ``bboxes`` (N, 4) in original pixels,
        ``ids`` (N,), ``scores`` (N,), ``gt_bboxes`` (M, 4), ``gt_ids`` (M,),
        ``gt_difficults`` (M,) -- exactly what the metric was given.

    Returns
    -------
    dict
        ``map`` (float), ``per_class`` ({class name: AP}), ``positives`` ({class name:
        non-difficult ground truths}), ``detections`` ({class name: scored detections}) --
        all over every rank --, ``images`` (scored by this rank), ``seconds``.
    """
    from gluoncv.nn.bbox import BBoxClipToImage
    tic = time.time()
    clipper = BBoxClipToImage()
    metric.reset()
    images = 0
    for batch in loader:
        for x, y, im_scale, ctx in zip(batch[0], batch[1], batch[2], devices):
            x, y = x.as_in_context(ctx), y.as_in_context(ctx)
            ids, scores, bboxes = net(x)
            scale = float(im_scale.reshape((-1,)).asscalar())
            bboxes = clipper(bboxes, x) * scale
            gt_bboxes = y.slice_axis(axis=-1, begin=0, end=4) * scale
            gt_ids = y.slice_axis(axis=-1, begin=4, end=5)
            gt_difficults = y.slice_axis(axis=-1, begin=5, end=6) if y.shape[-1] > 5 else None
            metric.update(bboxes, ids, scores, gt_bboxes, gt_ids, gt_difficults)
            images += 1
            if predictions is not None:
                predictions.append({
                    'bboxes': bboxes[0].asnumpy(), 'ids': ids[0, :, 0].asnumpy(),
                    'scores': scores[0, :, 0].asnumpy(), 'gt_bboxes': gt_bboxes[0].asnumpy(),
                    'gt_ids': gt_ids[0, :, 0].asnumpy(),
                    'gt_difficults': (gt_difficults[0, :, 0].asnumpy()
                                      if gt_difficults is not None else None)})
    if dist is not None and dist.is_distributed:
        state = voc_state(metric)
        states = [dist.broadcast_object(state if dist.rank == r else None, root_rank=r,
                                        name='voc_state_%d' % r) for r in range(dist.size)]
        # Horovod's broadcast_object returns on the root before the others have received
        # the object: a root that then finished would shut Horovod down under them
        dist.barrier()
        set_voc_state(metric, merge_voc_states(states))
    names, values = metric.get()
    per_class = {n: float(v) for n, v in zip(names[:-1], values[:-1])}
    classes = names[:-1]
    return {'map': float(values[-1]), 'per_class': per_class, 'images': images,
            'positives': {n: int(metric._n_pos.get(i, 0)) for i, n in enumerate(classes)},
            'detections': {n: len(metric._score.get(i, [])) for i, n in enumerate(classes)},
            'seconds': time.time() - tic}


def format_ap_table(result):
    """Per-class AP and mAP as aligned text lines (the final report).

    Parameters
    ----------
    result : dict
        From :func:`evaluate`.

    Returns
    -------
    str
    """
    width = max([len(n) for n in result['per_class']] + [3])
    lines = ['%-*s  %s' % (width, 'class', 'AP (VOC07 11-point)')]
    for name, ap in result['per_class'].items():
        lines.append('%-*s  %s' % (width, name, 'nan (no ground truth)' if np.isnan(ap)
                                   else '%.4f' % ap))
    lines.append('%-*s  %.4f' % (width, 'mAP', result['map']))
    return '\n'.join(lines)


# --------------------------------------------------------------------------- data
def check_voc_layout(root, splits):
    """Check that ``root`` holds what GluonCV's ``VOCDetection(root, splits)`` reads.

    Parameters
    ----------
    root : str
        Folder holding ``VOC2007``/``VOC2012``.
    splits : sequence of (int, str)

    Returns
    -------
    dict
        ``{(year, name): number of images}``.

    Raises
    ------
    FileNotFoundError
        A split list, or an image or annotation it names, is missing (the first few named).
    """
    counts = {}
    for year, name in splits:
        base = os.path.join(root, 'VOC%d' % year)
        lst = os.path.join(base, 'ImageSets', 'Main', name + '.txt')
        if not os.path.isfile(lst):
            raise FileNotFoundError('VOC%d %s list %s is missing' % (year, name, lst))
        with open(lst) as f:
            ids = [line.strip() for line in f if line.strip()]
        missing = [p for i in ids for p in (os.path.join(base, 'JPEGImages', i + '.jpg'),
                                            os.path.join(base, 'Annotations', i + '.xml'))
                   if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError('VOC%d %s: %d of its files are missing, e.g. %s'
                                    % (year, name, len(missing), ', '.join(missing[:3])))
        counts[(year, name)] = len(ids)
    return counts


def check_voc_annotations(root, splits, classes=VOC_CLASSES):
    """Parse every annotation of ``splits`` before GluonCV does, naming the file at fault.

    GluonCV's ``VOCDetection`` raises a bare ``ParseError`` (no file) on a malformed XML and
    silently drops objects of an unknown class; both are errors here.

    Raises
    ------
    ValueError
        The XML file and what is wrong (line of the parse error, or the unknown class with the
        known ones).
    """
    import xml.etree.ElementTree as ET
    known = set(classes)
    for year, name in splits:
        base = os.path.join(root, 'VOC%d' % year)
        with open(os.path.join(base, 'ImageSets', 'Main', name + '.txt')) as f:
            ids = [line.strip() for line in f if line.strip()]
        for i in ids:
            path = os.path.join(base, 'Annotations', i + '.xml')
            try:
                tree = ET.parse(path)
            except ET.ParseError as err:
                raise ConfigError('VOC annotation %s is not valid XML (%s): fix or re-extract it '
                                 '(scripts/detection/prepare_voc.py)' % (path, err))
            for obj in tree.getroot().iter('object'):
                cls = (obj.findtext('name') or '').strip()
                if cls not in known:
                    raise ConfigError('VOC annotation %s has an object of unknown class %r; the '
                                     '%d classes are %s' % (path, cls, len(classes),
                                                             ', '.join(classes)))


def voc_dataset(root, splits):
    """GluonCV's ``VOCDetection`` of ``splits`` after checking the layout and every annotation.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the missing split list, folder or file, or the malformed annotation.
    """
    from gluoncv.data import VOCDetection
    root = os.path.expanduser(root)
    for year, _ in splits:
        for sub in ('JPEGImages', 'Annotations', os.path.join('ImageSets', 'Main')):
            folder = os.path.join(root, 'VOC%d' % year, sub)
            if not os.path.isdir(folder):
                raise FileNotFoundError('VOC folder %s is missing (prepare the data with '
                                        'scripts/detection/prepare_voc.py, or set --data-dir)'
                                        % folder)
    check_voc_layout(root, splits)
    check_voc_annotations(root, splits)
    return VOCDetection(root=root, splits=splits)
