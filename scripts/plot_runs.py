"""Draw the per-epoch curves of one or several training runs into one PNG, side by side.

Each run directory holds ``metrics.jsonl`` (written by every training script, one JSON line
per epoch). The default panels are training loss, validation top-1 and top-5, learning rate
and samples/s, one curve per run; detection and segmentation runs get their own numeric keys.

Examples::

    python scripts/plot_runs.py runs/baseline runs/cosine_ls_mixup -o compare.png
    python scripts/plot_runs.py runs/r50d --metrics train_loss top1 train_acc -o r50d.png
"""
import argparse
import os
import sys
from gluon_tricks.sections import first_paragraph

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('runs', nargs='+', help='run directories (or metrics.jsonl files)')
    parser.add_argument('-o', '--out', default='runs.png', help='PNG to write')
    parser.add_argument('--metrics', nargs='+', default=None,
                        help='metric keys, one panel each (default: train_loss top1 top5 lr '
                             'samples_per_sec, those present)')
    parser.add_argument('--labels', nargs='+', default=None,
                        help='legend names, one per run (default: directory names)')
    parser.add_argument('--title', default=None, help='figure title')
    parser.add_argument('--columns', type=int, default=3, help='panels per row')
    parser.add_argument('--dpi', type=int, default=100, help='resolution of the PNG')
    args = parser.parse_args(argv)
    from tools.plots import plot_runs     # imports matplotlib: only when drawing
    try:
        fig = plot_runs(args.runs, args.out, metrics=args.metrics, labels=args.labels,
                        title=args.title, columns=args.columns, dpi=args.dpi)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    print('%s: %d panel(s), %d run(s)' % (args.out, len(fig.axes), len(args.runs)),
          file=sys.stdout)
    return fig


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
