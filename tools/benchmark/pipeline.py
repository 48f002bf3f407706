"""The RecordIO data-pipeline benchmark: generated JPEG records, our
:class:`~gluon_tricks.data.RecordLoader` with the paper's full training augmentation
(:class:`RecordPipeline`) against a bare ``mx.io.ImageRecordIter`` built with the keyword
arguments of GluonCV's script (:class:`PlainRecordIter`, :data:`GLUONCV_REC_TRAIN_KWARGS`).
"""
import json
import os
import shutil

import numpy as np
import mxnet as mx

from gluon_tricks.data import AugmentConfig, RecordLoader, pack_class_folder

__all__ = ['RecordPipeline', 'PlainRecordIter', 'record_iter_threads', 'make_jpeg_record',
           'synthetic_jpeg', 'GLUONCV_REC_TRAIN_KWARGS']

#: Training-augmentation arguments of ``mx.io.ImageRecordIter`` exactly as GluonCV's
#: ``scripts/classification/imagenet/train_imagenet.py`` (``get_data_rec``) writes them
#: (``jitter_param = 0.4``, ``lighting_param = 0.1``); ``data_shape``, ``batch_size``,
#: ``preprocess_threads`` and ``shuffle=True`` are added by :class:`PlainRecordIter`.
GLUONCV_REC_TRAIN_KWARGS = dict(
    mean_r=123.68, mean_g=116.779, mean_b=103.939,
    std_r=58.393, std_g=57.12, std_b=57.375,
    rand_mirror=True, random_resized_crop=True,
    max_aspect_ratio=4. / 3., min_aspect_ratio=3. / 4.,
    max_random_area=1, min_random_area=0.08,
    brightness=0.4, saturation=0.4, contrast=0.4, pca_noise=0.1)

def synthetic_jpeg(rng, width=400, height=350, detail=12.0):
    """An RGB uint8 image with structure at several scales plus fine noise.

    Encoded as JPEG at quality 95 a 400x350 image takes about 90 KB with ``detail=12``, the
    order of an average ImageNet training JPEG (about 110 KB at about 400x350): decoding cost
    depends on size and entropy, so flat images would flatter the pipeline.

    Parameters
    ----------
    rng : numpy.random.RandomState
    width, height : int
    detail : float
        Standard deviation of the per-pixel noise (0-255 scale).

    Returns
    -------
    numpy.ndarray
        ``(height, width, 3)`` uint8.
    """
    import cv2
    img = np.zeros((height, width, 3), np.float32)
    for cells, amp in ((4, 70.0), (16, 40.0), (64, 25.0)):
        cw = max(2, min(cells, width))
        ch = max(2, min(cells * height // max(width, 1), height))
        low = rng.uniform(-1, 1, (ch, cw, 3)).astype(np.float32)
        img += amp * cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    if detail:
        img += rng.standard_normal((height, width, 3)).astype(np.float32) * detail
    img += rng.uniform(60, 190, 3).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_jpeg_record(directory, num_images, width=400, height=350, num_classes=10,
                     quality=95, seed=0, num_workers=2, distinct=256):
    """Write a ``.rec/.idx/.lst`` of synthetic JPEGs for data-pipeline benchmarks.

    The files go to a subdirectory of ``directory`` named after the arguments (so that
    ``classes.txt`` and the files of different sizes never mix); a later call with the same
    arguments reuses them. The images (:func:`synthetic_jpeg`) are written losslessly as PNG
    class folders under a temporary directory and packed with
    :func:`gluon_tricks.data.pack_class_folder` (one JPEG encoding, at ``quality``).

    Parameters
    ----------
    directory : str
        Where the subdirectory goes (created if needed).
    num_images : int
    width, height : int
        Image size (ImageNet's average is about 400x350).
    num_classes : int
    quality : int
        JPEG quality of the records (``im2rec``'s default 95).
    seed : int
    num_workers : int
        Packing threads.
    distinct : int
        Different images generated (record ``i`` holds image ``i % distinct``): decoding
        costs the same whether or not a JPEG was seen before, and generating is the slow
        part of writing a large file.

    Returns
    -------
    dict
        ``rec``, ``idx``, ``num_images``, ``bytes_per_image`` (mean JPEG size), the
        arguments, and ``reused`` (True when existing files were kept).
    """
    import cv2
    if num_images < 1 or num_classes < 1 or width < 1 or height < 1:
        raise ValueError('num_images, num_classes, width and height must be >= 1')
    distinct = max(1, min(int(distinct), int(num_images)))
    spec = dict(num_images=int(num_images), width=int(width), height=int(height),
                num_classes=int(num_classes), quality=int(quality), seed=int(seed),
                distinct=distinct)
    out_dir = os.path.join(directory, 'jpeg-%(width)dx%(height)d-n%(num_images)d-'
                                      'd%(distinct)d-c%(num_classes)d-q%(quality)d-s%(seed)d'
                           % spec)
    prefix = os.path.join(out_dir, 'train')
    rec, idx, meta = prefix + '.rec', prefix + '.idx', prefix + '.json'
    if all(os.path.isfile(p) for p in (rec, idx, meta)):
        with open(meta) as f:
            old = json.load(f)
        if {k: old.get(k) for k in spec} == spec:
            return dict(old, rec=rec, idx=idx, reused=True)
    os.makedirs(out_dir, exist_ok=True)
    root = os.path.join(out_dir, 'images.tmp')
    shutil.rmtree(root, ignore_errors=True)
    try:
        rng = np.random.RandomState(seed)
        sources = []
        for i in range(num_images):
            cls = os.path.join(root, 'c%04d' % (i % num_classes))
            os.makedirs(cls, exist_ok=True)
            path = os.path.join(cls, '%06d.png' % i)
            if i < distinct:
                img = synthetic_jpeg(rng, width, height)
                cv2.imwrite(path, img[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
                sources.append(path)
            else:
                try:
                    os.link(sources[i % distinct], path)
                except OSError:
                    shutil.copyfile(sources[i % distinct], path)
        pack_class_folder(root, prefix, shuffle=True, seed=seed, quality=quality,
                          encoding='.jpg', num_workers=num_workers, progress=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    info = dict(spec, bytes_per_image=os.path.getsize(rec) / float(num_images))
    with open(meta, 'w') as f:
        json.dump(info, f)
    return dict(info, rec=rec, idx=idx, reused=False)


def record_iter_threads(requested, cores=None):
    """Decode threads ``mx.io.ImageRecordIter`` really uses for ``preprocess_threads``.

    MXNet 1.9.1 (``src/io/iter_image_recordio_2.cc``) caps them "to be conservative" at
    ``max(omp_get_num_procs() / 2 - 1, 1)``: 1 on a 2- or 4-core machine, 3 on 8 cores,
    31 on 64. More threads are silently ignored (``verbose=True`` logs the number used).

    Parameters
    ----------
    requested : int
    cores : int, optional
        Usable cores (default: the CPU affinity of this process).

    Returns
    -------
    int
    """
    if cores is None:
        from gluon_tricks.threads import usable_cpus
        cores = usable_cpus()
    return max(1, min(int(requested), max(cores // 2 - 1, 1)))


class RecordPipeline(object):
    """Our RecordIO training pipeline alone: :class:`gluon_tricks.data.RecordLoader` with the
    paper's full augmentation (:class:`~gluon_tricks.data.AugmentConfig` defaults at
    ``input_size``). ``run(n)`` reads ``n`` epochs (a fresh, seeded iterator each, as in
    training) and waits for every batch."""

    def __init__(self, rec, idx, batch_size, input_size, threads, seed=0):
        self.name = 'ours/%dt' % threads
        self.loader = RecordLoader(rec, idx, batch_size=batch_size, train=True,
                                   aug=AugmentConfig(input_size=input_size),
                                   num_workers=threads, seed=seed, progress=False)

    def run(self, n):
        images = 0
        for _ in range(n):
            for data, _label in self.loader:
                data.wait_to_read()
                images += data.shape[0]
        return images


class PlainRecordIter(object):
    """A bare ``mx.io.ImageRecordIter`` with GluonCV's training arguments
    (:data:`GLUONCV_REC_TRAIN_KWARGS`).

    ``fresh=False``: built once (on the first :meth:`run`, so that its prefetching cannot
    load other windows) and reset at every epoch, as GluonCV's script does. ``fresh=True``: a
    new iterator for every epoch, as :class:`~gluon_tricks.data.RecordLoader` builds one
    (to seed every epoch independently); the difference between the two is the cost of
    building an iterator (its threads, augmenters and first prefetch), paid once per epoch.
    """

    def __init__(self, rec, idx, batch_size, input_size, threads, seed=0, fresh=False):
        self.fresh = bool(fresh)
        self.name = 'ImageRecordIter%s/%dt' % ('(new)' if fresh else '', threads)
        self.kwargs = dict(GLUONCV_REC_TRAIN_KWARGS, path_imgrec=rec, path_imgidx=idx,
                           preprocess_threads=threads, shuffle=True, batch_size=batch_size,
                           data_shape=(3, input_size, input_size), seed=seed,
                           verbose=False)
        self.it = None

    def run(self, n):
        if self.it is None and not self.fresh:
            self.it = mx.io.ImageRecordIter(**self.kwargs)
        images = 0
        for _ in range(n):
            if self.fresh:
                self.it = mx.io.ImageRecordIter(**self.kwargs)
            else:
                self.it.reset()
            for batch in self.it:
                batch.data[0].wait_to_read()
                images += batch.data[0].shape[0] - batch.pad
        return images
