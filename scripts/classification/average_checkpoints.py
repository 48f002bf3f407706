"""Average the parameters of several checkpoints into one .params file (timm's avg_checkpoints.py).

Every array is averaged (BatchNorm running statistics included) in float64 and written in
its own dtype; the result is a plain Gluon params file with the checkpoints' keys, loadable
with ``get_model(name).load_parameters``, GluonCV's same-named model, evaluate.py, export.py
and predict.py. Train with ``--keep-checkpoints N`` to keep the newest N epochs.

Examples::

    # the 5 newest end-of-epoch checkpoints -> runs/r50d/average-last5.params
    python scripts/classification/average_checkpoints.py --run runs/r50d --last 5

    # the 3 with the highest validation top-1 (state.json, else metrics.jsonl)
    python scripts/classification/average_checkpoints.py --run runs/r50d --best 3 \\
        --out runs/r50d/average-best3.params

    # checkpoint directories or .params files named one by one
    python scripts/classification/average_checkpoints.py runs/r50d/checkpoint-epoch0119 \\
        runs/r50d/checkpoint-epoch0120 --out averaged.params

A file written into the run directory (the default with ``--run``) is read with the run's
settings (model, input size, classes) from its config.json::

    python scripts/classification/evaluate.py runs/r50d/average-last5.params --rec-val val.rec
"""
import argparse
import os

import numpy as np

from gluon_tricks.sections import first_paragraph
from gluon_tricks.averaging import (AveragingError, average_params, entry_of, select_checkpoints,
                                    write_params)


def _inside_checkpoint(path):
    """The checkpoint directory holding ``path``, or None."""
    directory = os.path.dirname(os.path.abspath(path))
    return directory if os.path.isfile(os.path.join(directory, 'state.json')) else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('inputs', nargs='*', metavar='CHECKPOINT',
                        help='checkpoint directories (checkpoint-epochNNNN) or .params files '
                             'to average (instead of --run)')
    parser.add_argument('--run', metavar='DIR',
                        help='a training run directory (--save-dir); choose its checkpoints '
                             'with --last or --best')
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--last', type=int, metavar='N',
                       help='with --run: the N newest end-of-epoch checkpoints')
    which.add_argument('--best', type=int, metavar='N',
                       help='with --run: the N end-of-epoch checkpoints with the highest '
                            'validation top-1 (checkpoint-best counts when its epoch '
                            'directory is gone)')
    parser.add_argument('--out', metavar='FILE',
                        help='the averaged .params file (default with --run: '
                             'RUN/average-lastN.params or RUN/average-bestN.params)')
    args = parser.parse_intermixed_args(argv)    # checkpoints before and after the flags
    if args.run and args.inputs:
        parser.error('give either --run DIR (with --last/--best) or checkpoints as arguments, '
                     'not both')
    if args.run:
        if args.last is None and args.best is None:
            parser.error('--run %s: choose its checkpoints with --last N or --best N'
                         % args.run)
        try:
            entries, note = select_checkpoints(args.run, last=args.last, best=args.best)
        except AveragingError as err:
            parser.error(str(err))
        how = 'last' if args.last is not None else 'best'
        if args.out is None:
            args.out = os.path.join(args.run, 'average-%s%d.params'
                                    % (how, args.last if how == 'last' else args.best))
        if note:
            print('note: %s' % note)
    else:
        if args.last is not None or args.best is not None:
            parser.error('--last/--best choose among the checkpoints of --run DIR')
        if len(args.inputs) < 2:
            parser.error('give at least 2 checkpoints to average (got %d), or a run directory '
                         'with --run DIR --last N' % len(args.inputs))
        if not args.out:
            parser.error('--out FILE is needed when checkpoints are named as arguments')
        entries = []
        for path in args.inputs:
            if os.path.isdir(path) and not os.path.isfile(os.path.join(path, 'net.params')) \
                    and os.path.isfile(os.path.join(path, 'checkpoint-latest.json')):
                parser.error('%s is a run directory: use --run %s --last N (or --best N)'
                             % (path, path))
            try:
                entries.append(entry_of(path))
            except AveragingError as err:
                parser.error(str(err))
        files = [(os.stat(e.params).st_dev, os.stat(e.params).st_ino) for e in entries]
        if len(set(files)) < len(files):     # checkpoint-best hard-links its epoch's files
            parser.error('the same checkpoint is given twice: %s' % ', '.join(
                e.name for e, f in zip(entries, files) if files.count(f) > 1))
    holder = _inside_checkpoint(args.out)
    if holder:
        parser.error('--out %s lies in the checkpoint directory %s, which training deletes '
                     'when it prunes old checkpoints: write it beside them (e.g. into the run '
                     'directory)' % (args.out, holder))
    print('averaging %d checkpoints:' % len(entries))
    for e in entries:
        metric = '-' if e.metric is None else '%.4f' % e.metric
        epoch = '-' if e.epoch is None else str(e.epoch)
        print('  epoch %4s  %s %-6s  %s' % (epoch, e.metric_key, metric, e.name))
    arrays = average_params([e.params for e in entries])
    write_params(arrays, args.out)
    dtypes = sorted({np.dtype(v.dtype).name for v in arrays.values()})
    print('wrote %s: %d arrays (%s), the mean of %d checkpoints'
          % (args.out, len(arrays), ', '.join(dtypes), len(entries)))
    if os.path.isfile(os.path.join(os.path.dirname(os.path.abspath(args.out)), 'config.json')):
        print('it is read with the run\'s settings, e.g. python scripts/classification/'
              'evaluate.py %s --rec-val VAL.rec' % args.out)
    return args.out, entries


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
