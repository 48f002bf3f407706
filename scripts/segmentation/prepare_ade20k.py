"""Prepare ADE20K (SceneParsing, ADEChallengeData2016) for train_fcn.py from the archive you
already have.

Verifies the MD5 of ADEChallengeData2016.zip, extracts it and checks GluonCV's layout::

    OUT/ADEChallengeData2016/images/{training,validation}/*.jpg
    OUT/ADEChallengeData2016/annotations/{training,validation}/*.png

Usage::

    python scripts/segmentation/prepare_ade20k.py --archive ~/Downloads/ADEChallengeData2016.zip \\
        [--out ~/.mxnet/datasets/ade]

A missing, truncated, corrupt or wrong archive stops the script with a message naming it;
nothing is moved into OUT unless the archive was read completely. ``--skip-checksum`` accepts
a repacked archive (its content is still checked); ``--md5`` gives another expected MD5.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.datasets.ade20k import prepare_ade20k  # noqa: E402
from tools.datasets.archives import ArchiveError  # noqa: E402
from gluon_tricks.sections import HelpFormatter, first_paragraph


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=first_paragraph(__doc__),
                                formatter_class=HelpFormatter)
    p.add_argument('--archive', required=True, help='path of ADEChallengeData2016.zip')
    p.add_argument('--out', default=os.path.join('~', '.mxnet', 'datasets', 'ade'),
                   help='output root (train_fcn.py --data-dir)')
    p.add_argument('--skip-checksum', action='store_true',
                   help='do not compare the MD5 (repacked archive)')
    p.add_argument('--md5', default=None, help='expected MD5 instead of the official one')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing ADEChallengeData2016 folder')
    return p.parse_args(argv)


def main(argv=None):
    """Prepare the data; exit with status 1 and a message on a bad archive."""
    args = parse_args(argv)
    tic = time.time()
    try:
        counts = prepare_ade20k(args.archive, args.out, skip_checksum=args.skip_checksum,
                                md5=args.md5, overwrite=args.overwrite)
    except (ArchiveError, FileExistsError, FileNotFoundError) as err:
        sys.exit('error: %s' % err)
    print('done in %.0f s: %d training and %d validation images; train with --data-dir %s'
          % (time.time() - tic, counts['training'], counts['validation'], args.out))
    return counts


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
