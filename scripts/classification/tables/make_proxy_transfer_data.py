"""Tiny Pascal VOC and ADE20K look-alikes for the proxy run of Tables 8 and 9.

Digits of scikit-learn (real 8x8 handwriting, upscaled) pasted on a noisy canvas:

* ``--voc OUT``: ``OUT/VOC2007/{JPEGImages,Annotations,ImageSets/Main}`` with ``trainval``
  and ``test`` splits, one VOC XML per image, digit ``d`` labelled with the ``d``-th VOC class
  name (what GluonCV's ``VOCDetection(root=OUT, splits=[(2007, 'trainval')])`` reads);
* ``--ade OUT``: ``OUT/ADEChallengeData2016/{images,annotations}/{training,validation}`` with
  a PNG mask per JPEG: 1 for the background, 2 + d on the pixels of digit ``d`` (what
  ``ADE20KSegmentation(root=OUT)`` reads; 0, "other", is ignored by its metric).

    python scripts/classification/tables/make_proxy_transfer_data.py --voc runs/proxy/data/voc \\
        --ade runs/proxy/data/ade --train 24 --test 12
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
from tools.datasets.proxy_transfer import make_ade, make_voc  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--voc', help='write a VOC-layout data set here')
    parser.add_argument('--ade', help='write an ADE20K-layout data set here')
    parser.add_argument('--train', type=int, default=24, help='training images')
    parser.add_argument('--test', type=int, default=12, help='test/validation images')
    parser.add_argument('--size', type=int, default=96, help='image side')
    args = parser.parse_args(argv)
    if not (args.voc or args.ade):
        parser.error('give --voc and/or --ade')
    if args.voc:
        print('wrote %s' % make_voc(args.voc, args.train, args.test, args.size))
    if args.ade:
        print('wrote %s' % make_ade(args.ade, args.train, args.test, args.size))


if __name__ == '__main__':
    main()
