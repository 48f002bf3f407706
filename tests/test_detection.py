"""Faster-RCNN on VOC from our backbone (paper section 6.1): data preparation from archives,
the detector built on our checkpoint, train_faster_rcnn.py end to end on tiny VOC data (with
resume), and the VOC07 evaluation checked against GluonCV's metric."""
import json
import os
import re
import pickle
import shutil
import tarfile

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import detection, transfer
from helpers.scripts_runner import REPO, load_script
from helpers.transfer_data import BACKBONE, tiny_backbone, write_voc
from tools.datasets.archives import file_md5

train_faster_rcnn = load_script('detection', 'train_faster_rcnn')
prepare_voc = load_script('detection', 'prepare_voc')

# small images and few RoIs keep an iteration at about a second on two CPU cores
SMALL = ['--short', '128', '--max-size', '200', '--rpn-train-post-nms', '256',
         '--rpn-test-post-nms', '16', '--rcnn-num-samples', '16', '-j', '0',
         '--log-interval', '2']


@pytest.fixture(scope='module')
def backbone_run(tmp_path_factory):
    return tiny_backbone(tmp_path_factory)


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp('voc')
    objects = write_voc(root)
    return str(root), objects


def _args(backbone_run, voc_root, save_dir, *extra):
    return ['--backbone', BACKBONE, '--backbone-params', backbone_run, '--data-dir', voc_root,
            '--save-dir', str(save_dir), '--lr-warmup', '2', '--lr-decay-epoch', '1'] + \
        SMALL + list(extra)


@pytest.fixture(scope='module')
def one_epoch(backbone_run, voc, tmp_path_factory):
    """One epoch (4 iterations) of training, evaluation, predictions saved."""
    save = tmp_path_factory.mktemp('frcnn') / 'run'
    pred = str(save) + '-predictions.pkl'
    result = train_faster_rcnn.main(_args(backbone_run, voc[0], save, '--epochs', '1',
                                          '--save-predictions', pred))
    return str(save), result, pred


def test_flags_default_to_gluoncv_voc_recipe(capsys):
    cfg = train_faster_rcnn.parse_args(['--backbone', 'resnet50_v1d', '--backbone-params', 'x'])
    o, d, m = cfg.optim, cfg.data, cfg.model
    assert (o.num_epochs, o.base_lr, o.base_batch_size, o.batch_size) == (20, 0.001, 1, 1)
    assert o.lr_decay_epoch == (14.0, 20.0) and o.lr_decay == 0.1 and o.lr_mode == 'step'
    assert (o.wd, o.momentum, o.optimizer) == (5e-4, 0.9, 'sgd')
    assert o.warmup_iters == 500 and abs(o.warmup_factor - 1 / 3.) < 1e-12
    assert (d.short, d.max_size) == (600, 1000) and cfg.run.seed == 0
    assert detection.parse_voc_splits(d.train_splits) == [(2007, 'trainval'), (2012, 'trainval')]
    assert detection.parse_voc_splits(d.val_splits) == [(2007, 'test')]
    assert (m.rpn_train_post_nms, m.rpn_test_post_nms, m.rcnn_num_samples) == (2000, 300, 128)
    # GluonCV's spellings are aliases of the shared flags
    cfg = train_faster_rcnn.parse_args(['--backbone', 'resnet50_v1d', '--backbone-params', 'x',
                                        '--lr-warmup', '7', '--lr-warmup-factor', '0.5',
                                        '--epochs', '3', '--save-interval', '2', '--workers',
                                        '2', '--weight-decay', '1e-3',
                                        '--disable-hybridization'])
    assert (cfg.optim.warmup_iters, cfg.optim.warmup_factor, cfg.optim.num_epochs) == (7, 0.5, 3)
    assert (cfg.run.save_frequency, cfg.data.num_workers, cfg.optim.wd) == (2, 2, 1e-3)
    assert cfg.model.mode == 'imperative'
    with pytest.raises(SystemExit):
        train_faster_rcnn.parse_args(['--help'])
    text = capsys.readouterr().out
    for flag in ('--backbone-params', '--horovod', '--resume', '--lr-decay-epoch', '--wd',
                 '--warmup-iters', '--short', '--max-size', '--save-dir', '--num-gpus'):
        assert flag in text
    with pytest.raises(SystemExit):
        train_faster_rcnn.parse_args(['--backbone', 'vgg16', '--backbone-params', 'x'])
    with pytest.raises(SystemExit):   # too many proposals for the anchors of a small image
        train_faster_rcnn.parse_args(['--backbone', BACKBONE, '--backbone-params', 'x',
                                      '--short', '128'])


# --------------------------------------------------------------------------- prepare_voc.py
def _voc_archives(voc_root, out_dir):
    """The three official archive names with the official member layout (VOCdevkit/...)."""
    os.makedirs(out_dir, exist_ok=True)
    parts = {
        'VOCtrainval_06-Nov-2007.tar': [('VOC2007', 'Annotations'), ('VOC2007', 'JPEGImages'),
                                        ('VOC2007', 'ImageSets/Main/trainval.txt')],
        'VOCtest_06-Nov-2007.tar': [('VOC2007', 'Annotations'), ('VOC2007', 'JPEGImages'),
                                    ('VOC2007', 'ImageSets/Main/test.txt')],
        'VOCtrainval_11-May-2012.tar': [('VOC2012', '')],
    }
    for name, members in parts.items():
        with tarfile.open(os.path.join(out_dir, name), 'w') as tf:
            for year, sub in members:
                tf.add(os.path.join(voc_root, year, sub),
                       arcname=os.path.join('VOCdevkit', year, sub).rstrip('/'))
    return out_dir


def test_prepare_voc_verifies_and_extracts(voc, tmp_path):
    archives = _voc_archives(voc[0], str(tmp_path / 'archives'))
    # the official MD5s do not match these tiny archives
    with pytest.raises(SystemExit) as err:
        prepare_voc.main(['--archives', archives, '--out', str(tmp_path / 'out')])
    assert 'VOCtrainval_06-Nov-2007.tar has MD5' in str(err.value.code)
    assert 'c52e279531787c972589f7e41ab4ae64' in str(err.value.code)
    assert not os.path.exists(str(tmp_path / 'out' / 'VOC2007'))
    # with their own MD5s (md5sum format) they are verified and extracted
    sums = tmp_path / 'sums.md5'
    sums.write_text(''.join('%s  %s\n' % (file_md5(os.path.join(archives, n)), n)
                            for n in sorted(os.listdir(archives))))
    counts = prepare_voc.main(['--archives', archives, '--out', str(tmp_path / 'out'),
                               '--md5-file', str(sums)])
    assert counts == {(2007, 'trainval'): 2, (2007, 'test'): 3, (2012, 'trainval'): 2}
    from gluoncv.data import VOCDetection
    test = VOCDetection(root=str(tmp_path / 'out'), splits=[(2007, 'test')])
    assert len(test) == 3 and test[0][1].shape == (2, 6) and test[0][1][:, 5].sum() == 1
    assert [f for f in os.listdir(str(tmp_path / 'out')) if f.startswith('.tmp')] == []
    with pytest.raises(SystemExit) as err:   # no silent overwrite
        prepare_voc.main(['--archives', archives, '--out', str(tmp_path / 'out'),
                          '--skip-checksum'])
    assert '--overwrite' in str(err.value.code)


def test_prepare_voc_rejects_bad_archives(voc, tmp_path):
    archives = _voc_archives(voc[0], str(tmp_path / 'archives'))
    out = str(tmp_path / 'out')
    test_tar = os.path.join(archives, 'VOCtest_06-Nov-2007.tar')
    sums = tmp_path / 'sums.md5'
    sums.write_text(''.join('%s  %s\n' % (file_md5(os.path.join(archives, n)), n)
                            for n in sorted(os.listdir(archives))))
    # truncated download: the checksum catches it ...
    good = open(test_tar, 'rb').read()
    with open(test_tar, 'wb') as f:
        f.write(good[:len(good) // 3])
    with pytest.raises(SystemExit) as err:
        prepare_voc.main(['--archives', archives, '--out', out, '--md5-file', str(sums)])
    assert 'VOCtest_06-Nov-2007.tar has MD5' in str(err.value.code)
    assert 'truncated' in str(err.value.code)
    # ... and without checksums the extraction does
    with pytest.raises(SystemExit) as err:
        prepare_voc.main(['--archives', archives, '--out', out, '--skip-checksum'])
    assert 'VOCtest_06-Nov-2007.tar is corrupt or truncated' in str(err.value.code)
    assert not os.path.exists(os.path.join(out, 'VOC2007'))
    assert [f for f in os.listdir(out) if f.startswith('.tmp')] == []
    # the wrong archive under the right name
    shutil.copy(os.path.join(archives, 'VOCtrainval_11-May-2012.tar'), test_tar)
    with pytest.raises(SystemExit) as err:
        prepare_voc.main(['--archives', archives, '--out', out, '--skip-checksum'])
    assert 'not the expected one' in str(err.value.code)
    assert 'VOCdevkit/VOC2007/ImageSets/Main/test.txt' in str(err.value.code)
    # missing archives are all named
    os.remove(test_tar)
    os.remove(os.path.join(archives, 'VOCtrainval_11-May-2012.tar'))
    with pytest.raises(SystemExit) as err:
        prepare_voc.main(['--archives', archives, '--out', out])
    assert 'VOCtest_06-Nov-2007.tar, VOCtrainval_11-May-2012.tar' in str(err.value.code)


# --------------------------------------------------------------------------- the detector
def _backbone_key(key):
    """Structural name of a backbone parameter inside the detector."""
    for old, new in (('conv1.', 'features.0.'), ('bn1.', 'features.1.'),
                     ('layer1.', 'features.4.'), ('layer2.', 'features.5.'),
                     ('layer3.', 'features.6.'), ('layer4.', 'top_features.0.')):
        if key.startswith(old):
            return new + key[len(old):]
    return None


def test_detector_holds_the_backbone_and_freezes_what_gluoncv_freezes(backbone_run):
    net = detection.build_faster_rcnn(BACKBONE, backbone_run, short=128, max_size=200)
    saved = mx.nd.load(transfer.resolve_params_file(backbone_run))
    params = net._collect_params_with_prefix()
    mapped = {_backbone_key(k): v for k, v in saved.items() if _backbone_key(k)}
    assert set(mapped) <= set(params)
    for key, value in mapped.items():
        np.testing.assert_array_equal(params[key].data().asnumpy(), value.asnumpy(), err_msg=key)
    train = detection.trainable_params(net)
    assert 'features.5.0.conv1.weight' in train and 'top_features.0.1.conv2.weight' in train
    assert 'features.5.0.downsample.1.weight' in train          # ResNet-D shortcut conv
    assert 'rpn.conv1.0.weight' in train and 'class_predictor.weight' in train
    for frozen in ('features.0.0.weight', 'features.4.0.conv1.weight', 'features.5.0.bn1.gamma',
                   'top_features.0.0.bn2.beta', 'features.1.running_mean'):
        assert frozen not in train and params[frozen].grad_req == 'null', frozen
    assert all(p.grad_req == 'write' for p in train.values())
    # GluonCV's VOC model computes the same parameter set on its own backbone
    import gluoncv
    ref = gluoncv.model_zoo.get_model('faster_rcnn_resnet50_v1b_voc', pretrained=False,
                                      pretrained_base=False)
    ref.target_generator   # created on first use by GluonCV, at construction by us
    assert {k for k in ref._collect_params_with_prefix() if not k.startswith(('features',
                                                                               'top_features'))} \
        == {k for k in params if not k.startswith(('features', 'top_features'))}


def test_train_faster_rcnn_end_to_end(one_epoch, backbone_run, voc):
    save, result, pred_path = one_epoch
    with open(os.path.join(save, 'metrics.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert [r['epoch'] for r in records] == [1]
    assert records[0]['samples_per_sec'] > 0 and np.isfinite(records[0]['rcnn_ce'])
    assert records[0]['map'] == pytest.approx(result['map'])
    log = open(os.path.join(save, 'train.log')).read()
    assert 'samples/s' in log and 'final evaluation' in log and 'mAP' in log
    assert 'dog' in log and 'person' in log          # the per-class report
    with open(os.path.join(save, 'results.json')) as f:
        report = json.load(f)
    assert report['map'] == pytest.approx(result['map'])
    assert set(report['per_class_ap']) == set(detection.VOC_CLASSES)
    assert os.path.isfile(os.path.join(save, 'checkpoint-epoch0001', 'net.params'))
    assert os.path.isfile(os.path.join(save, 'checkpoint-best', 'net.params'))

    # the reported mAP is GluonCV's VOC07MApMetric on the same predictions
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    with open(pred_path, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 3
    assert sum(float(p['gt_difficults'].sum()) for p in predictions) == 1   # the difficult box
    ref = VOC07MApMetric(iou_thresh=0.5, class_names=list(detection.VOC_CLASSES))
    for p in predictions:
        ref.update(p['bboxes'][None], p['ids'][None], p['scores'][None], p['gt_bboxes'][None],
                   p['gt_ids'][None], p['gt_difficults'][None])
    names, values = ref.get()
    assert result['map'] == pytest.approx(values[-1], abs=1e-12)
    for name, value in zip(names[:-1], values[:-1]):
        assert (np.isnan(value) and report["per_class_ap"][name] is None) or \
            report['per_class_ap'][name] == pytest.approx(value, abs=1e-12)
    # ground truth scaled back to the original pixels
    objects = voc[1]['000001']
    gt = sorted(predictions[0]['gt_bboxes'].tolist())
    expected = sorted([[x1 - 1, y1 - 1, x2 - 1, y2 - 1] for _, x1, y1, x2, y2, _ in objects])
    np.testing.assert_allclose(gt, expected, atol=1.0)

    # fine-tuning moved the trained convolutions and left the frozen parts alone
    trained = mx.nd.load(os.path.join(save, 'checkpoint-epoch0001', 'net.params'))
    saved = mx.nd.load(transfer.resolve_params_file(backbone_run))
    for key in ('conv1.0.weight', 'bn1.running_var', 'layer1.0.conv1.weight', 'layer2.0.bn1.gamma',
                'layer3.1.bn2.running_mean', 'layer4.0.bn1.beta'):
        np.testing.assert_array_equal(trained[_backbone_key(key)].asnumpy(),
                                      saved[key].asnumpy(), err_msg=key)
    for key in ('layer2.0.conv1.weight', 'layer4.1.conv2.weight'):
        assert not np.array_equal(trained[_backbone_key(key)].asnumpy(), saved[key].asnumpy())


def test_resume_continues_from_the_checkpoint(one_epoch, backbone_run, voc, tmp_path):
    resumed = str(tmp_path / 'resumed')
    shutil.copytree(one_epoch[0], resumed, symlinks=True)
    train_faster_rcnn.main(_args(backbone_run, voc[0], resumed, '--epochs', '2', '--resume'))
    with open(os.path.join(resumed, 'metrics.jsonl')) as f:
        records = [json.loads(line) for line in f]
    assert [r['epoch'] for r in records] == [1, 2]
    # the optimizer state came back: 4 more updates, the lr decayed at epoch 1 (--lr-decay-epoch)
    assert records[1]['lr'] == pytest.approx(0.001 * 0.1)
    assert 'resumed from' in open(os.path.join(resumed, 'train.log')).read()
    a = mx.nd.load(os.path.join(one_epoch[0], 'checkpoint-epoch0001', 'net.params'))
    b = mx.nd.load(os.path.join(resumed, 'checkpoint-epoch0002', 'net.params'))
    assert sorted(a) == sorted(b)
    assert not np.array_equal(a['class_predictor.weight'].asnumpy(),
                              b['class_predictor.weight'].asnumpy())
    np.testing.assert_array_equal(a['features.4.0.conv1.weight'].asnumpy(),   # frozen stage 1
                                  b['features.4.0.conv1.weight'].asnumpy())
    with pytest.raises(FileNotFoundError):     # nothing to resume from
        train_faster_rcnn.main(_args(backbone_run, voc[0], tmp_path / 'empty', '--epochs', '1',
                                     '--resume'))


# --------------------------------------------------------------------------- evaluation
class _Oracle(mx.gluon.Block):
    """Returns, for the i-th test image, its non-difficult ground-truth boxes with score 1
    (in the coordinates of the resized input, as the detector does)."""

    def __init__(self, boxes, original_height):
        super(_Oracle, self).__init__()
        self._boxes, self._height, self._i = boxes, original_height, 0

    def forward(self, x):
        boxes = self._boxes[self._i]
        self._i += 1
        scale = self._height / float(x.shape[2])
        ids = mx.nd.array([[[b[0]] for b in boxes]])
        scores = mx.nd.ones((1, len(boxes), 1))
        bboxes = mx.nd.array([[[c / scale for c in b[1:]] for b in boxes]])
        return ids, scores, bboxes


def test_evaluation_ignores_difficult_boxes(voc):
    from gluoncv.data import VOCDetection
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    root, objects = voc
    test = VOCDetection(root=root, splits=[(2007, 'test')])
    cls = {c: i for i, c in enumerate(detection.VOC_CLASSES)}
    boxes = [[(cls[c], x1 - 1, y1 - 1, x2 - 1, y2 - 1)
              for c, x1, y1, x2, y2, diff in objects[img_id[1]] if not diff]
             for img_id in test._items]
    net = _Oracle(boxes, 120)
    net.short, net.max_size = 128, 200
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(detection.VOC_CLASSES))
    result = detection.evaluate(net, detection.val_loader(net, test, 1), [mx.cpu()], metric)
    # every non-difficult object found, the undetected difficult one not counted as missed
    assert result['map'] == pytest.approx(1.0)
    assert result['per_class']['person'] == pytest.approx(1.0)
    assert metric._n_pos[cls['person']] == 2 and metric._n_pos[cls['dog']] == 3
    # the same detections scored without the difficult flags miss a person
    plain = VOC07MApMetric(iou_thresh=0.5, class_names=list(detection.VOC_CLASSES))
    net._i = 0
    for x, y, scale in detection.val_loader(net, test, 1):
        ids, scores, bboxes = net(x[0])
        s = float(scale[0].asscalar())
        plain.update(bboxes * s, ids, scores, y[0][:, :, :4] * s, y[0][:, :, 4:5])
    assert plain.get()[1][-1] < 0.9


def test_metric_states_of_shards_merge_to_the_whole():
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    rng = np.random.RandomState(0)
    images = []
    for _ in range(12):
        gt = rng.uniform(0, 60, (3, 2))
        gt_boxes = np.concatenate([gt, gt + rng.uniform(10, 40, (3, 2))], axis=1)
        det = gt_boxes[rng.randint(0, 3, 5)] + rng.normal(0, 4, (5, 4))
        images.append((det[None], rng.randint(0, 3, (1, 5)), rng.rand(1, 5), gt_boxes[None],
                       rng.randint(0, 3, (1, 3)), (rng.rand(1, 3) < 0.2).astype(float)))
    whole = VOC07MApMetric(class_names=['a', 'b', 'c'])
    parts = [VOC07MApMetric(class_names=['a', 'b', 'c']) for _ in range(3)]
    for i, img in enumerate(images):
        whole.update(*img)
        parts[i % 3].update(*img)
    merged = VOC07MApMetric(class_names=['a', 'b', 'c'])
    detection.set_voc_state(merged, detection.merge_voc_states(
        [detection.voc_state(p) for p in parts]))
    np.testing.assert_allclose(merged.get()[1], whole.get()[1])
    assert not np.allclose(parts[0].get()[1], whole.get()[1])


@pytest.mark.subprocess
def test_horovod_two_ranks_merge_their_test_shards(backbone_run, voc, tmp_path):
    import signal
    import subprocess
    import sys
    horovodrun = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
    assert os.path.exists(horovodrun), 'horovodrun not found: build Horovod with `make horovod`'
    save = tmp_path / 'hvd'
    cmd = [horovodrun, '-np', '2', '--gloo', sys.executable,
           os.path.join(REPO, 'scripts', 'detection', 'train_faster_rcnn.py'), '--horovod'] + \
        _args(backbone_run, voc[0], save, '--epochs', '1', '--train-splits', '2007_trainval',
              '--lr-warmup', '0')
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=REPO, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail('horovodrun did not finish in 150 s:\n' + out[-3000:])
    assert proc.returncode == 0, out[-5000:]
    assert '1 per device x 1 device(s) x 2 worker(s)' in out
    with open(str(save / 'results.json')) as f:
        report = json.load(f)
    # rank 0 scored 2 test images and rank 1 one; the merged counts are those of all three
    assert report['positives']['dog'] == 3 and report['positives']['person'] == 2
    net = detection.build_faster_rcnn(BACKBONE, backbone_run, short=128, max_size=200,
                                      rpn_test_post_nms=16)
    net.load_parameters(str(save / 'checkpoint-epoch0001' / 'net.params'))
    from gluoncv.data import VOCDetection
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    test = VOCDetection(root=voc[0], splits=[(2007, 'test')])
    single = detection.evaluate(net, detection.val_loader(net, test, 1), [mx.cpu()],
                                VOC07MApMetric(class_names=list(detection.VOC_CLASSES)))
    assert report['detections'] == single['detections']
    assert report['positives'] == single['positives']
    assert report['map'] == pytest.approx(single['map'], abs=1e-9)


def test_damaged_voc_is_named(voc, tmp_path):
    """Malformed XML, unknown class, missing folder: errors naming the file or folder
    (GluonCV alone raises a ParseError without the file, and drops unknown objects)."""
    import shutil
    root = str(tmp_path / 'voc')
    shutil.copytree(voc[0], root)
    splits = [(2007, 'trainval')]
    detection.voc_dataset(root, splits)                                  # intact: fine
    with open(os.path.join(root, 'VOC2007', 'ImageSets', 'Main', 'trainval.txt')) as f:
        first = f.readline().strip() + '.xml'
    path = os.path.join(root, 'VOC2007', 'Annotations', first)
    with open(path) as f:
        text = f.read()
    with open(path, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(ValueError, match=r'%s is not valid XML \(.*line' % re.escape(first)):
        detection.voc_dataset(root, splits)
    name = re.search(r'<name>(\w+)</name>', text).group(1)
    with open(path, 'w') as f:
        f.write(text.replace('<name>%s</name>' % name, '<name>unicorn</name>', 1))
    with pytest.raises(ValueError, match=r"%s has an object of unknown class 'unicorn'; the 20 "
                                         r"classes are aeroplane" % re.escape(first)):
        detection.voc_dataset(root, splits)
    shutil.rmtree(os.path.join(root, 'VOC2007', 'JPEGImages'))
    with pytest.raises(FileNotFoundError, match=r'VOC2007.JPEGImages is missing.*prepare_voc'):
        detection.voc_dataset(root, splits)
