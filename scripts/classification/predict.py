"""Classify image files and print the top-5 classes, with an ONNX file (onnxruntime), an MXNet
export or a checkpoint.

Every format gets the validation transform of training (resize the shorter side to
``ceil(input_size / crop_ratio)``, center crop, normalise): an .onnx file carries its constants
in its metadata, an MXNet export in PREFIX-meta.json; for a checkpoint give ``--input-size``
and ``--crop-ratio`` as in training.

Examples::

    python scripts/classification/predict.py --model-file exported/r50d.onnx img1.jpg img2.jpg
    python scripts/classification/predict.py --prefix exported/r50d img1.jpg
    python scripts/classification/predict.py --model-file runs/r50d --input-size 224 img1.jpg
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts
from gluon_tricks.amx import enable_amx  # noqa: E402
enable_amx()  # AMX for bfloat16/INT8 exports where the CPU has it

import argparse
import os
import sys

import numpy as np

from gluon_tricks.data import CorruptImageError, load_image
from gluon_tricks.errors import UserError
from gluon_tricks.inference import open_classifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--model-file', dest='source',
                     help='an .onnx file, an MXNet export prefix, a checkpoint directory '
                          '(net.params + state.json) or a training run directory')
    src.add_argument('--prefix', dest='source',
                     help='prefix given to export.py (reads PREFIX-symbol.json, '
                          'PREFIX-0000.params, PREFIX-meta.json)')
    parser.add_argument('--model', default=None,
                        help='zoo name, for a .params file (checkpoints record it)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='checkpoints: input side of training (default 224; 299 for '
                             'Inception-V3)')
    parser.add_argument('--crop-ratio', type=float, default=None,
                        help='checkpoints: validation crop ratio of training (default 0.875)')
    parser.add_argument('--topk', type=int, default=5, help='classes to print per image')
    parser.add_argument('images', nargs='+', help='image files (JPEG, PNG)')
    args = parser.parse_args(argv)
    try:
        clf = open_classifier(args.source, model=args.model, input_size=args.input_size,
                              crop_ratio=args.crop_ratio)
    except FileNotFoundError as err:
        if args.source.endswith(('.onnx', '.params')) or os.path.isdir(args.source):
            parser.error(str(err))
        parser.error('%s-symbol.json is missing: export the model first with '
                     'scripts/classification/export.py (or give an .onnx file, a checkpoint '
                     'or a run directory)' % args.source)
    except (ValueError, ImportError, UserError) as err:
        parser.error(str(err))
    names = clf.meta.get('classes')
    results, failed = [], []
    for path in args.images:
        try:
            x = load_image(path, clf.aug)[None]     # training's validation transform
        except CorruptImageError as err:  # unreadable, not an image, empty, a directory
            print('%s: skipped: %s' % (path, err), file=sys.stderr)
            failed.append(path)
            continue
        logits = np.asarray(clf(x), dtype=np.float64)[0]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        top = prob.argsort()[::-1][:args.topk]
        print(path)
        for rank, idx in enumerate(top, 1):
            label = names[idx] if names else str(idx)
            print('  %d. %-20s %.4f' % (rank, label, prob[idx]))
        results.append([(int(i), float(prob[i])) for i in top])
    if failed:
        sys.exit('predict.py: %d of %d image(s) could not be read: %s'
                 % (len(failed), len(args.images), ', '.join(failed)))
    return results


if __name__ == '__main__':
    from gluon_tricks.distributed import run_main
    run_main(main)
