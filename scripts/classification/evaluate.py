"""Evaluate a classifier on a validation set: top-1/top-5, throughput and batch-1 latency,
with an ONNX file (onnxruntime), an MXNet export or a checkpoint.

The images go through the library's validation loaders (``RecordLoader`` / ``FolderLoader``
with ``train=False``), i.e. the validation transform of training
(:class:`gluon_tricks.data.ValTransform`), with the constants the model carries: an .onnx file
in its metadata, an MXNet export in PREFIX-meta.json; checkpoints do not record them, so give
``--input-size`` and ``--crop-ratio`` as in training.

Examples::

    python scripts/classification/evaluate.py exported/r50d.onnx --rec-val ~/data/val.rec
    python scripts/classification/evaluate.py exported/r50d --data-dir ~/data/imagenet
    python scripts/classification/evaluate.py runs/r50d --input-size 224 --rec-val val.rec

Throughput counts the model's time only (decoding is not timed; each batch shape is run once
before it is timed); latency is the median over ``--latency-runs`` single-image calls.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts
from gluon_tricks.amx import enable_amx  # noqa: E402
enable_amx()  # AMX for bfloat16/INT8 exports where the CPU has it

import argparse
import json
import os
import time

import mxnet as mx
import numpy as np

from gluon_tricks.sections import HelpFormatter, first_paragraph
from gluon_tricks import data as gdata
from gluon_tricks.errors import UserError
from gluon_tricks.engine import topk_counts
from gluon_tricks.inference import open_classifier


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__),
                                     formatter_class=HelpFormatter)
    parser.add_argument('source',
                        help='an .onnx file, an MXNet export prefix, a checkpoint directory '
                             '(net.params + state.json) or a training run directory')
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument('--rec-val', default=None, help='validation RecordIO file (.rec + .idx)')
    data.add_argument('--data-dir', default=None,
                      help='class folders: DATA_DIR/val/<class>/<image> (or DATA_DIR/<class>)')
    parser.add_argument('--idx-val', default=None, help='index of --rec-val (default: beside it)')
    parser.add_argument('--model', default=None,
                        help='zoo name, for a .params file (checkpoints record it)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='checkpoints: input side of training (default 224; 299 for '
                             'Inception-V3); exports carry their own')
    parser.add_argument('--crop-ratio', type=float, default=None,
                        help='checkpoints: validation crop ratio of training (default 0.875)')
    parser.add_argument('--mean', type=float, nargs=3, default=None, metavar=('R', 'G', 'B'),
                        help='override the model\'s RGB mean (0-255 scale)')
    parser.add_argument('--std', type=float, nargs=3, default=None, metavar=('R', 'G', 'B'),
                        help='override the model\'s RGB std (0-255 scale)')
    parser.add_argument('--batch-size', type=int, default=32, help='evaluation batch')
    parser.add_argument('-j', '--num-data-workers', '--num-workers', '--workers',
                        dest='num_workers', type=int, default=2,
                        help='decoding worker processes (0: in this process)')
    parser.add_argument('--latency-runs', type=int, default=20,
                        help='single-image calls timed for the batch-1 latency (0: skip)')
    parser.add_argument('--threads', type=int, default=None,
                        help='onnxruntime intra-op threads (default: one per core)')
    parser.add_argument('--json', default=None, help='also write the results to this file')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error('--batch-size must be positive')
    return parser, args


def _loader(args, clf):
    aug, meta = clf.aug, clf.meta
    if args.rec_val:
        return gdata.RecordLoader(os.path.expanduser(args.rec_val), args.idx_val,
                                  batch_size=args.batch_size, train=False, aug=aug,
                                  num_workers=args.num_workers, progress=False)
    root = os.path.expanduser(args.data_dir)
    if os.path.isdir(os.path.join(root, 'val')):
        root = os.path.join(root, 'val')
    return gdata.FolderLoader(root, batch_size=args.batch_size, train=False, aug=aug,
                              num_workers=args.num_workers, classes=meta.get('classes'))


def evaluate(clf, loader, latency_runs=20, topk=5):
    """Top-1/top-k, the model's throughput and its batch-1 latency over ``loader``.

    Returns
    -------
    dict
        ``top1``, ``top5``, ``correct1``, ``correct5``, ``total``, ``images_per_sec`` (model
        time only), ``model_seconds``, ``wall_seconds``, ``latency_ms`` (median batch-1),
        ``latency_p90_ms``.
    """
    correct1 = correctk = total = 0
    model_time = 0.0
    first = None
    tic = time.time()
    for data, label in loader:
        x = data.asnumpy()
        y = label.asnumpy().astype(np.int64)
        if first is None:
            first = x[:1].copy()
            clf(x)  # warm-up: graph planning for this batch shape
        t = time.perf_counter()
        logits = clf(x)
        model_time += time.perf_counter() - t
        c1, ck, n = topk_counts(mx.nd.array(logits), mx.nd.array(y), topk).asnumpy()
        correct1, correctk, total = correct1 + int(c1), correctk + int(ck), total + int(n)
    wall = time.time() - tic
    result = {'top1': correct1 / max(total, 1), 'top5': correctk / max(total, 1),
              'correct1': correct1, 'correct5': correctk, 'total': total,
              'images_per_sec': total / max(model_time, 1e-12), 'model_seconds': model_time,
              'wall_seconds': wall, 'latency_ms': None, 'latency_p90_ms': None}
    if first is not None and latency_runs > 0:
        for _ in range(2):
            clf(first)
        times = []
        for _ in range(latency_runs):
            t = time.perf_counter()
            clf(first)
            times.append((time.perf_counter() - t) * 1000)
        result['latency_ms'] = float(np.median(times))
        result['latency_p90_ms'] = float(np.percentile(times, 90))
    return result


def main(argv=None):
    parser, args = parse_args(argv)
    try:
        clf = open_classifier(args.source, model=args.model, input_size=args.input_size,
                              crop_ratio=args.crop_ratio, mean=args.mean, std=args.std,
                              num_threads=args.threads)
    except (FileNotFoundError, ValueError, ImportError, UserError) as err:
        parser.error(str(err))
    meta = clf.meta
    loader = _loader(args, clf)
    result = evaluate(clf, loader, args.latency_runs)
    result.update({'source': clf.path, 'format': clf.kind, 'model': meta.get('model'),
                   'input_size': meta['input_size'], 'crop_ratio': meta['crop_ratio'],
                   'batch_size': args.batch_size,
                   'data': args.rec_val or loader.root})
    print('%s (%s, %s, %d px, crop ratio %g) on %s' % (
        clf.path, clf.kind, meta.get('model') or 'model', meta['input_size'],
        meta['crop_ratio'], result['data']))
    print('top-1 %.4f  top-5 %.4f  (%d images)' % (result['top1'], result['top5'],
                                                  result['total']))
    print('%.1f img/s at batch %d (model time; %.1f s wall with decoding)'
          % (result['images_per_sec'], args.batch_size, result['wall_seconds']))
    if result['latency_ms'] is not None:
        print('batch-1 latency %.2f ms median, %.2f ms p90 (%d runs)'
              % (result['latency_ms'], result['latency_p90_ms'], args.latency_runs))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, sort_keys=True)
    return result


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
