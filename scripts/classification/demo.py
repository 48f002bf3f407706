"""The main job on the embedded default data: the whole pipeline on scikit-learn's digits.

Runs, as a user would, each command of the project in turn and prints it first:

1. write the 1,797 real 8x8 digits of scikit-learn (shipped in its wheel) as a class-folder
   data set upscaled to 40x40, with train/, val/ (picks the best checkpoint) and a held-out
   test/ split that neither training nor that choice sees (``make_digits_dataset``);
2. pack train/ and val/ into RecordIO (``prepare_imagenet.py``);
3. train a ResNet-18-D with the full bag of tricks: linear-scaled lr with warmup, cosine
   decay, zero gamma, no bias decay, label smoothing and mixup (``train_imagenet.py``);
4. draw the training curves into a PNG (``plot_runs.py``);
5. export the best checkpoint to ONNX and the MXNet format (``export.py``: the run
   directory gives the model and its input settings);
6. evaluate the ONNX model on the held-out test split (``evaluate.py``) and classify three
   of its images (``predict.py``).

Usage: ``python scripts/classification/demo.py [--out demo_out] [--num-epochs 12]``
"""
import argparse
import glob
import os
import subprocess
import sys
import threading
import time

from gluon_tricks.sections import first_paragraph
from gluon_tricks.data import make_digits_dataset

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)


def shown(path):
    """``path`` relative to the working directory when it lies inside it."""
    rel = os.path.relpath(path)
    return path if rel.startswith('..') else rel


#: Lines of MXNet's C++ log with nothing to act on, left out of the demo's output: oneDNN's
#: average pooling (the global pool) logs this INFO line for every new batch shape it trains.
UNINFORMATIVE = ('MKLDNN Pooling: training with prop_kind is forward_scoring',)


def run(cmd, quiet=False):
    """Run ``cmd``, its stderr shown without :data:`UNINFORMATIVE` lines; its stdout returned
    (``quiet``) or shown."""
    print('\n$ ' + ' '.join(shown(c) if os.path.isabs(c) else c for c in cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if quiet else None,
                            stderr=subprocess.PIPE, text=True)

    def relay():
        for line in proc.stderr:
            if not any(text in line for text in UNINFORMATIVE):
                sys.stderr.write(line)
                sys.stderr.flush()
    thread = threading.Thread(target=relay, daemon=True)
    thread.start()
    out = proc.stdout.read() if quiet else None
    proc.wait()
    thread.join()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('--out', default='demo_out', help='working folder')
    parser.add_argument('--model', default='resnet18_v1d', help='get_model name')
    parser.add_argument('--num-epochs', type=int, default=12, help='training epochs')
    parser.add_argument('--batch-size', type=int, default=64, help='batch size')
    parser.add_argument('--image-size', type=int, default=40, help='side of the digit images')
    parser.add_argument('--input-size', type=int, default=32,
                        help='network input: random-resized crops (train), center crop (val)')
    parser.add_argument('-j', '--num-workers', type=int, default=2,
                        help='data worker processes')
    args = parser.parse_args(argv)
    tic = time.time()
    out = os.path.abspath(args.out)
    data_dir, rec_dir = os.path.join(out, 'digits'), os.path.join(out, 'rec')
    run_dir, export_prefix = os.path.join(out, 'run'), os.path.join(out, 'exported', args.model)
    curves = os.path.join(out, 'curves.png')

    info = make_digits_dataset(data_dir, image_size=args.image_size, overwrite=True,
                               test_fraction=0.1)
    print('digits: %d training, %d validation and %d held-out test images in %s'
          % (info.num_train, info.num_val, info.num_test, data_dir))
    py = sys.executable
    run([py, os.path.join(HERE, 'prepare_imagenet.py'), '--data-dir', data_dir,
         '--out-dir', rec_dir, '--resize', '0', '--encoding', '.png', '--quality', '3',
         '-j', str(args.num_workers)])
    if os.path.isdir(run_dir):  # a fresh run each time
        import shutil
        shutil.rmtree(run_dir)
    run([py, os.path.join(HERE, 'train_imagenet.py'), '--model', args.model,
         '--use-rec', '--data-dir', rec_dir, '--input-size', str(args.input_size),
         '--crop-ratio', str(args.input_size / args.image_size), '--random-area-min', '0.5',
         '--no-mirror', '--batch-size', str(args.batch_size),
         '--num-epochs', str(args.num_epochs),
         # lr by linear scaling from --base-lr (the paper's 0.1 per 256 is slow for 12 epochs
         # of a tiny data set; 0.4 per 256 keeps the rule and converges in minutes)
         '--base-lr', '0.4', '--warmup-epochs', '2', '--lr-mode', 'cosine',
         '--last-gamma', '--no-wd', '--label-smoothing', '--mixup', '--mixup-off-epoch', '2',
         '-j', str(args.num_workers), '--log-interval', '10', '--progress', 'log',
         '--save-dir', run_dir])
    run([py, os.path.join(SCRIPTS, 'plot_runs.py'), run_dir, '-o', curves])
    run([py, os.path.join(HERE, 'export.py'), '--params', run_dir, '--format', 'both',
         '--out', export_prefix, '--class-names', os.path.join(rec_dir, 'classes.txt')])
    report = os.path.join(out, 'test-eval.json')
    run([py, os.path.join(HERE, 'evaluate.py'), export_prefix + '.onnx', '--data-dir',
         info.test_dir, '-j', '0', '--json', report])
    held_out = [sorted(glob.glob(os.path.join(info.test_dir, c, '*.png')))[0]
                for c in ('3', '5', '8')]
    run([py, os.path.join(HERE, 'predict.py'), '--model-file', export_prefix + '.onnx']
        + held_out)

    import json
    from gluon_tricks.runlog import read_metrics
    metrics = read_metrics(os.path.join(run_dir, 'metrics.jsonl'))
    best = max(metrics, key=lambda m: m['top1'])
    with open(report) as f:
        test = json.load(f)
    print('\ndemo finished in %.0f s.' % (time.time() - tic))
    print('  best validation top-1 %.4f (epoch %d of %d; the split that picked the checkpoint)'
          % (best['top1'], best['epoch'], len(metrics)))
    print('  held-out test top-1 %.4f, top-5 %.4f on %d images training never saw'
          % (test['top1'], test['top5'], test['total']))
    print('\nresults in %s/:' % shown(out))
    for path, what in ((run_dir, 'the run: train.log, metrics.jsonl, config.json, '
                                 'checkpoints'),
                       (curves, 'training curves'),
                       (export_prefix + '.onnx', 'ONNX model (onnxruntime)'),
                       (export_prefix + '-symbol.json', 'MXNet export')):
        print('  %s\n      %s' % (shown(path), what))
    r, e = shown(run_dir), shown(export_prefix)
    print('\nnext:')
    print('  python scripts/classification/evaluate.py %s --rec-val %s' % (
        r, shown(os.path.join(rec_dir, 'val.rec'))))
    print('  python scripts/classification/train_imagenet.py --save-dir %s --resume '
          '--num-epochs %d' % (r, args.num_epochs + 4))
    print('  python scripts/classification/predict.py --model-file %s.onnx IMAGE...' % e)
    print('  python scripts/classification/export.py --params %s --format onnx --out OUT' % r)
    return dict(best, test_top1=test['top1'])


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
