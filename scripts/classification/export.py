"""Export a trained checkpoint for deployment: an MXNet symbol + params pair, or ONNX.

A run directory or checkpoint directory as ``--params`` gives the model, input size, crop
ratio, mean, std and class names the run trained with (its ``config.json``); a flag given
anyway and different from the run's is used with a warning naming both values.

Examples::

    # ONNX of a run's best checkpoint, everything read from the run
    python scripts/classification/export.py --params runs/r50d --format onnx --out exported/r50d

    # MXNet: exported/r50d-symbol.json, -0000.params, -meta.json
    python scripts/classification/export.py --model resnet50_v1d \\
        --params runs/r50d/checkpoint-best/net.params --out exported/r50d

    # ONNX (needs the [onnx] extra): exported/r50d.onnx, checked with onnx.checker and
    # compared with MXNet through onnxruntime on a random batch
    python scripts/classification/export.py --model resnet50_v1d --format onnx \\
        --params runs/r50d/checkpoint-best/net.params --out exported/r50d \\
        --class-names data/classes.txt
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts
from gluon_tricks.amx import enable_amx  # noqa: E402
enable_amx()  # AMX for bfloat16/INT8 exports where the CPU has it

import argparse
import os

from gluon_tricks.sections import first_paragraph
from gluon_tricks.errors import UserError
from gluon_tricks.export import export_model
from gluon_tricks.inference import default_input_size, reconcile, resolve_checkpoint
from gluon_tricks.model_zoo import get_model_list
from gluon_tricks.model_zoo.io import classes_in_params, load_model

#: the largest relative difference between onnxruntime and MXNet that export accepts
PARITY_TOLERANCE = 1e-4


def onnx_path_of(out):
    """``--out`` as the .onnx file name: ``exported/r50d`` -> ``exported/r50d.onnx``."""
    return out if out.endswith('.onnx') else out + '.onnx'


def check_parity(net, onnx_path, input_size, batch=2, seed=0):
    """Run a random batch through MXNet and onnxruntime; the largest difference relative to
    the largest MXNet logit."""
    import mxnet as mx
    import numpy as np
    from gluon_tricks.onnx import OnnxClassifier
    x = np.random.RandomState(seed).normal(size=(batch, 3, input_size, input_size))
    x = x.astype('float32')
    ctx = next(iter(net.collect_params().values())).list_ctx()[0]
    ref = net(mx.nd.array(x, ctx=ctx)).asnumpy()
    out = OnnxClassifier(onnx_path)(x)
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12))


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('--model', default=None,
                        help='get_model name, e.g. resnet50_v1d (default: the run\'s)')
    parser.add_argument('--params', required=True,
                        help='a training run directory (its best checkpoint), a checkpoint '
                             'directory, or a .params file (a checkpoint\'s net.params, or '
                             'GluonCV\'s file of the same model)')
    parser.add_argument('--out', required=True,
                        help='output prefix, e.g. exported/r50d (ONNX: PREFIX.onnx, or the '
                             'given name if it ends with .onnx)')
    parser.add_argument('--format', default='mxnet', choices=['mxnet', 'onnx', 'both'],
                        help='mxnet: PREFIX-symbol.json/-0000.params/-meta.json; onnx: one '
                             '.onnx file (weights, input size and preprocessing inside)')
    parser.add_argument('--classes', type=int, default=None,
                        help='number of classes (default: read from the params file)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='input side (default: the run\'s; else 224, 299 for Inception-V3)')
    parser.add_argument('--crop-ratio', type=float, default=None,
                        help='validation center-crop ratio (default: the run\'s; else the '
                             'paper\'s 224/256 = 0.875)')
    parser.add_argument('--mean', type=float, nargs=3, default=None, metavar=('R', 'G', 'B'),
                        help='RGB mean on the 0-255 scale (default: the paper\'s)')
    parser.add_argument('--std', type=float, nargs=3, default=None, metavar=('R', 'G', 'B'),
                        help='RGB std on the 0-255 scale (default: the paper\'s)')
    parser.add_argument('--class-names', default=None,
                        help='text file with one class name per line (e.g. the data set\'s '
                             'classes.txt written by prepare_imagenet.py)')
    parser.add_argument('--no-check', action='store_true',
                        help='ONNX: skip the onnxruntime-against-MXNet comparison')
    parser.add_argument('--precision', default='float32',
                        choices=['float32', 'float32-fused', 'bfloat16', 'int8'],
                        help='MXNet format: int8 = oneDNN quantization with calibration; '
                             'bfloat16 = AMP conversion (needs avx512_bf16 or amx_bf16); '
                             'float32-fused = oneDNN graph fusion')
    parser.add_argument('--calib-mode', default='naive', choices=['naive', 'entropy'],
                        help='int8: naive = min/max of the layer outputs; entropy = KL '
                             'thresholds (slower)')
    parser.add_argument('--num-calib-images', type=int, default=256,
                        help='int8: calibration images (a random sample of --calib-data)')
    parser.add_argument('--calib-data', default=None,
                        help='int8: .rec file or class-folder tree of training images, read '
                             'with the validation transform')
    args = parser.parse_args(argv)
    if args.precision != 'float32' and args.format != 'mxnet':
        parser.error('--precision %s writes the MXNet format only (ONNX exports are float32): '
                     'use --format mxnet' % args.precision)
    if args.precision == 'int8' and not args.calib_data:
        parser.error('--precision int8 needs --calib-data (a .rec file or a class folder of '
                     'training images)')
    if args.calib_data and not (os.path.isdir(args.calib_data) or (
            os.path.isfile(args.calib_data) and args.calib_data.endswith('.rec'))):
        parser.error('--calib-data %s is neither a class-folder tree nor an existing .rec file'
                     % args.calib_data)
    if not os.path.exists(args.params):
        parser.error('--params %s does not exist' % args.params)
    names = None
    if args.class_names:
        if not os.path.isfile(args.class_names):
            parser.error('--class-names %s does not exist' % args.class_names)
        with open(args.class_names) as f:
            names = [line.strip() for line in f if line.strip()]
    try:
        args.params, args.model, settings = resolve_checkpoint(args.params, args.model)
    except (FileNotFoundError, ValueError, UserError) as err:
        parser.error(str(err))
    if not args.model:
        parser.error('--model is needed for %s (no run configuration names it)' % args.params)
    if args.model.lower() not in get_model_list():
        parser.error('unknown --model %r; valid names: %s'
                     % (args.model, ', '.join(get_model_list())))
    run = reconcile(settings, {'input_size': args.input_size, 'crop_ratio': args.crop_ratio,
                               'mean': args.mean, 'std': args.std, 'classes': names},
                    settings.get('config', 'no config.json'))
    args.input_size = run['input_size'] or default_input_size(args.model)
    args.crop_ratio = run['crop_ratio'] or 0.875
    args.mean, args.std, names = run['mean'], run['std'], run['classes']
    try:
        net = load_model(args.model, args.params, classes=args.classes)
    except ValueError as err:
        parser.error(str(err))
    outputs = args.classes or classes_in_params(args.params)
    if names is not None and outputs is not None and len(names) != outputs:
        parser.error('--class-names %s lists %d names but the model has %d outputs: give the '
                     'classes.txt of the data the model was trained on'
                     % (args.class_names, len(names), outputs))
    options = dict(input_size=args.input_size, crop_ratio=args.crop_ratio, mean=args.mean,
                   std=args.std, class_names=names, model_name=args.model)
    paths = {}
    if args.format in ('mxnet', 'both'):
        out = args.out[:-len('.onnx')] if args.out.endswith('.onnx') else args.out
        if args.precision == 'float32':
            paths.update(export_model(net, out, **options))
        else:
            from gluon_tricks.quantize import export_precision
            try:
                res = export_precision(net, out, args.precision, calib_loader=args.calib_data,
                                       calib_mode=args.calib_mode,
                                       num_calib_images=args.num_calib_images, log=print,
                                       **options)
            except (RuntimeError, ValueError, FileNotFoundError, UserError) as err:
                parser.error(str(err))
            paths.update({k: v for k, v in res.items() if k != 'meta'})
    if args.format in ('onnx', 'both'):
        try:
            from gluon_tricks.onnx import export_onnx
            paths['onnx'] = export_onnx(net, onnx_path_of(args.out), **options)
        except ImportError as err:
            parser.error(str(err))
    for kind, path in paths.items():
        print('%-6s %s' % (kind, path))
    if 'onnx' in paths and not args.no_check:
        diff = check_parity(net, paths['onnx'], args.input_size)
        print('onnx.checker passed; onnxruntime vs MXNet on a random batch of 2: max relative '
              'difference %.2e' % diff)
        if not diff <= PARITY_TOLERANCE:
            raise SystemExit('onnxruntime differs from MXNet by %.3g (relative), more than %g: '
                             'do not use %s' % (diff, PARITY_TOLERANCE, paths['onnx']))
    return paths


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
