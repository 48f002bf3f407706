"""Pack an image-classification data set into RecordIO (train/val .lst, .rec, .idx).

Works for the extracted ILSVRC2012 data (the paper's, section 2.2) and any class-folder data set
(Places365, the digits demo)::

    python scripts/classification/prepare_imagenet.py --data-dir ~/ILSVRC2012 \\
        --out-dir ~/.mxnet/datasets/imagenet -j 16

Input: ``DATA_DIR/train/<class>/<image>`` and either ``DATA_DIR/val/<class>/<image>`` or a flat
``DATA_DIR/val/<image>`` with ``--val-labels FILE`` ("filename label" lines, label a class
name such as the synset ``n01440764`` or an integer; or one class name per line in sorted file
order; see ``gluon_tricks.data.read_label_file``).

Output in OUT_DIR: ``classes.txt`` (class names in label order = sorted training folders),
``train.lst/.rec/.idx`` (shuffled with ``--seed``) and ``val.lst/.rec/.idx`` (sorted).
Train with ``--use-rec --data-dir OUT_DIR``.
"""
import argparse
import os
import sys
import time


from gluon_tricks import data as gdata


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-dir', required=True, help='folder holding the train and val folders')
    p.add_argument('--out-dir', required=True, help='where the .lst/.rec/.idx files go')
    p.add_argument('--train-dir', default='train', help='training folder, relative to DATA_DIR')
    p.add_argument('--val-dir', default='val', help='validation folder, relative to DATA_DIR')
    p.add_argument('--val-labels', default=None,
                   help='ground truth of a flat validation folder')
    p.add_argument('--no-val', action='store_true', help='pack the training set only')
    p.add_argument('--resize', type=int, default=480,
                   help='downscale images whose shorter side is longer than this (GluonCV\'s '
                        'ImageNet RecordIO: 480); 0 keeps the original size')
    p.add_argument('--quality', type=int, default=None,
                   help='JPEG quality 1-100 (default 95), or with --encoding .png the PNG '
                        'compression level 0-9 (default 3)')
    p.add_argument('--encoding', default='.jpg', choices=['.jpg', '.png'],
                   help='image encoding inside the records')
    p.add_argument('-j', '--num-workers', type=int, default=os.cpu_count() or 1,
                   help='encoding threads')
    p.add_argument('--seed', type=int, default=0, help='seed of the training-list shuffle')
    p.add_argument('--skip-bad', action='store_true',
                   help='leave unreadable images out (default: stop with a list of them)')
    return p.parse_args(argv)


def main(argv=None):
    """Write the lists and pack them; print counts."""
    args = parse_args(argv)
    if args.quality is None:
        args.quality = 3 if args.encoding == '.png' else 95
    elif args.encoding == '.png' and not 0 <= args.quality <= 9:
        sys.exit('prepare_imagenet.py: error: --quality %d: with --encoding .png it is the PNG '
                 'compression level 0-9' % args.quality)
    elif args.encoding == '.jpg' and not 1 <= args.quality <= 100:
        sys.exit('prepare_imagenet.py: error: --quality %d: the JPEG quality is 1-100'
                 % args.quality)
    data_dir = os.path.expanduser(args.data_dir)
    out = os.path.expanduser(args.out_dir)
    os.makedirs(out, exist_ok=True)
    pack = dict(resize=args.resize, quality=args.quality, encoding=args.encoding,
                num_workers=args.num_workers, skip_bad=args.skip_bad)
    t0 = time.time()
    train_root = os.path.join(data_dir, args.train_dir)
    train_items, classes = gdata.list_class_folder(train_root)
    gdata.write_class_names(os.path.join(out, gdata.CLASSES_FILE), classes)
    gdata.write_lst(os.path.join(out, 'train.lst'), train_items, shuffle=True, seed=args.seed)
    res = gdata.pack_records(os.path.join(out, 'train.lst'), train_root, **pack)
    print('train: %d images, %d classes -> %s (%d skipped)'
          % (res.num_records, len(classes), res.rec_path, len(res.skipped)))
    if not args.no_val:
        val_root = os.path.join(data_dir, args.val_dir)
        has_class_dirs = os.path.isdir(val_root) and any(
            os.path.isdir(os.path.join(val_root, d)) for d in os.listdir(val_root))
        if has_class_dirs:
            if args.val_labels:
                sys.exit('error: %s has class folders; --val-labels is only for a flat folder'
                         % val_root)
            val_items, _ = gdata.list_class_folder(val_root, classes)
        else:
            if not args.val_labels:
                sys.exit('error: %s has no class folders; give its ground truth with '
                         '--val-labels FILE (or --no-val)' % val_root)
            val_items = gdata.list_flat_folder(val_root, args.val_labels, classes)
        gdata.write_lst(os.path.join(out, 'val.lst'), val_items, shuffle=False)
        res = gdata.pack_records(os.path.join(out, 'val.lst'), val_root, **pack)
        print('val: %d images -> %s (%d skipped)'
              % (res.num_records, res.rec_path, len(res.skipped)))
    print('done in %.1f s; train with --use-rec --data-dir %s' % (time.time() - t0, out))


if __name__ == '__main__':
    from gluon_tricks.distributed import run_main
    run_main(main)
