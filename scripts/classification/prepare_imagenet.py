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

Everything is written into a temporary folder inside OUT_DIR and moved into place only when
both splits are complete: a failure (an unreadable image without ``--skip-bad``, a class left
without images, Ctrl-C) leaves OUT_DIR as it was. Every image left out is named with the
reason. File names that are not valid UTF-8 cannot be listed in a ``.lst``: they are named
(as Python bytes) and stop the preparation, or are left out with ``--skip-bad``.
"""
import argparse
import os
import shutil
import sys
import time

from gluon_tricks.sections import HelpFormatter, first_paragraph
from gluon_tricks import data as gdata
from gluon_tricks.errors import UserError

#: what a preparation writes into OUT_DIR, per split (classes.txt once)
_SPLIT_FILES = ('.lst', '.rec', '.idx', '.rec.verified')


class PrepareError(UserError, ValueError):
    """The data cannot be packed as it is; the message names the files and what to do."""


def parse_args(argv=None):
    """Command-line flags."""
    p = argparse.ArgumentParser(description=first_paragraph(__doc__),
                                formatter_class=HelpFormatter)
    p.add_argument('--data-dir', required=True,
                   help='folder holding the train and val folders')
    p.add_argument('--out-dir', required=True,
                   help='where classes.txt and the .lst/.rec/.idx files go')
    p.add_argument('--train-dir', default='train', help='training folder, relative to DATA_DIR')
    p.add_argument('--val-dir', default='val', help='validation folder, relative to DATA_DIR')
    p.add_argument('--val-labels', default=None,
                   help='ground truth of a flat validation folder: "filename label" lines '
                        '(label a class name or an integer), or one class name per line in '
                        'sorted file order')
    p.add_argument('--no-val', action='store_true',
                   help='pack the training set only')
    p.add_argument('--resize', type=int, default=480,
                   help='downscale images whose shorter side is longer than this (GluonCV\'s '
                        'ImageNet RecordIO: 480); 0 keeps the original size')
    p.add_argument('--quality', type=int, default=None,
                   help='JPEG quality 1-100, or with --encoding .png the PNG compression '
                        'level 0-9 (default: 95 for JPEG, 3 for PNG)')
    p.add_argument('--encoding', default='.jpg', choices=['.jpg', '.png'],
                   help='image encoding inside the records')
    p.add_argument('-j', '--num-workers', type=int, default=os.cpu_count() or 1,
                   help='encoding threads (default: the number of CPUs, %(default)s here)')
    p.add_argument('--seed', type=int, default=0, help='seed of the training-list shuffle')
    p.add_argument('--skip-bad', action='store_true',
                   help='leave unreadable images (and unlistable file names) out, naming each '
                        '(default: stop and name them, writing nothing)')
    return p.parse_args(argv)


def shown(name):
    """A file name as printable text: its bytes (Python repr) when it is not valid UTF-8."""
    try:
        name.encode('utf-8')
        return name
    except UnicodeEncodeError:
        return repr(os.fsencode(name))


def _unlistable(name):
    """Why a relative path cannot be a line of a ``.lst`` file, or None."""
    try:
        name.encode('utf-8')
    except UnicodeEncodeError:
        return 'file name is not valid UTF-8'
    if '\t' in name or '\n' in name or '\r' in name:
        return 'file name holds a tab or a line break'
    return None


def check_names(items, root, what, skip_bad, log):
    """``(items, left_out)``: ``items`` without the file names a ``.lst`` cannot hold, and
    how many were left out; each is named, and without ``skip_bad`` they are a
    :class:`PrepareError` (nothing is written yet)."""
    bad = [(rel, _unlistable(rel)) for rel, _ in items if _unlistable(rel)]
    if not bad:
        return items, 0
    listed = ', '.join('%s (%s)' % (shown(os.path.join(root, rel)), why) for rel, why in bad)
    if not skip_bad:
        raise PrepareError(
            '%d %s file name(s) cannot be written to a .lst file: %s. Rename them (for '
            'Latin-1 names `convmv -f latin1 -t utf8 -r DIR` shows the renaming, --notest '
            'applies it) or leave them out with --skip-bad; nothing was written'
            % (len(bad), what, listed))
    for rel, why in bad:
        log('%s: skipped %s: %s' % (what, shown(os.path.join(root, rel)), why))
    drop = {rel for rel, _ in bad}
    return [item for item in items if item[0] not in drop], len(bad)


def check_classes(classes, root):
    bad = [c for c in classes if _unlistable(c)]
    if bad:
        raise PrepareError('class folder name(s) %s in %s cannot be written to classes.txt (%s): '
                           'rename the folder(s); nothing was written'
                           % (', '.join(shown(c) for c in bad), shown(root),
                              _unlistable(bad[0])))


def check_no_empty_class(rows, classes, root, what, skipped):
    """Every class keeps at least one image (a class without samples is a label hole)."""
    counts = [0] * len(classes)
    for _, label, _ in rows:
        counts[int(label)] += 1
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise PrepareError('%s class folder(s) %s under %s have no usable image left (%d '
                           'skipped, named above): add readable images or remove the folder(s); '
                           'nothing was written' % (what, ', '.join(shown(c) for c in empty[:10]),
                                                    shown(root), skipped))


def pack_split(name, items, root, stage, classes, args, log, shuffle, pack, left_out=0):
    """Write ``stage/name.lst`` and pack it; returns ``(PackResult, images left out)``.
    Unreadable images are named; without ``--skip-bad`` they are a :class:`PrepareError`."""
    if not items:
        raise PrepareError('no %s image of %s is left (%d left out, named above); nothing was '
                           'written to %s' % (name, shown(root), left_out, args.out_dir))
    lst = os.path.join(stage, name + '.lst')
    gdata.write_lst(lst, items, shuffle=shuffle, seed=args.seed)
    res = gdata.pack_records(lst, root, skip_bad=True, **pack)
    for rel, why in res.skipped:
        log('%s: %s %s: %s' % (name, 'skipped' if args.skip_bad else 'cannot read',
                               shown(os.path.join(root, rel)), why))
    if res.skipped and not args.skip_bad:
        raise PrepareError(
            '%d %s image(s) under %s cannot be read (named above; first: %s): fix or remove '
            'them, or leave them out with --skip-bad; nothing was written to %s'
            % (len(res.skipped), name, shown(root), shown(os.path.join(root, res.skipped[0][0])),
               args.out_dir))
    if name == 'train':
        check_no_empty_class(gdata.read_lst(lst), classes, root, name,
                             len(res.skipped) + left_out)
    return res, len(res.skipped) + left_out


def main(argv=None):
    """List both splits (every problem of the lists is found before any image is packed),
    pack them into a temporary folder in OUT_DIR, then move the files into place."""
    args = parse_args(argv)
    if args.quality is None:
        args.quality = 3 if args.encoding == '.png' else 95
    elif args.encoding == '.png' and not 0 <= args.quality <= 9:
        sys.exit('prepare_imagenet.py: error: --quality %d: with --encoding .png it is the PNG '
                 'compression level 0-9' % args.quality)
    elif args.encoding == '.jpg' and not 1 <= args.quality <= 100:
        sys.exit('prepare_imagenet.py: error: --quality %d: the JPEG quality is 1-100'
                 % args.quality)

    def log(message):
        print(message, file=sys.stderr)

    data_dir = os.path.expanduser(args.data_dir)
    out = os.path.expanduser(args.out_dir)
    t0 = time.time()
    train_root = os.path.join(data_dir, args.train_dir)
    train_items, classes = gdata.list_class_folder(train_root)
    check_classes(classes, train_root)
    train_items, left_out = check_names(train_items, train_root, 'train', args.skip_bad, log)
    splits = [('train', train_items, train_root, True, left_out)]
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
        val_items, left_out = check_names(val_items, val_root, 'val', args.skip_bad, log)
        splits.append(('val', val_items, val_root, False, left_out))
    created = not os.path.isdir(out)
    os.makedirs(out, exist_ok=True)
    stage = os.path.join(out, '.prepare-tmp-%d' % os.getpid())
    pack = dict(resize=args.resize, quality=args.quality, encoding=args.encoding,
                num_workers=args.num_workers)
    done = []
    try:
        os.makedirs(stage)
        gdata.write_class_names(os.path.join(stage, gdata.CLASSES_FILE), classes)
        for name, items, root, shuffle, left_out in splits:
            done.append((name,) + pack_split(name, items, root, stage, classes, args, log,
                                             shuffle, pack, left_out))
        for name, _, _ in done:          # complete: into place (the class names last)
            for suffix in _SPLIT_FILES:
                if os.path.exists(os.path.join(stage, name + suffix)):
                    os.replace(os.path.join(stage, name + suffix), os.path.join(out, name + suffix))
        os.replace(os.path.join(stage, gdata.CLASSES_FILE), os.path.join(out, gdata.CLASSES_FILE))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not os.listdir(out):
            os.rmdir(out)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    for name, res, skipped in done:
        print('%s: %d images%s -> %s%s' % (
            name, res.num_records, ', %d classes' % len(classes) if name == 'train' else '',
            os.path.join(out, name + '.rec'),
            ' (%d skipped, named above)' % skipped if skipped else ''))
    if args.no_val and os.path.exists(os.path.join(out, 'val.rec')):
        print('note: %s is from an earlier preparation (--no-val left it as it was)'
              % os.path.join(out, 'val.rec'))
    print('done in %.1f s; train with --use-rec --data-dir %s' % (time.time() - t0, out))


if __name__ == '__main__':
    from gluon_tricks.errors import run_main
    run_main(main)
