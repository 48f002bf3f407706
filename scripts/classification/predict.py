"""Classify image files with an exported model and print the top-5 classes.

Example::

    python scripts/classification/predict.py --prefix exported/resnet50_v1d img1.jpg img2.jpg
"""
import argparse

import mxnet as mx

from gluon_tricks.export import load_exported, preprocess_image


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--prefix', required=True,
                        help='prefix given to export.py (reads PREFIX-symbol.json, '
                             'PREFIX-0000.params, PREFIX-meta.json)')
    parser.add_argument('--topk', type=int, default=5, help='classes to print per image')
    parser.add_argument('images', nargs='+', help='image files (JPEG, PNG)')
    args = parser.parse_args(argv)
    try:
        net, meta = load_exported(args.prefix)
    except FileNotFoundError as err:
        parser.error(str(err))
    names = meta.get('classes')
    results = []
    for path in args.images:
        x = preprocess_image(path, meta.get('input_size', 224), meta.get('crop_ratio', 0.875),
                             meta.get('mean'), meta.get('std'))
        prob = mx.nd.softmax(net(x))[0].asnumpy()
        top = prob.argsort()[::-1][:args.topk]
        print(path)
        for rank, idx in enumerate(top, 1):
            label = names[idx] if names else str(idx)
            print('  %d. %-20s %.4f' % (rank, label, prob[idx]))
        results.append([(int(i), float(prob[i])) for i in top])
    return results


if __name__ == '__main__':
    main()
