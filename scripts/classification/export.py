"""Export a trained checkpoint as a hybridized symbol + params pair for deployment.

Example::

    python scripts/classification/export.py --model resnet50_v1d \
        --params runs/r50d/checkpoint-best/net.params --out exported/resnet50_v1d
"""
import argparse
import os

from gluon_tricks.export import export_model
from gluon_tricks.model_zoo import get_model_list
from gluon_tricks.model_zoo.io import load_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='get_model name, e.g. resnet50_v1d')
    parser.add_argument('--params', required=True,
                        help='.params file: a checkpoint\'s net.params, or GluonCV\'s file '
                             'of the same model')
    parser.add_argument('--out', required=True, help='output prefix, e.g. exported/r50d')
    parser.add_argument('--classes', type=int, default=None,
                        help='number of classes (default: read from the params file)')
    parser.add_argument('--input-size', type=int, default=224, help='input side (paper: 224)')
    parser.add_argument('--crop-ratio', type=float, default=0.875,
                        help='validation center-crop ratio (paper: 224/256 = 0.875)')
    parser.add_argument('--class-names', default=None,
                        help='text file with one class name per line (e.g. the data set\'s '
                             'classes.txt written by prepare_imagenet.py)')
    args = parser.parse_args(argv)
    if args.model.lower() not in get_model_list():
        parser.error('unknown --model %r; valid names: %s'
                     % (args.model, ', '.join(get_model_list())))
    if not os.path.isfile(args.params):
        parser.error('--params %s does not exist' % args.params)
    names = None
    if args.class_names:
        with open(args.class_names) as f:
            names = [line.strip() for line in f if line.strip()]
    net = load_model(args.model, args.params, classes=args.classes)
    paths = export_model(net, args.out, input_size=args.input_size,
                         crop_ratio=args.crop_ratio, class_names=names,
                         model_name=args.model)
    for kind, path in paths.items():
        print('%-6s %s' % (kind, path))


if __name__ == '__main__':
    main()
