"""Prepare Pascal VOC 2007 + 2012 for train_faster_rcnn.py from archives you already have.

Verifies the MD5 of the three official archives, extracts them and writes GluonCV's layout::

    OUT/VOC2007/{Annotations,ImageSets,JPEGImages,...}   (2007 trainval + test)
    OUT/VOC2012/{Annotations,ImageSets,JPEGImages,...}   (2012 trainval)

Usage::

    python scripts/detection/prepare_voc.py --archives ~/Downloads [--out ~/.mxnet/datasets/voc]

ARCHIVES must hold VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and
VOCtrainval_11-May-2012.tar. A missing, truncated, corrupt or wrong archive stops the script
with a message naming it; nothing is moved into OUT unless all three were read completely.
``--skip-checksum`` accepts repacked archives (their content is still checked);
``--md5-file`` gives other MD5s (``md5sum`` output), e.g. of a mirror.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.datasets.archives import ArchiveError, read_md5_file  # noqa: E402
from tools.datasets.voc import prepare_voc  # noqa: E402
from gluon_tricks.sections import HelpFormatter, first_paragraph


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=first_paragraph(__doc__),
                                formatter_class=HelpFormatter)
    p.add_argument('--archives', required=True, help='folder holding the three VOC .tar files')
    p.add_argument('--out', default=os.path.join('~', '.mxnet', 'datasets', 'voc'),
                   help='output root (train_faster_rcnn.py --data-dir)')
    p.add_argument('--skip-checksum', action='store_true',
                   help='do not compare MD5s (repacked archives)')
    p.add_argument('--md5-file', default=None,
                   help='"<md5>  <archive name>" lines replacing the official MD5s')
    p.add_argument('--overwrite', action='store_true', help='replace existing VOC2007/VOC2012')
    return p.parse_args(argv)


def main(argv=None):
    """Prepare the data; exit with status 1 and a message on a bad archive."""
    args = parse_args(argv)
    tic = time.time()
    try:
        md5s = read_md5_file(args.md5_file) if args.md5_file else None
        counts = prepare_voc(args.archives, args.out, skip_checksum=args.skip_checksum,
                             md5s=md5s, overwrite=args.overwrite)
    except (ArchiveError, FileExistsError, FileNotFoundError, ValueError) as err:
        sys.exit('error: %s' % err)
    print('done in %.0f s: %d training images (VOC07+12 trainval), %d test images (VOC07 '
          'test); train with --data-dir %s'
          % (time.time() - tic, counts[(2007, 'trainval')] + counts[(2012, 'trainval')],
             counts[(2007, 'test')], args.out))
    return counts


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
