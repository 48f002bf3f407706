"""Flags the training scripts refuse when they are parsed, before any work: values out of
range, combinations without effect, and float16 without GPUs (naming the alternative the
CPU offers); detection and segmentation share the checks of classification."""
import pytest

from helpers.scripts_runner import load_script

train_imagenet = load_script('classification', 'train_imagenet')
train_faster_rcnn = load_script('detection', 'train_faster_rcnn')
train_fcn = load_script('segmentation', 'train_fcn')


@pytest.mark.parametrize('extra,expected', [
    (['--mixup', '--mixup-alpha', '-1'], '--mixup-alpha must be positive'),
    (['--mixup', '--mixup-alpha', '0'], '--mixup-alpha must be positive'),
    (['--label-smoothing', '--smoothing-eps', '1'], '--smoothing-eps must be in [0, 1)'),
    (['--label-smoothing', '--smoothing-eps', '-0.1'], '--smoothing-eps must be in [0, 1)'),
    (['--last-gamma', '--model', 'mobilenet1.0'], '--model mobilenet1.0 has none'),
    (['--horovod', '--kvstore', 'local'], '--kvstore local has no effect with --horovod'),
    (['--save-frequency', '0'], '--save-frequency must be a positive number of epochs'),
    (['--log-interval', '0'], '--log-interval must be a positive number of batches'),
    (['--checkpoint-interval', '-1'], '--checkpoint-interval must be >= 0'),
    (['--resume', '--overwrite'], 'choose one'),
    (['--teacher-input-size', '32'], '--teacher-input-size needs --teacher'),
])
def test_bad_training_flags_are_refused_at_parse_time(extra, expected, capsys):
    with pytest.raises(SystemExit) as err:
        train_imagenet.parse_args(['--save-dir', 'x'] + extra)
    assert err.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.parametrize('script', [train_faster_rcnn, train_fcn])
@pytest.mark.parametrize('extra,expected', [
    (['--horovod', '--kvstore', 'device'], 'has no effect with --horovod'),
    (['--log-interval', '0'], '--log-interval must be'),
    (['--save-interval', '0'], '--save-frequency must be'),
    (['--checkpoint-interval', '-2'], '--checkpoint-interval must be >= 0'),
    (['--resume', '--overwrite'], 'choose one'),
])
def test_detection_and_segmentation_share_the_flag_checks_and_defaults(script, extra,
                                                                       expected, capsys):
    with pytest.raises(SystemExit):
        script.parse_args(['--backbone', 'resnet18_v1b', '--backbone-params', 'x'] + extra)
    assert expected in capsys.readouterr().err
    cfg = script.parse_args(['--backbone', 'resnet18_v1b', '--backbone-params', 'x']).run
    assert cfg.kvstore == 'device' and cfg.checkpoint_interval == 0 and not cfg.overwrite


@pytest.mark.parametrize('supported', [True, False])
def test_float16_without_gpus_is_refused_naming_the_alternative(supported, capsys,
                                                                monkeypatch):
    import gluon_tricks.precision as precision
    monkeypatch.setattr(precision, 'bfloat16_supported',
                        lambda refresh=False: (True, 'ok') if supported else
                        (False, 'no avx512_bf16'))
    with pytest.raises(SystemExit):
        train_imagenet.parse_args(['--dtype', 'float16'])
    err = capsys.readouterr().err
    assert '--dtype float16 needs GPUs (--num-gpus N)' in err
    if supported:
        assert 'use --dtype bfloat16' in err
    else:
        assert 'Use --dtype float32' in err and 'no avx512_bf16' in err
    train_imagenet.parse_args(['--dtype', 'float16', '--num-gpus', '1'])  # GPUs: allowed
