"""Benchmark our training loop against GluonCV's, the data pipeline, and exported inference.

Four measurements, chosen with ``--what`` (default all), in one process:

``train``
    Training throughput (img/s) of our loop (``gluon_tricks.engine.TrainStep`` as used by
    ``train_imagenet.py``) on one synthetic batch, hybridized, after warm-up: the median of
    ``--windows`` windows of ``--iterations`` batches; meters are read once per window.
``reference``
    The same for GluonCV's per-batch loop (its same-named model from
    ``gluoncv.model_zoo``, ``gluon.Trainer`` with NAG, ``train_metric.update`` after every
    batch), its windows interleaved with ours; ``ratio`` = ours / reference.
``data``
    Our RecordIO training pipeline alone (decode + the paper's full augmentation) on a
    generated ``.rec`` of about 400x350 JPEGs, per decode thread and in total, against a bare
    ``mx.io.ImageRecordIter`` with GluonCV's arguments, at 1, 2, ... ``--data-threads``
    threads, and against our decode in the calling process (``-j 0``).
``inference``
    Throughput at ``--batch-size`` and batch-1 latency of the exported model
    (``gluon_tricks.export``: ``SymbolBlock.imports``) against the in-memory hybridized
    network.

Examples::

    python scripts/classification/benchmark.py --model resnet50_v1d --batch-size 16 \\
        --iterations 2 --windows 5
    python scripts/classification/benchmark.py --model resnet18_v1b --input-size 64 \\
        --batch-size 64 --what train,reference --json results.json
    python scripts/classification/benchmark.py --what train,reference --load 1

``--load N`` runs N competing busy processes during every measurement (a shared machine).

The human-readable report goes to stdout (progress to stderr); ``--json`` prints the results
as JSON instead (``--json FILE`` writes them to FILE and keeps the report). The measurements
are in ``tools/benchmark/`` (``suite.run``); this script parses and checks the flags.
"""
from gluon_tricks.threads import configure_threads
from gluon_tricks.amx import enable_amx
configure_threads()  # OpenMP threads, before MXNet starts
enable_amx()         # oneDNN's AMX kernels where the CPU has them (gluon_tricks/amx.py)

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from gluon_tricks.sections import HelpFormatter
from gluon_tricks.model_zoo import get_model_list  # noqa: E402
from tools.benchmark.loops import gluoncv_model_list  # noqa: E402
from tools.benchmark.machine import machine_info  # noqa: E402
from tools.benchmark.suite import report, run  # noqa: E402

WHAT = ('train', 'reference', 'train_bf16', 'data', 'inference', 'exports', 'digits')
DEFAULT_WHAT = ('train', 'reference', 'data', 'inference')
DTYPES = ('float32', 'float16', 'bfloat16')


def parse_args(argv=None):
    """Parse and check the command line (``parser.error`` names the bad flag)."""
    p = argparse.ArgumentParser(
        description='Benchmark the training loop against GluonCV\'s, the RecordIO pipeline and '
                    'exported inference.',
        formatter_class=HelpFormatter)
    p.add_argument('--model', default='resnet50_v1d', help='get_model name (ours and GluonCV\'s)')
    p.add_argument('--batch-size', type=int, default=16, help='batch per device')
    p.add_argument('--input-size', type=int, default=224, help='network input size')
    p.add_argument('--dtype', default='float32', choices=DTYPES,
                   help='float16 needs GPUs (no float16 GEMM on CPU in MXNet 1.9.1); '
                        'bfloat16 runs through mxnet.contrib.amp')
    p.add_argument('--loss-scale', default=None,
                   help="our loop's loss scaling: a number, 'dynamic' or 'none' (default as "
                        "train_imagenet.py: 'dynamic' for float16, else 'none')")
    p.add_argument('--label-smoothing', type=float, default=0.0,
                   help='epsilon for both loops (ours eq. 4, GluonCV eps/K); 0 = sparse labels')
    p.add_argument('--classes', type=int, default=1000, help='classifier outputs')
    p.add_argument('--num-gpus', type=int, default=0, help='GPUs; 0 = CPU')
    p.add_argument('--iterations', type=int, default=3,
                   help='batches per timed window (train, reference, inference)')
    p.add_argument('--windows', type=int, default=5, help='timed windows; the median is reported')
    p.add_argument('--warmup', type=int, default=2, help='untimed batches before the windows')
    p.add_argument('--what', default=','.join(DEFAULT_WHAT),
                   help='comma-separated subset of %s (train_bf16: our loop in bfloat16 in '
                        'a worker process; exports: float32, fused float32, bfloat16 and INT8 '
                        'exports; digits: their top-1 on the held-out digits)' % ','.join(WHAT))
    p.add_argument('--reference-env', default='gluoncv', choices=('gluoncv', 'same'),
                   help="gluoncv: GluonCV's loop in a worker process with GluonCV's default "
                        "environment (OMP_NUM_THREADS unset, no AMX); same: in this process, "
                        "in our environment")
    p.add_argument('--digits-steps', type=int, default=120,
                   help='training steps of the digits network (--what digits)')
    p.add_argument('--data-threads', type=int, default=None,
                   help='decode threads of the data benchmark (default: the usable cores); '
                        'measured with 1, 2, ... that many, each round also against our '
                        'in-process decode (-j 0)')
    p.add_argument('--data-images', type=int, default=2048,
                   help='records in the generated .rec (rounded up to whole batches); one '
                        'epoch per window')
    p.add_argument('--data-distinct', type=int, default=256,
                   help='different images among the records (generating is the slow part)')
    p.add_argument('--data-windows', type=int, default=None,
                   help='windows of the data benchmark (default: --windows)')
    p.add_argument('--image-size', default='400x350',
                   help='WIDTHxHEIGHT of the generated JPEGs (ImageNet average: about 400x350)')
    p.add_argument('--latency-calls', type=int, default=None,
                   help='timed batch-1 calls (default: 5 x --windows)')
    p.add_argument('--profile', default=None, metavar='TRACE',
                   help='also profile one step of our loop with the MXNet profiler (aggregate '
                        'stats in the results, chrome trace written to TRACE)')
    p.add_argument('--profile-top', type=int, default=15, help='operators listed in the profile')
    p.add_argument('--work-dir', default=None,
                   help='where the .rec and exported model go (kept and reused); default: a '
                        'temporary directory removed at the end')
    p.add_argument('--load', type=int, default=0, metavar='N',
                   help='N competing busy processes (a Python loop each) during every '
                        'measurement: a machine shared with other jobs')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', nargs='?', const='-', default=None, metavar='FILE',
                   help='print the results as JSON (or write them to FILE)')
    args = p.parse_args(argv)
    _check_args(p, args)
    return args


def _check_args(p, args):
    models = get_model_list()
    args.model = args.model.lower()
    if args.model not in models:
        p.error('unknown --model %r; valid names: %s' % (args.model, ', '.join(models)))
    what = [w.strip() for w in args.what.split(',') if w.strip()]
    bad = [w for w in what if w not in WHAT]
    if bad or not what:
        p.error('--what %r: unknown part(s) %s; choose a comma-separated subset of %s'
                % (args.what, ', '.join(bad) or '(none given)', ','.join(WHAT)))
    args.what = [w for w in WHAT if w in what]
    for name in ('batch_size', 'input_size', 'iterations', 'windows', 'data_images',
                 'data_distinct', 'classes', 'profile_top'):
        if getattr(args, name) < 1:
            p.error('--%s must be >= 1, got %d' % (name.replace('_', '-'), getattr(args, name)))
    if args.warmup < 0 or args.num_gpus < 0 or args.load < 0:
        p.error('--warmup, --num-gpus and --load must be >= 0')
    if args.input_size < 16:
        p.error('--input-size must be >= 16, got %d' % args.input_size)
    if not 0 <= args.label_smoothing < 1:
        p.error('--label-smoothing must be in [0, 1), got %r' % args.label_smoothing)
    if args.dtype == 'float16' and args.num_gpus == 0 and \
            set(args.what) & {'train', 'reference', 'inference'}:
        p.error('--dtype float16 needs --num-gpus >= 1: MXNet 1.9.1 has no float16 GEMM on '
                'CPU (use float32, or bfloat16 through AMP)')
    if 'reference' in args.what:
        gluoncv_models = gluoncv_model_list()
        if not gluoncv_models:
            p.error('"reference" needs GluonCV (pip install gluoncv); or leave it out of --what')
        if args.model not in gluoncv_models:
            p.error('GluonCV has no model %r, so there is no reference loop; leave "reference" '
                    'out of --what or pick a model both zoos have' % args.model)
    try:
        w, h = (int(v) for v in args.image_size.lower().split('x'))
        if w < 1 or h < 1:
            raise ValueError
        args.image_wh = (w, h)
    except ValueError:
        p.error('--image-size must be WIDTHxHEIGHT, e.g. 400x350, got %r' % args.image_size)
    if args.image_wh == (args.input_size, args.input_size):
        p.error('--image-size equal to the input size is refused by RecordLoader '
                '(ImageRecordIter corrupts such images); pick another size')
    cores = machine_info()['cores']
    args.data_threads = args.data_threads or cores
    if args.data_threads < 1:
        p.error('--data-threads must be >= 1')
    args.data_windows = args.data_windows or args.windows
    args.latency_calls = args.latency_calls or 5 * args.windows
    if args.loss_scale is None:
        args.loss_scale = 'dynamic' if args.dtype == 'float16' else 'none'
    if args.loss_scale == 'none':
        args.loss_scale = None
    elif args.loss_scale != 'dynamic':
        try:
            args.loss_scale = float(args.loss_scale)
        except ValueError:
            p.error("--loss-scale must be a number, 'dynamic' or 'none', got %r"
                    % args.loss_scale)


def main(argv=None):
    """Run the benchmark (:func:`tools.benchmark.suite.run`); returns the results dict."""
    args = parse_args(argv)
    command = ' '.join([os.path.basename(sys.argv[0])] +
                       (sys.argv[1:] if argv is None else list(argv)))
    results = run(args, command)
    if args.json == '-':
        print(json.dumps(results, indent=1, sort_keys=True))
    else:
        print(report(results))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(results, f, indent=1, sort_keys=True)
    return results

if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
