"""FCN on ADE20K from our backbone (paper section 6.2): data preparation from the archive, the
FCN built on our checkpoint (GluonCV's layout), train_fcn.py end to end on tiny ADE20K data
with an exact resume and a 2-rank Horovod run, and pixAcc/mIoU checked against GluonCV's
SegmentationMetric."""
import json
import os
import signal
import subprocess
import sys
import zipfile

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks import segmentation, transfer
from helpers.scripts_runner import REPO, load_script
from helpers.transfer_data import BACKBONE, tiny_backbone, write_ade20k
from tools.datasets.ade20k import ADE20K_ARCHIVE
from tools.datasets.archives import file_md5

train_fcn = load_script('segmentation', 'train_fcn')
prepare_ade20k = load_script('segmentation', 'prepare_ade20k')

SMALL = ['--base-size', '64', '--crop-size', '48', '--batch-size', '2', '--test-batch-size',
         '2', '-j', '0', '--log-interval', '1', '--warmup-epochs', '0.5']


@pytest.fixture(scope='module')
def backbone_run(tmp_path_factory):
    return tiny_backbone(tmp_path_factory)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    write_ade20k(root)
    return str(root)


def _args(backbone_run, ade_root, save_dir, *extra):
    return ['--backbone', BACKBONE, '--backbone-params', backbone_run, '--data-dir', ade_root,
            '--save-dir', str(save_dir)] + SMALL + list(extra)


def _metrics(save_dir):
    with open(os.path.join(str(save_dir), 'metrics.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_flags_default_to_the_paper_fcn_setting(capsys):
    cfg = train_fcn.parse_args(['--backbone', 'resnet50_v1d', '--backbone-params', 'x'])
    d, m, o = cfg.data, cfg.model, cfg.optim
    assert (d.base_size, d.crop_size, m.aux, m.aux_weight) == (520, 480, True, 0.5)
    assert (o.num_epochs, o.base_lr, o.base_batch_size, o.power) == (120, 0.01, 16, 0.9)
    assert o.warmup_epochs > 0 and o.wd == 1e-4 and o.momentum == 0.9
    assert (o.lr_mode, o.optimizer, cfg.task) == ('poly', 'sgd', 'segmentation')
    with pytest.raises(SystemExit):
        train_fcn.parse_args(['--help'])
    text = capsys.readouterr().out
    for flag in ('--backbone-params', '--horovod', '--resume', '--aux-weight', '--crop-size',
                 '--base-size', '--warmup-epochs', '--syncbn', '--no-aux', '--eval-mode'):
        assert flag in text
    with pytest.raises(SystemExit):
        train_fcn.parse_args(['--backbone', 'resnet18_v1d', '--backbone-params', 'x',
                              '--crop-size', '50'])


# --------------------------------------------------------------------------- prepare_ade20k.py
def _zip(src_root, path, arc_root='ADEChallengeData2016'):
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
        base = os.path.join(src_root, 'ADEChallengeData2016')
        for folder, _, files in os.walk(base):
            for name in sorted(files):
                full = os.path.join(folder, name)
                zf.write(full, os.path.join(arc_root, os.path.relpath(full, base)))
    return path


def test_prepare_ade20k_verifies_and_extracts(ade, tmp_path):
    archive = _zip(ade, str(tmp_path / 'ADEChallengeData2016.zip'))
    out = str(tmp_path / 'out')
    with pytest.raises(SystemExit) as err:        # the official MD5 does not match
        prepare_ade20k.main(['--archive', archive, '--out', out])
    assert 'has MD5' in str(err.value.code) and ADE20K_ARCHIVE[1] in \
        str(err.value.code)
    assert not os.path.exists(out) or os.listdir(out) == []
    counts = prepare_ade20k.main(['--archive', archive, '--out', out,
                                  '--md5', file_md5(archive)])
    assert counts == {'training': 4, 'validation': 3}
    data = segmentation.ade20k_dataset(out, 'val', 'testval')
    img, mask = data[0]
    assert img.shape == (3, 60, 80) and mask.shape == (60, 80)
    assert set(np.unique(mask.asnumpy()).tolist()) == {-1, 0, 2, 4}   # 0 "other" -> ignored
    assert [f for f in os.listdir(out) if f.startswith('.tmp')] == []


def test_prepare_ade20k_rejects_bad_archives(ade, tmp_path):
    archive = _zip(ade, str(tmp_path / 'ADEChallengeData2016.zip'))
    good = open(archive, 'rb').read()
    out = str(tmp_path / 'out')
    md5 = file_md5(archive)
    truncated = str(tmp_path / 'truncated.zip')
    with open(truncated, 'wb') as f:
        f.write(good[:len(good) // 2])
    with pytest.raises(SystemExit) as err:                       # caught by the checksum
        prepare_ade20k.main(['--archive', truncated, '--out', out, '--md5', md5])
    assert 'truncated.zip has MD5' in str(err.value.code)
    with pytest.raises(SystemExit) as err:                       # and without it
        prepare_ade20k.main(['--archive', truncated, '--out', out, '--skip-checksum'])
    assert 'truncated.zip is not a readable zip file' in str(err.value.code)
    corrupt = bytearray(good)
    first = zipfile.ZipFile(archive).infolist()[0]
    start = first.header_offset + 30 + len(first.filename) + len(first.extra)
    corrupt[start:start + 16] = b'\xff' * 16                      # damage compressed data
    corrupt_path = str(tmp_path / 'corrupt.zip')
    with open(corrupt_path, 'wb') as f:
        f.write(bytes(corrupt))
    with pytest.raises(SystemExit) as err:
        prepare_ade20k.main(['--archive', corrupt_path, '--out', out, '--skip-checksum'])
    assert 'corrupt.zip is corrupt or truncated' in str(err.value.code)
    wrong = _zip(ade, str(tmp_path / 'wrong.zip'), arc_root='SomethingElse')
    with pytest.raises(SystemExit) as err:
        prepare_ade20k.main(['--archive', wrong, '--out', out, '--skip-checksum'])
    assert 'not the expected one' in str(err.value.code)
    with pytest.raises(SystemExit) as err:
        prepare_ade20k.main(['--archive', str(tmp_path / 'missing.zip'), '--out', out])
    assert 'missing.zip is missing' in str(err.value.code)
    assert not os.path.exists(os.path.join(out, 'ADEChallengeData2016'))


# --------------------------------------------------------------------------- the model
def test_fcn_holds_the_dilated_backbone_in_gluoncv_layout(backbone_run, tmp_path):
    net = segmentation.build_fcn(BACKBONE, backbone_run, crop_size=48)
    saved = mx.nd.load(transfer.resolve_params_file(backbone_run))
    params = net._collect_params_with_prefix()
    for key, value in saved.items():
        if not key.startswith('fc.'):
            np.testing.assert_array_equal(params[key].data().asnumpy(), value.asnumpy(),
                                          err_msg=key)
    assert params['head.block.0.weight'].shape == (128, 512, 3, 3)     # 512 / 4 channels
    assert params['auxlayer.block.0.weight'].shape == (64, 256, 3, 3)
    assert params['head.block.4.weight'].lr_mult == 10
    out, aux = net(mx.nd.zeros((2, 3, 48, 48)))
    assert out.shape == aux.shape == (2, 150, 48, 48)
    # on resnet50_v1s (GluonCV's dilated ResNet-50) the parameter names are those of GluonCV's
    # fcn_resnet50_ade
    import gluoncv
    base = transfer.get_model('resnet50_v1s', classes=4)
    base.initialize()
    base(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / 'r50s.params')
    base.save_parameters(path)
    ours = segmentation.build_fcn('resnet50_v1s', path, crop_size=48)
    ref = gluoncv.model_zoo.get_model('fcn_resnet50_ade', pretrained=False,
                                      pretrained_base=False)
    assert set(ours._collect_params_with_prefix()) - {'fc.weight', 'fc.bias'} == \
        set(ref._collect_params_with_prefix())


def test_metric_equals_gluoncv_segmentation_metric():
    from gluoncv.utils.metrics.segmentation import SegmentationMetric as GluonCVMetric
    rng = np.random.RandomState(0)
    ours, ref = segmentation.SegmentationMetric(150), GluonCVMetric(150)
    for _ in range(3):
        label = rng.randint(-1, 12, (2, 9, 7))
        logits = rng.rand(2, 150, 9, 7)
        logits[:, :12] += 0.6 * (np.arange(12)[None, :, None, None] == label[:, None])
        ours.update(mx.nd.array(label), mx.nd.array(logits))
        ref.update(mx.nd.array(label), mx.nd.array(logits))
    np.testing.assert_allclose(ours.get(), ref.get(), rtol=1e-12)
    assert 0 < ours.get()[0] < 1 and 0 < ours.get()[1] < 1
    # counts of shards add up to the whole (what the Horovod all-reduce relies on)
    a, b = segmentation.SegmentationMetric(150), segmentation.SegmentationMetric(150)
    label = rng.randint(-1, 5, (4, 6, 6))
    logits = rng.rand(4, 150, 6, 6)
    a.update(label[:1], logits[:1])
    b.update(label[1:], logits[1:])
    whole = segmentation.SegmentationMetric(150)
    whole.update(label, logits)
    a.load_state(a.state() + b.state())
    np.testing.assert_allclose(a.get(), whole.get())


# --------------------------------------------------------------------------- train_fcn.py
def test_train_fcn_end_to_end_and_resume_exactly(backbone_run, ade, tmp_path):
    straight = tmp_path / 'straight'
    result = train_fcn.main(_args(backbone_run, ade, straight, '--epochs', '3'))
    records = _metrics(straight)
    assert [r['epoch'] for r in records] == [1, 2, 3]
    assert all(r['samples_per_sec'] > 0 and np.isfinite(r['train_loss']) for r in records)
    assert records[-1]['mIoU'] == pytest.approx(result['mIoU'])
    log = open(str(straight / 'train.log')).read()
    assert 'samples/s' in log and 'pixAcc' in log and 'mIoU' in log
    with open(str(straight / 'results.json')) as f:
        report = json.load(f)
    assert (report['pixAcc'], report['mIoU']) == (result['pixAcc'], result['mIoU'])
    assert len(report['per_class_iou']) == 150
    # poly decay after warmup: the lr falls every epoch
    assert records[0]['lr'] > records[1]['lr'] > records[2]['lr'] > 0

    # the reported numbers are GluonCV's SegmentationMetric on the final model's predictions
    from gluoncv.utils.metrics.segmentation import SegmentationMetric as GluonCVMetric
    net = segmentation.build_fcn(BACKBONE, backbone_run, base_size=64, crop_size=48)
    net.load_parameters(str(straight / 'checkpoint-epoch0003' / 'net.params'))
    val = segmentation.ade20k_dataset(ade, 'val', 'val', 64, 48)
    ref = GluonCVMetric(150)
    for data, target in segmentation.val_loader(val, 2):
        ref.update(target, net(data)[0])
    assert (result['pixAcc'], result['mIoU']) == pytest.approx(ref.get(), abs=1e-12)
    assert result['val_images'] == 3
    # full images ('testval'): ours equals GluonCV's predict() + SegmentationMetric
    full = segmentation.ade20k_dataset(ade, 'val', 'testval', 64, 48)
    ours = segmentation.evaluate(net, segmentation.val_loader(full, 1), [mx.cpu()],
                                 segmentation.SegmentationMetric(150), mode='testval')
    ref.reset()
    for data, target in segmentation.val_loader(full, 1):
        pred = net.predict(data)
        assert pred.shape == (1, 150, 60, 80)
        ref.update(target, pred)
    assert (ours['pixAcc'], ours['mIoU']) == pytest.approx(ref.get(), abs=1e-12)
    assert ref.total_label == 3 * (60 * 80 - 4 * 6)          # "other" pixels ignored

    # killed right after the checkpoint of epoch 2 and resumed: the uninterrupted weights
    resumed = tmp_path / 'resumed'
    args = _args(backbone_run, ade, resumed, '--epochs', '3')

    from gluon_tricks.training import loop

    class Killed(loop.CheckpointManager):
        def save(self, epoch, *a, **kw):
            path = super(Killed, self).save(epoch, *a, **kw)
            if epoch == 2:
                raise KeyboardInterrupt('simulated kill after epoch 2')
            return path

    loop.CheckpointManager = Killed
    try:
        with pytest.raises(KeyboardInterrupt):
            train_fcn.main(args)
    finally:
        loop.CheckpointManager = Killed.__bases__[0]
    train_fcn.main(args + ['--resume'])
    assert [r['epoch'] for r in _metrics(resumed)] == [1, 2, 3]
    assert 'resumed from' in open(str(resumed / 'train.log')).read()
    a = mx.nd.load(str(resumed / 'checkpoint-epoch0003' / 'net.params'))
    b = mx.nd.load(str(straight / 'checkpoint-epoch0003' / 'net.params'))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(a[key].asnumpy(), b[key].asnumpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def _env():
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=REPO + os.pathsep + env.get('PYTHONPATH', ''))
    for key in ('HOROVOD_RANK', 'HOROVOD_SIZE'):
        env.pop(key, None)
    return env


REPLAY = """
import json, sys
import mxnet as mx
from gluon_tricks import segmentation
backbone, backbone_params, ade, params = sys.argv[1:]
net = segmentation.build_fcn(backbone, backbone_params, base_size=64, crop_size=48)
net.load_parameters(params)
net.hybridize()
val = segmentation.ade20k_dataset(ade, 'val', 'val', 64, 48)
out = []
for rank in range(2):
    loader = segmentation.val_loader(val, 2, num_parts=2, part_index=rank)
    metric = segmentation.SegmentationMetric(150)
    images = segmentation.evaluate(net, loader, [mx.cpu()], metric)['images']
    out.append({'batches': [list(b) for b in loader.batch_sampler], 'images': images,
                'state': metric.state().tolist()})
print(json.dumps(out))
"""


@pytest.mark.subprocess
def test_horovod_two_ranks_score_the_whole_validation_set(backbone_run, ade, tmp_path):
    horovodrun = os.path.join(os.path.dirname(sys.executable), 'horovodrun')
    assert os.path.exists(horovodrun), 'horovodrun not found: build Horovod with `make horovod`'
    save = tmp_path / 'hvd'
    cmd = [horovodrun, '-np', '2', '--gloo', sys.executable,
           os.path.join(REPO, 'scripts', 'segmentation', 'train_fcn.py'), '--horovod'] + \
        _args(backbone_run, ade, save, '--epochs', '1')
    cmd[cmd.index('--batch-size') + 1] = '1'
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(), cwd=REPO, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail('horovodrun did not finish in 150 s:\n' + out[-3000:])
    assert proc.returncode == 0, out[-5000:]
    assert 'global batch 2 = 1 per device x 1 device(s) x 2 worker(s)' in out
    with open(str(save / 'results.json')) as f:
        report = json.load(f)
    # the all-reduced counts of the two shards equal the counts of the saved model on each
    # rank's shard, scored the way that rank did: the same batches (rank 0: images 0 and 2 in
    # one batch, rank 1: image 1), hybridized, one OpenMP thread, in a separate process. A
    # different batch composition (one process on [0, 1] + [2]) or thread count may run other
    # oneDNN kernels and flip pixels of this barely trained FCN; like for like, the integer
    # counts are equal on any CPU. (The ranks validate with rank 0's BatchNorm statistics,
    # which train_fcn.py broadcasts before validating: those of the saved model.)
    replay = subprocess.run(
        [sys.executable, '-c', REPLAY, BACKBONE, backbone_run, ade,
         str(save / 'checkpoint-epoch0001' / 'net.params')],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=120)
    assert replay.returncode == 0, replay.stderr[-3000:]
    shards = json.loads(replay.stdout.strip().splitlines()[-1])
    assert [s['batches'] for s in shards] == [[[0, 2]], [[1]]]
    assert [s['images'] for s in shards] == [2, 1]
    states = [np.array(s['state'], np.int64) for s in shards]
    val = segmentation.ade20k_dataset(ade, 'val', 'val', 64, 48)
    merged = segmentation.SegmentationMetric(150)
    merged.load_state(states[0] + states[1])
    assert 0 < merged.labeled <= 3 * 48 * 48
    counts = report['counts']
    assert [counts['correct'], counts['labeled']] == [merged.correct, merged.labeled]
    for key in ('inter', 'area_pred', 'area_label'):
        assert counts[key] == getattr(merged, key).tolist(), key
    # the same integers through the same formulas: equal to the last bit
    assert (report['pixAcc'], report['mIoU']) == merged.get()
    assert [report['per_class_iou'][c] for c in val.classes] == merged.iou().tolist()


def test_ade20k_without_annotations_is_named(ade, tmp_path):
    """GluonCV alone says "Found 0 images" when the annotations folder is missing."""
    import shutil
    root = str(tmp_path / 'ade')
    shutil.copytree(ade, root)
    segmentation.ade20k_dataset(root, 'val', 'val')                      # intact: fine
    shutil.rmtree(os.path.join(root, 'ADEChallengeData2016', 'annotations', 'validation'))
    with pytest.raises(FileNotFoundError,
                       match=r'annotations.validation is missing.*prepare_ade20k'):
        segmentation.ade20k_dataset(root, 'val', 'val')
