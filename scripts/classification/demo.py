"""The main job on the embedded default data: the whole pipeline on scikit-learn's digits.

Runs, as a user would, each command of the project in turn and prints it first:

1. write the 1,797 real 8x8 digits of scikit-learn (shipped in its wheel) as a class-folder
   data set, upscaled to 32x32 (``gluon_tricks.data.make_digits_dataset``);
2. pack it into RecordIO (``prepare_imagenet.py``);
3. train a ResNet-18-D with the full bag of tricks: linear-scaled lr with warmup, cosine
   decay, zero gamma, no bias decay, label smoothing and mixup (``train_imagenet.py``);
4. export the best checkpoint (``export.py``) and classify held-out images (``predict.py``).

Usage: ``python scripts/classification/demo.py [--out demo_out] [--num-epochs 12]``
"""
import argparse
import glob
import os
import subprocess
import sys
import time

from gluon_tricks.data import make_digits_dataset

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    print('\n$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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

    info = make_digits_dataset(data_dir, image_size=args.image_size, overwrite=True)
    print('digits: %d training and %d validation images in %s'
          % (info.num_train, info.num_val, data_dir))
    py = sys.executable
    run([py, os.path.join(HERE, 'prepare_imagenet.py'), '--data-dir', data_dir,
         '--out-dir', rec_dir, '--resize', '0', '--encoding', '.png', '--quality', '3',
         '-j', str(args.num_workers)])
    if os.path.isdir(run_dir):  # a fresh run each time
        import shutil
        shutil.rmtree(run_dir)
    run([py, os.path.join(HERE, 'train_imagenet.py'), '--model', args.model,
         '--use-rec', '--data-dir', rec_dir, '--input-size', str(args.input_size),
         '--crop-ratio', str(args.input_size / args.image_size), '--random-area-min', '0.5', '--no-mirror',
         '--batch-size', str(args.batch_size), '--num-epochs', str(args.num_epochs),
         # lr by linear scaling from --base-lr (the paper's 0.1 per 256 is slow for 12 epochs
         # of a tiny data set; 0.4 per 256 keeps the rule and converges in minutes)
         '--base-lr', '0.4', '--warmup-epochs', '2', '--lr-mode', 'cosine',
         '--last-gamma', '--no-wd', '--label-smoothing', '--mixup', '--mixup-off-epoch', '2',
         '-j', str(args.num_workers), '--log-interval', '10', '--save-dir', run_dir])
    run([py, os.path.join(HERE, 'export.py'), '--model', args.model,
         '--params', os.path.join(run_dir, 'checkpoint-best', 'net.params'),
         '--out', export_prefix, '--input-size', str(args.input_size),
         '--crop-ratio', str(args.input_size / args.image_size),
         '--class-names', os.path.join(rec_dir, 'classes.txt')])
    held_out = [sorted(glob.glob(os.path.join(info.val_dir, c, '*.png')))[0]
                for c in ('3', '5', '8')]
    run([py, os.path.join(HERE, 'predict.py'), '--prefix', export_prefix] + held_out)

    from gluon_tricks.runlog import read_metrics
    metrics = read_metrics(os.path.join(run_dir, 'metrics.jsonl'))
    best = max(metrics, key=lambda m: m['top1'])
    print('\ndemo finished in %.0f s: best validation top-1 %.4f (epoch %d of %d), '
          'top-5 %.4f on %d held-out digits'
          % (time.time() - tic, best['top1'], best['epoch'], len(metrics), best['top5'],
             best['val_samples']))
    return best


if __name__ == '__main__':
    from gluon_tricks.distributed import run_main
    run_main(main)
