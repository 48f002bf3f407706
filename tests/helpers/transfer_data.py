"""The data the transfer-learning tests share (tests/test_transfer.py, test_detection.py,
test_segmentation.py): the tiny backbone checkpoint (made once per test session) and the
generators of tiny VOC and ADE20K data in their real layouts."""
import glob
import os
import shutil

import numpy as np

from helpers.scripts_runner import load_script

BACKBONE = 'resnet18_v1d'   # deep stem + avg-pool shortcut: the paper's D tweaks, small


def tiny_backbone(tmp_path_factory):
    """Train ``resnet18_v1d`` for one epoch on 40 real digits with our own pipeline
    (make_digits_dataset -> prepare_imagenet.py -> train_imagenet.py), once per session.

    Returns
    -------
    str
        The ``--save-dir`` of the run (``checkpoint-best/net.params`` inside).
    """
    root = tmp_path_factory.getbasetemp() / 'tiny-backbone'
    run = root / 'run'
    if (run / 'checkpoint-best' / 'net.params').exists():
        return str(run)
    shutil.rmtree(str(root), ignore_errors=True)
    from gluon_tricks.data import make_digits_dataset
    info = make_digits_dataset(str(root / 'full'), image_size=40)
    for split, keep in (('train', 4), ('val', 2)):
        for cls in info.classes:
            os.makedirs(str(root / 'small' / split / cls))
            for f in sorted(glob.glob(str(root / 'full' / split / cls / '*.png')))[:keep]:
                shutil.copy(f, str(root / 'small' / split / cls))
    load_script('classification', 'prepare_imagenet').main(
        ['--data-dir', str(root / 'small'), '--out-dir', str(root / 'rec'), '--resize', '0',
         '--encoding', '.png', '--quality', '3', '-j', '1'])
    load_script('classification', 'train_imagenet').main(
        ['--model', BACKBONE, '--use-rec', '--data-dir', str(root / 'rec'), '--input-size',
         '32', '--crop-ratio', '1', '--batch-size', '8', '--num-epochs', '1', '-j', '1',
         '--log-interval', '5', '--progress', 'log', '--save-dir', str(run)])
    assert (run / 'checkpoint-best' / 'net.params').exists()
    return str(run)


def write_voc(root, seed=0, size=(160, 120)):
    """Tiny Pascal VOC in GluonCV's layout: VOC2007 trainval (2) + test (3), VOC2012 trainval
    (2) JPEGs with XML annotations, each image a 'dog' and a 'person' box; the 'person' of the
    first image of every split is marked difficult.

    Returns
    -------
    dict
        ``{image id: [(class, xmin, ymin, xmax, ymax, difficult), ...]}`` (VOC pixel
        coordinates, 1-based).
    """
    import cv2
    layout = {2007: {'trainval': ['000005', '000007'], 'test': ['000001', '000002', '000003']},
              2012: {'trainval': ['2008_000001', '2008_000002']}}
    objects = {}
    for year, splits in layout.items():
        rng = np.random.RandomState(seed + year)
        base = os.path.join(str(root), 'VOC%d' % year)
        for sub in ('Annotations', 'JPEGImages', os.path.join('ImageSets', 'Main')):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        for split, ids in splits.items():
            with open(os.path.join(base, 'ImageSets', 'Main', split + '.txt'), 'w') as f:
                f.write(''.join(i + '\n' for i in ids))
            for k, img_id in enumerate(ids):
                w, h = size
                img = (rng.rand(h, w, 3) * 60).astype(np.uint8)
                objs = []
                for j, (cls, color) in enumerate((('dog', (0, 0, 255)),
                                                  ('person', (0, 255, 0)))):
                    x1, y1 = int(rng.randint(1, w // 2)), int(rng.randint(1, h // 2))
                    x2 = min(w, x1 + int(rng.randint(30, w // 2)))
                    y2 = min(h, y1 + int(rng.randint(30, h // 2)))
                    cv2.rectangle(img, (x1 - 1, y1 - 1), (x2 - 1, y2 - 1), color, -1)
                    objs.append((cls, x1, y1, x2, y2, int(k == 0 and j == 1)))
                assert cv2.imwrite(os.path.join(base, 'JPEGImages', img_id + '.jpg'), img)
                xml = ['<annotation><folder>VOC%d</folder><filename>%s.jpg</filename>'
                       % (year, img_id),
                       '<size><width>%d</width><height>%d</height><depth>3</depth></size>'
                       % (w, h)]
                for cls, x1, y1, x2, y2, diff in objs:
                    xml.append('<object><name>%s</name><pose>Unspecified</pose>'
                               '<truncated>0</truncated><difficult>%d</difficult><bndbox>'
                               '<xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax>'
                               '</bndbox></object>' % (cls, diff, x1, y1, x2, y2))
                xml.append('</annotation>')
                with open(os.path.join(base, 'Annotations', img_id + '.xml'), 'w') as f:
                    f.write('\n'.join(xml))
                objects[img_id] = objs
    return objects


def write_ade20k(root, n_train=4, n_val=3, size=(80, 60), seed=0):
    """Tiny ADE20K in GluonCV's layout: ``ADEChallengeData2016/images/{training,validation}``
    JPEGs with uint8 PNG masks (0 = unlabeled, 1 wall, 3 sky, 5 tree)."""
    from PIL import Image
    rng = np.random.RandomState(seed)
    base = os.path.join(str(root), 'ADEChallengeData2016')
    palette = {0: (0, 0, 0), 1: (120, 120, 120), 3: (80, 160, 250), 5: (20, 160, 20)}
    for split, n, tag in (('training', n_train, 'train'), ('validation', n_val, 'val')):
        for sub in ('images', 'annotations'):
            os.makedirs(os.path.join(base, sub, split), exist_ok=True)
        for k in range(n):
            w, h = size
            mask = np.ones((h, w), np.uint8)
            mask[:h // 3] = 3
            x = rng.randint(0, w // 2)
            mask[h // 2:, x:x + w // 3] = 5
            mask[-4:, :6] = 0
            img = np.zeros((h, w, 3), np.uint8)
            for c, col in palette.items():
                img[mask == c] = col
            img = np.clip(img + rng.randint(0, 30, img.shape), 0, 255).astype(np.uint8)
            name = 'ADE_%s_%08d' % (tag, k + 1)
            Image.fromarray(img).save(os.path.join(base, 'images', split, name + '.jpg'))
            Image.fromarray(mask).save(os.path.join(base, 'annotations', split, name + '.png'))
    return base
