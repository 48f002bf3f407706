"""Draw Figure 3a of "Bag of Tricks": step vs cosine learning-rate decay with warmup.

Defaults are the paper's: batch 1024 (lr 0.4 by linear scaling), 5 warmup epochs,
120 epochs, 1,281,167 ImageNet training images (ceil(1281167 / 1024) = 1252 batches per
epoch), step decay by 0.1 at epochs 30, 60 and 90::

    python scripts/classification/plot_lr_schedule.py --out fig3a.png
"""
import argparse
import math
import os

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

from gluon_tricks.sections import first_paragraph
from gluon_tricks.lr_scheduler import LRScheduler, resolve_lr


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('--batch-size', type=int, default=1024,
                        help='global batch size; lr = 0.1 x batch / 256 (default 1024)')
    parser.add_argument('--num-epochs', type=int, default=120, help='epochs (default 120)')
    parser.add_argument('--warmup-epochs', type=float, default=5,
                        help='linear warmup epochs (default 5)')
    parser.add_argument('--num-samples', type=int, default=1281167,
                        help='training images per epoch (default 1281167, ImageNet-1k)')
    parser.add_argument('--step-epochs', type=str, default='30,60,90',
                        help='step decay epochs, comma separated (default 30,60,90)')
    parser.add_argument('--out', type=str, default='fig3a.png', help='output image file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.num_samples < 1:
        raise SystemExit('--num-samples must be positive, got %d' % args.num_samples)
    lr, how = resolve_lr(None, args.batch_size)
    iters_per_epoch = math.ceil(args.num_samples / args.batch_size)
    step_epochs = tuple(float(s) for s in args.step_epochs.split(',') if s.strip())
    schedules = {
        'step': LRScheduler('step', lr, iters_per_epoch, args.num_epochs,
                            warmup_epochs=args.warmup_epochs, step_epochs=step_epochs),
        'cosine': LRScheduler('cosine', lr, iters_per_epoch, args.num_epochs,
                              warmup_epochs=args.warmup_epochs),
    }
    total = args.num_epochs * iters_per_epoch
    stride = max(1, total // 20000)  # enough points for a smooth curve, exact step edges
    iters = sorted(set(range(0, total, stride)) | {total - 1}
                   | {s.step_iters[i] + d for s in schedules.values()
                      for i in range(len(s.step_iters)) for d in (-1, 0)})
    epochs = [k / iters_per_epoch for k in iters]

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, sched in schedules.items():
        ax.plot(epochs, [sched.lr_at(k) for k in iters], label=name.capitalize() + ' Decay')
    ax.set_xlabel('Epoch')
    ax.set_ylabel('Learning Rate')
    ax.set_xlim(0, args.num_epochs)
    ax.set_ylim(0, lr * 1.05)
    ax.set_title('batch %d, %s, %g warmup epochs, %d iters/epoch'
                 % (args.batch_size, how.split(' (')[0], args.warmup_epochs, iters_per_epoch),
                 fontsize=8)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fig.savefig(args.out, dpi=150)
    plt.close(fig)
    print(how)
    print('wrote %s' % os.path.abspath(args.out))


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
