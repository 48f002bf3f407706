"""Classify image files and folders with an ONNX file, an MXNet export or a checkpoint.

Prints the top-k classes of every image; ``--output-csv`` / ``--output-json`` also write
them to files (timm's inference.py columns: file name, top-k class indices, names and
probabilities). A folder is searched recursively for image files (.jpg, .jpeg, .png, any
case), in sorted order. An image that cannot be read is reported, listed in the outputs
with the reason, and makes the command exit with status 1 once every other image is done.

Every format gets the validation transform of training (resize the shorter side to
``ceil(input_size / crop_ratio)``, center crop, normalise): an .onnx file carries its constants
in its metadata, an MXNet export in PREFIX-meta.json, a run or checkpoint directory in the
run's config.json; for a bare .params file give ``--model``, ``--input-size`` and
``--crop-ratio`` as in training.

Examples::

    python scripts/classification/predict.py --model-file exported/r50d.onnx img1.jpg img2.jpg
    python scripts/classification/predict.py --prefix exported/r50d photos/ --output-csv out.csv
    python scripts/classification/predict.py --model-file runs/r50d photos/ --output-json out.json

CSV columns: ``filename, index_1 .. index_K, label_1 .. label_K, prob_1 .. prob_K, error``
(rank 1 = the most probable class; ``label`` is the class name, or the index when the model
has no class names; ``error`` is empty for a classified image). JSON: a list of
``{"filename", "index": [...], "label": [...], "prob": [...], "error"}``.
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts
from gluon_tricks.amx import enable_amx  # noqa: E402
enable_amx()  # AMX for bfloat16/INT8 exports where the CPU has it

import argparse
import csv
import json
import os
import sys

import numpy as np

from gluon_tricks.sections import first_paragraph
from gluon_tricks.data import IMAGE_EXTENSIONS, CorruptImageError, load_image
from gluon_tricks.errors import UserError
from gluon_tricks.inference import open_classifier


def shown(path):
    """``path`` as text that any terminal and UTF-8 file can hold: a file name that is not
    valid UTF-8 keeps its bytes as ``\\xNN`` escapes."""
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


def expand_inputs(paths):
    """``[(path, problem)]``: the files given, and the image files under each folder given
    (recursively, sorted); ``problem`` is None, or why a folder gave no image."""
    out = []
    for path in paths:
        if not os.path.isdir(path):
            out.append((path, None))
            continue
        found = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in files
                         if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
        if found:
            out.extend((f, None) for f in sorted(found))
        else:
            out.append((path, 'a folder without image files (%s)'
                        % ', '.join(IMAGE_EXTENSIONS)))
    return out


def _write_atomic(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, '.%s.tmp-%d' % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            write(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_csv(path, rows, topk):
    """One line per input (see the module docstring)."""
    header = (['filename'] + ['index_%d' % r for r in range(1, topk + 1)] +
              ['label_%d' % r for r in range(1, topk + 1)] +
              ['prob_%d' % r for r in range(1, topk + 1)] + ['error'])

    def write(f):
        out = csv.writer(f)
        out.writerow(header)
        for row in rows:
            pad = [''] * (topk - len(row['index']))
            out.writerow([row['filename']] + row['index'] + pad + row['label'] + pad +
                         ['%.6g' % p for p in row['prob']] + pad + [row['error'] or ''])
    _write_atomic(path, write)


def write_json(path, rows):
    """A JSON list, one entry per line (see the module docstring)."""
    _write_atomic(path, lambda f: f.write('[\n%s\n]\n' % ',\n'.join(
        json.dumps(row) for row in rows)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--model-file', dest='source',
                     help='an .onnx file, an MXNet export prefix, a checkpoint directory '
                          '(net.params + state.json), a training run directory, or a .params '
                          'file (with --model)')
    src.add_argument('--prefix', dest='source',
                     help='prefix given to export.py (reads PREFIX-symbol.json, '
                          'PREFIX-0000.params, PREFIX-meta.json)')
    parser.add_argument('--model', default=None,
                        help='zoo name, for a .params file (checkpoints record it)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='checkpoints: input side of training (default: the run\'s; else '
                             '224, 299 for Inception-V3)')
    parser.add_argument('--crop-ratio', type=float, default=None,
                        help='checkpoints: validation crop ratio of training (default: the '
                             'run\'s; else 0.875)')
    parser.add_argument('--topk', type=int, default=5,
                        help='classes to print and write per image (default: 5)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (default: 1); larger is faster on '
                             'folders, the probabilities may then differ in the last digits')
    parser.add_argument('--output-csv', metavar='FILE', default=None,
                        help='also write the results as CSV (one line per image)')
    parser.add_argument('--output-json', metavar='FILE', default=None,
                        help='also write the results as JSON (a list, one entry per image)')
    parser.add_argument('-q', '--quiet', action='store_true',
                        help='print no per-image lines (only problems and the summary)')
    parser.add_argument('images', nargs='+', metavar='IMAGE',
                        help='image files (JPEG, PNG) or folders (searched recursively)')
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk %d: give at least 1' % args.topk)
    if args.batch_size < 1:
        parser.error('--batch-size %d: give at least 1' % args.batch_size)
    for flag, path in (('--output-csv', args.output_csv), ('--output-json', args.output_json)):
        if path and os.path.isdir(path):
            parser.error('%s %s is a directory: give a file name' % (flag, path))
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
    inputs = expand_inputs(args.images)
    rows, results, failed, pending = [None] * len(inputs), [], [], []

    def fail(n, path, reason):
        print('%s: skipped: %s' % (shown(path), reason), file=sys.stderr)
        failed.append(shown(path))
        rows[n] = {'filename': shown(path), 'index': [], 'label': [], 'prob': [],
                   'error': reason}

    def flush():
        if not pending:
            return
        logits = np.asarray(clf(np.stack([x for _, _, x in pending])), dtype=np.float64)
        for (n, path, _), row in zip(pending, logits):
            prob = np.exp(row - row.max())
            prob /= prob.sum()
            top = [int(i) for i in prob.argsort()[::-1][:args.topk]]
            labels = [names[i] if names else str(i) for i in top]
            if not args.quiet:
                print(shown(path))
                for rank, (idx, label) in enumerate(zip(top, labels), 1):
                    print('  %d. %-20s %.4f' % (rank, label, prob[idx]))
            results.append([(i, float(prob[i])) for i in top])
            rows[n] = {'filename': shown(path), 'index': top, 'label': labels,
                       'prob': [float(prob[i]) for i in top], 'error': None}
        del pending[:]

    for n, (path, problem) in enumerate(inputs):
        if problem:
            fail(n, path, problem)
            continue
        try:
            x = load_image(path, clf.aug)     # training's validation transform
        except CorruptImageError as err:  # unreadable, not an image, empty, missing
            fail(n, path, shown(str(err)))
            continue
        pending.append((n, path, x))
        if len(pending) >= args.batch_size:
            flush()
    flush()
    k = min(args.topk, len(names)) if names else max([len(r['index']) for r in rows] + [1])
    if args.output_csv:
        write_csv(args.output_csv, rows, k)
    if args.output_json:
        write_json(args.output_json, rows)
    written = [p for p in (args.output_csv, args.output_json) if p]
    if written and not args.quiet:
        print('results of %d image(s) written to %s' % (len(rows), ', '.join(written)))
    if failed:
        sys.exit('predict.py: %d of %d image(s) could not be read: %s%s'
                 % (len(failed), len(inputs), ', '.join(failed[:20]),
                    ' ... (every one is listed in %s)' % ' and '.join(written)
                    if len(failed) > 20 and written else
                    (' and %d more' % (len(failed) - 20) if len(failed) > 20 else '')))
    return results


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
