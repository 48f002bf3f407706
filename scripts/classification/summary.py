"""Print parameter and multiply-add counts of zoo models beside the paper's Table 5.

Example::

    python scripts/classification/summary.py \
        --models resnet50_v1,resnet50_v1b,resnet50_v1c,resnet50_v1d,mobilenet1.0,inceptionv3
"""
from gluon_tricks.threads import configure_threads
configure_threads()  # OpenMP threads, before MXNet starts

import argparse
import json

from gluon_tricks.sections import first_paragraph
from gluon_tricks.model_zoo import get_model_list
from gluon_tricks.model_zoo.summary import PAPER_TABLE5, summarize

TABLE5 = 'resnet50_v1,resnet50_v1b,resnet50_v1c,resnet50_v1d,mobilenet1.0,inceptionv3'


def main(argv=None):
    parser = argparse.ArgumentParser(description=first_paragraph(__doc__))
    parser.add_argument('--models', default=TABLE5,
                        help='comma-separated get_model names (default: %(default)s)')
    parser.add_argument('--input-size', type=int, default=None,
                        help='square input side; default 224 (299 for inceptionv3)')
    parser.add_argument('--classes', type=int, default=1000, help='classifier outputs')
    parser.add_argument('--json', action='store_true', help='print JSON lines instead')
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(',') if n.strip()]
    unknown = [n for n in names if n.lower() not in get_model_list()]
    if unknown:
        parser.error('unknown model name(s) %s; valid names: %s'
                     % (', '.join(unknown), ', '.join(get_model_list())))
    rows = []
    for name in names:
        row = summarize(name, args.input_size, classes=args.classes)
        paper = PAPER_TABLE5.get(name)
        row['paper_params_m'], row['paper_macs_g'] = paper if paper else (None, None)
        rows.append(row)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return rows
    fmt = '{:<16} {:>6} {:>10} {:>10} {:>12} {:>12}'
    print(fmt.format('model', 'input', 'params(M)', 'MACs(G)', 'paper(M)', 'paper(G)'))
    for r in rows:
        print(fmt.format(r['model'], r['input_size'], '%.2f' % r['params_m'],
                         '%.2f' % r['macs_g'],
                         '-' if r['paper_params_m'] is None else r['paper_params_m'],
                         '-' if r['paper_macs_g'] is None else r['paper_macs_g']))
    return rows


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
