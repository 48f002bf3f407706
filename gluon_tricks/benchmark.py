"""Speed measurements: our training step against GluonCV's loop, the RecordIO pipeline, and
exported-model inference (``scripts/classification/benchmark.py``).

Everything is measured in *windows*: a loop runs ``iterations`` batches (or one epoch of the
data), is synchronised (``mx.nd.waitall``), and the window's images per second are recorded.
Loops that are compared with each other run in the same process with their windows
*interleaved* (A B, B A, A B, ...) so that a change of load on a shared machine hits both
alike; a figure is the median over the windows, and a ratio is the ratio of the medians.

The loops:

* :class:`OurTrainLoop`: :class:`gluon_tricks.engine.TrainStep` wired as in
  ``scripts/classification/train_imagenet.py`` (our model zoo, paper init,
  ``hybridize(static_alloc=True, static_shape=True)``, NAG through
  :meth:`DistContext.make_trainer`, :class:`LossScaler`), meters read once per window
  (the log point).
* :class:`GluonCVTrainLoop`: the per-batch body of GluonCV's ``train_imagenet.py``
  (``gluoncv.model_zoo.get_model(name, pretrained=False)``, ``MSRAPrelu``, the same
  hybridization, ``gluon.Trainer(..., 'nag', ...)`` with GluonCV's ``LRSequential``, and
  ``train_metric.update(label, outputs)`` after every batch: a host synchronisation per batch).
* :class:`RecordPipeline` / :class:`PlainRecordIter`: our :class:`~gluon_tricks.data.RecordLoader`
  with the paper's full training augmentation against a bare ``mx.io.ImageRecordIter`` built
  with the keyword arguments of GluonCV's script (:data:`GLUONCV_REC_TRAIN_KWARGS`).
* :class:`InferenceLoop`: a network called on a fixed batch (the in-memory hybridized network,
  or the exported one from :func:`gluon_tricks.export.load_exported`).
"""
import json
import os
import platform
import re
import shutil
import statistics
import time

import numpy as np
import mxnet as mx

__all__ = ['OurTrainLoop', 'GluonCVTrainLoop', 'RecordPipeline', 'PlainRecordIter',
           'InferenceLoop', 'interleaved_windows', 'paired_ratio', 'latency_ms', 'median',
           'record_iter_threads',
           'make_jpeg_record', 'synthetic_jpeg', 'profile_step', 'train_gflops_per_image',
           'machine_info', 'cpu_peak_gflops', 'mxnet_omp_threads', 'gluoncv_model_list',
           'safe_name',
           'GLUONCV_REC_TRAIN_KWARGS',
           'PAPER_TRAIN_STEPS']

#: Optimizer steps per epoch and epochs used to build the lr schedules of the training loops
#: (any values give the same speed; these are ImageNet's for batch 256 and the paper's 120).
PAPER_TRAIN_STEPS = (1281167 // 256, 120)

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


def median(values):
    """Median of a non-empty sequence of numbers (float)."""
    values = list(values)
    if not values:
        raise ValueError('median of no values')
    return float(statistics.median(values))


# --------------------------------------------------------------------------- timing
def interleaved_windows(loops, iterations, windows, warmup=1, log=None):
    """Time several loops in alternating windows.

    Every loop first runs ``warmup`` untimed batches (graph building, memory planning,
    MKLDNN primitive creation). Then, ``windows`` times, each loop runs one timed window of
    ``iterations`` batches; the order of the loops is reversed every other window (A B, B A,
    ...) so that neither is systematically first after the other.

    Besides wall-clock speed, the CPU time of the process is recorded per window: images per
    CPU-second are much less sensitive than images per second to other processes taking
    turns on the same cores (they still include threads that spin while waiting).

    Parameters
    ----------
    loops : list
        Objects with a ``name`` and ``run(n)`` that processes ``n`` batches (or epochs), ends
        synchronised (everything it queued has finished) and returns the number of images.
    iterations : int
        Batches per window.
    windows : int
    warmup : int
        Untimed batches per loop before the first window.
    log : callable, optional
        Called with a progress line after every window.

    Returns
    -------
    wall : dict
        ``name -> list of images per second`` (one value per window, in order).
    cpu : dict
        ``name -> list of images per CPU-second`` of the process (of the worker process
        for a loop that reports ``last_cpu_seconds``, :class:`~gluon_tricks.bench_precision.
        RemoteLoop`).
    """
    if iterations < 1 or windows < 1:
        raise ValueError('iterations and windows must be >= 1, got %r and %r'
                         % (iterations, windows))
    for loop in loops:
        if warmup > 0:
            loop.run(warmup)
    wall = {loop.name: [] for loop in loops}
    cpu = {loop.name: [] for loop in loops}
    for w in range(windows):
        order = loops if w % 2 == 0 else loops[::-1]
        for loop in order:
            tic, cpu_tic = time.perf_counter(), time.process_time()
            images = loop.run(iterations)
            elapsed = time.perf_counter() - tic
            cpu_elapsed = time.process_time() - cpu_tic
            if getattr(loop, 'last_cpu_seconds', None) is not None:
                cpu_elapsed = loop.last_cpu_seconds     # a loop in a worker process
            wall[loop.name].append(images / max(elapsed, 1e-12))
            cpu[loop.name].append(images / max(cpu_elapsed, 1e-12))
            if log:
                log('  window %d/%d %-24s %9.2f img/s %9.2f img/cpu-s'
                    % (w + 1, windows, loop.name, wall[loop.name][-1], cpu[loop.name][-1]))
    return wall, cpu


def paired_ratio(a, b):
    """Median over windows of ``a[i] / b[i]`` (two loops timed in the same round)."""
    return median(x / y for x, y in zip(a, b))


def latency_ms(fn, calls, warmup=1, cpu=None):
    """Per-call latencies of ``fn()`` in milliseconds (``fn`` must return only when its result
    is ready, e.g. end with ``wait_to_read``).

    Parameters
    ----------
    fn : callable
    calls : int
        Timed calls.
    warmup : int
        Untimed calls first.
    cpu : list, optional
        Receives the CPU time of the process per call (ms), a load-robust companion.

    Returns
    -------
    list of float
    """
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - tic) * 1e3)
        if cpu is not None:
            cpu.append((time.process_time() - cpu_tic) * 1e3)
    return out


# --------------------------------------------------------------------------- training loops
def _check_dtype_on(dtype, devices):
    if dtype == 'float16' and all(d.device_type == 'cpu' for d in devices):
        raise ValueError("dtype='float16' cannot train on CPU: MXNet 1.9.1 has no float16 GEMM "
                         "on CPU ('FP16 gemm on cpu not implemented'); use --num-gpus N, or "
                         "float32 / bfloat16 on CPU")


class OurTrainLoop(object):
    """Our training step (:class:`gluon_tricks.engine.TrainStep`) on one synthetic batch.

    Built like ``scripts/classification/train_imagenet.py`` builds it: ``get_model``,
    :func:`~gluon_tricks.precision.cast_network`, the paper's init,
    ``hybridize(static_alloc=True, static_shape=True)``, a dummy forward to finish deferred
    initialization, NAG (momentum 0.9, wd 1e-4) with a step schedule through
    :meth:`DistContext.make_trainer`, and the step's meters read once per :meth:`run`
    (the log point; no host synchronisation per batch).

    Parameters
    ----------
    model : str
        A name of :func:`gluon_tricks.model_zoo.get_model_list`.
    devices : list of mxnet.Context
    batch_size : int
        Per device (as ``--batch-size`` of the training script).
    input_size : int
    dtype : {'float32', 'float16', 'bfloat16'}
        ``'bfloat16'`` needs :func:`gluon_tricks.precision.init_amp` called first.
    classes : int
    label_smoothing : float
        eq. (4) epsilon; 0 trains on sparse labels.
    loss_scale : None, float or 'dynamic'
        :class:`~gluon_tricks.precision.LossScaler` argument (None: no scaling, no check).
    lr : float, optional
        Default: the linear scaling rule ``0.1 x batch / 256``.
    seed : int
        Seed of the synthetic batch (:class:`~gluon_tricks.data.SyntheticLoader`).
    data : tuple of NDArray, optional
        ``(data, label)`` to train on instead of a new synthetic batch.
    """

    name = 'ours'

    def __init__(self, model, devices, batch_size, input_size, dtype='float32', classes=1000,
                 label_smoothing=0.0, loss_scale=None, lr=None, seed=0, data=None):
        from .data import SyntheticLoader
        from .distributed import DistContext
        from .engine import Recipe, TrainStep
        from .lr_scheduler import LRScheduler, linear_scaled_lr
        from .model_zoo import get_initializer, get_model
        from .optim import optimizer_params
        from .precision import LossScaler, cast_network, data_dtype, needs_multi_precision
        _check_dtype_on(dtype, devices)
        self.devices = list(devices)
        self.batch_size = int(batch_size) * len(self.devices)
        net = get_model(model, classes=classes)
        cast_network(net, dtype)
        net.initialize(get_initializer('paper'), ctx=self.devices)
        net.hybridize(static_alloc=True, static_shape=True)
        net(mx.nd.zeros((1, 3, input_size, input_size), ctx=self.devices[0],
                        dtype=data_dtype(dtype)))
        self.net = net
        lr = lr or linear_scaled_lr(self.batch_size)
        steps, epochs = PAPER_TRAIN_STEPS
        sched = LRScheduler('step', lr, steps, epochs, step_epochs=(30, 60, 90))
        self.trainer = DistContext().make_trainer(
            net.collect_params(), 'nag',
            optimizer_params(sched, momentum=0.9, wd=1e-4,
                             multi_precision=needs_multi_precision(dtype)))
        self.scaler = LossScaler(loss_scale)
        self.step = TrainStep(net, self.trainer, self.devices,
                              Recipe(classes, label_smoothing), self.scaler, dtype)
        if data is None:
            data = next(iter(SyntheticLoader(self.batch_size, self.batch_size, input_size,
                                             classes, seed=seed)))
        self.data, self.label = data
        self.batches = 0
        self.last_meters = None

    def run(self, n):
        """Train ``n`` batches, then read the meters (one synchronisation) and wait for the
        queued work. Returns the number of images."""
        for _ in range(n):
            self.step(self.data, self.label, 0, self.batches)
            self.batches += 1
        self.last_meters = self.step.read_meters()
        mx.nd.waitall()
        if self.last_meters['first_bad_batch'] >= 0:
            raise FloatingPointError('our loop: the loss became NaN/inf at batch %d'
                                     % self.last_meters['first_bad_batch'])
        return n * self.batch_size


def gluoncv_model_list():
    """Names GluonCV's ``get_model`` knows (empty when GluonCV is not installed)."""
    try:
        from gluoncv.model_zoo import get_model_list
    except ImportError:
        return []
    return sorted(get_model_list())


class GluonCVTrainLoop(object):
    """The reference: what GluonCV's ``train_imagenet.py`` does per batch.

    ``gluoncv.model_zoo.get_model(model, pretrained=False, classes=classes)``,
    ``net.cast(dtype)``, ``net.initialize(mx.init.MSRAPrelu())``,
    ``hybridize(static_alloc=True, static_shape=True)``, ``gluon.Trainer(params, 'nag',
    {'wd': 1e-4, 'momentum': 0.9, 'lr_scheduler': LRSequential([...])})`` (plus
    ``multi_precision`` for float16), ``SoftmaxCrossEntropyLoss`` and ``mx.metric.Accuracy``.
    Per batch: ``split_and_load``, the optional ``smooth`` one-hot, forward under
    ``autograd.record``, ``l.backward()`` for each loss, ``trainer.step(batch_size)`` and
    ``train_metric.update(label, outputs)``, which copies the predictions to the host (a
    synchronisation per batch). At the end of :meth:`run`, ``train_metric.get()`` (its log
    line) and a wait for the queued work.

    Parameters are those of :class:`OurTrainLoop` (``label_smoothing`` uses GluonCV's
    ``eps / K`` smoothing, as its script does).
    """

    name = 'reference'

    def __init__(self, model, devices, batch_size, input_size, dtype='float32', classes=1000,
                 label_smoothing=0.0, lr=None, seed=0, data=None):
        import gluoncv
        from gluoncv.utils import LRScheduler, LRSequential
        from .data import SyntheticLoader
        from .lr_scheduler import linear_scaled_lr
        _check_dtype_on(dtype, devices)
        if model.lower() not in gluoncv_model_list():
            raise ValueError('GluonCV has no model %r, so there is no reference loop for it; '
                             'leave "reference" out of --what' % model)
        self.devices = list(devices)
        self.batch_size = int(batch_size) * len(self.devices)
        self.dtype = dtype
        self.classes = classes
        self.eta = float(label_smoothing)
        net = gluoncv.model_zoo.get_model(model, pretrained=False, classes=classes)
        net.cast(dtype if dtype != 'bfloat16' else 'float32')
        net.hybridize(static_alloc=True, static_shape=True)
        net.initialize(mx.init.MSRAPrelu(), ctx=self.devices)
        self.net = net
        lr = lr or linear_scaled_lr(self.batch_size)
        num_batches, epochs = PAPER_TRAIN_STEPS
        lr_scheduler = LRSequential([
            LRScheduler('linear', base_lr=0, target_lr=lr, nepochs=0,
                        iters_per_epoch=num_batches),
            LRScheduler('step', base_lr=lr, target_lr=0, nepochs=epochs,
                        iters_per_epoch=num_batches, step_epoch=[30, 60, 90],
                        step_factor=0.1, power=2)])
        params = {'wd': 1e-4, 'momentum': 0.9, 'lr_scheduler': lr_scheduler}
        if dtype == 'float16':
            params['multi_precision'] = True
        self.trainer = mx.gluon.Trainer(net.collect_params(), 'nag', params)
        self.loss = mx.gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=self.eta == 0)
        self.train_metric = mx.metric.Accuracy()
        if data is None:
            data = next(iter(SyntheticLoader(self.batch_size, self.batch_size, input_size,
                                             classes, seed=seed)))
        self.data, self.label = data
        self.last_metric = None

    def _smooth(self, label):
        # GluonCV's train_imagenet.py `smooth` (eps / K off target)
        return [l.one_hot(self.classes, on_value=1 - self.eta + self.eta / self.classes,
                          off_value=self.eta / self.classes) for l in label]

    def run(self, n):
        """Train ``n`` batches the way GluonCV's script does. Returns the number of images."""
        from mxnet import autograd as ag
        net, L, dtype = self.net, self.loss, ('float16' if self.dtype == 'float16'
                                             else 'float32')
        for _ in range(n):
            data = mx.gluon.utils.split_and_load(self.data, ctx_list=self.devices, batch_axis=0)
            label = mx.gluon.utils.split_and_load(self.label, ctx_list=self.devices,
                                                  batch_axis=0)
            hard_label = label
            if self.eta > 0:
                label = self._smooth(label)
            with ag.record():
                outputs = [net(X.astype(dtype, copy=False)) for X in data]
                loss = [L(yhat, y.astype(dtype, copy=False)) for yhat, y in zip(outputs, label)]
            for l in loss:
                l.backward()
            self.trainer.step(self.batch_size)
            self.train_metric.update(hard_label, outputs)
        self.last_metric = self.train_metric.get()
        mx.nd.waitall()
        return n * self.batch_size


def train_gflops_per_image(model, input_size, classes=1000):
    """Training FLOPs per image: 3 x (multiply-adds of one forward) x 2.

    Forward, backward to the activations and backward to the weights each cost about one
    forward; a multiply-add is two floating-point operations. The multiply-adds are counted
    on the network graph (:func:`gluon_tricks.model_zoo.summary.count_macs`; 4.3 G for
    ResNet-50-D at 224, Table 5).

    Returns
    -------
    (float, float)
        ``(GFLOPs per training image, G multiply-adds per forward)``.
    """
    from .model_zoo import get_model
    from .model_zoo.summary import count_macs
    macs = count_macs(get_model(model, classes=classes), (1, 3, input_size, input_size))
    return 3 * 2 * macs / 1e9, macs / 1e9


# --------------------------------------------------------------------------- inference
class InferenceLoop(object):
    """Forward passes of ``net`` on a fixed batch, each waited for (as a server would)."""

    def __init__(self, name, net, data):
        self.name = name
        self.net = net
        self.data = data

    def call(self):
        """One forward pass, waited for."""
        self.net(self.data).wait_to_read()

    def run(self, n):
        """``n`` forward passes. Returns the number of images."""
        for _ in range(n):
            self.call()
        return n * self.data.shape[0]


# --------------------------------------------------------------------------- data
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
    from .data import pack_class_folder
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
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    return max(1, min(int(requested), max(cores // 2 - 1, 1)))


class RecordPipeline(object):
    """Our RecordIO training pipeline alone: :class:`gluon_tricks.data.RecordLoader` with the
    paper's full augmentation (:class:`~gluon_tricks.data.AugmentConfig` defaults at
    ``input_size``). ``run(n)`` reads ``n`` epochs (a fresh, seeded iterator each, as in
    training) and waits for every batch."""

    def __init__(self, rec, idx, batch_size, input_size, threads, seed=0):
        from .data import AugmentConfig, RecordLoader
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


# --------------------------------------------------------------------------- profile
def profile_step(loop, steps=1, top=15, filename=None, per_operator=True):
    """Aggregate MXNet profile of ``steps`` training steps of a warmed-up ``loop``.

    A hybridized network runs its operators in bulked segments (``MXNET_EXEC_BULK_EXEC_*``,
    15 nodes by default), which the profiler reports as one entry named after all of its
    operators. With ``per_operator`` the network is re-hybridized with segments of one node
    (``forward_bulk_size=1, backward_bulk_size=1``), warmed up, profiled, and hybridized back
    as it was, so that every operator is timed on its own.

    Parameters
    ----------
    loop : OurTrainLoop or GluonCVTrainLoop
    steps : int
    top : int
        Operators to keep, by total time.
    filename : str, optional
        Chrome-trace file the profiler writes (default ``profile_step.json``).
    per_operator : bool

    Returns
    -------
    dict
        ``wall_ms`` (per step, under the profiler), ``operator_ms`` (sum of the operator
        times per step; above the wall time where operators overlap), ``operators`` (the top
        ``top``: ``name``, ``count`` and ``total_ms`` per step, ``share`` of ``operator_ms``),
        ``groups`` (shares of ``forward``, ``backward``, ``update`` and ``other`` operators),
        ``num_operators``.
    """
    filename = filename or 'profile_step.json'
    net = loop.net
    flags = dict(getattr(net, '_flags', []) or [])
    if per_operator:
        net.hybridize(static_alloc=flags.get('static_alloc', True),
                      static_shape=flags.get('static_shape', True),
                      forward_bulk_size=1, backward_bulk_size=1)
        loop.run(1)                     # build the unbulked graph outside the profile
    try:
        mx.nd.waitall()
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               continuous_dump=False, filename=filename)
        mx.profiler.set_state('run')
        tic = time.perf_counter()
        loop.run(steps)
        wall = (time.perf_counter() - tic) * 1e3 / steps
        mx.profiler.set_state('stop')
        mx.profiler.dump(finished=False)          # the chrome trace
        stats = json.loads(mx.profiler.dumps(reset=True, format='json'))
    finally:
        if per_operator:
            net.hybridize(**{k: v for k, v in flags.items()
                             if k in ('static_alloc', 'static_shape')})
    ops = stats.get('Time', {}).get('operator', {})
    rows = [{'name': k, 'count': v['Count'] / float(steps), 'total_ms': v['Total'] / steps}
            for k, v in ops.items()]
    total = sum(r['total_ms'] for r in rows) or 1.0
    rows.sort(key=lambda r: -r['total_ms'])
    for r in rows:
        r['share'] = r['total_ms'] / total
    groups = {'forward': 0.0, 'backward': 0.0, 'update': 0.0, 'other': 0.0}
    for r in rows:
        groups[_op_group(r['name'])] += r['share']
    return {'wall_ms': wall, 'operator_ms': total, 'operators': rows[:top], 'groups': groups,
            'num_operators': len(rows), 'per_operator': bool(per_operator)}


_FORWARD_OPS = ('Convolution', 'BatchNorm', 'Activation', 'Pooling', 'FullyConnected',
                'elemwise_add', 'Flatten', 'log_softmax', 'softmax', 'pick', 'Dropout',
                'SoftmaxOutput', 'mean', 'Reshape', 'Concat')


def _op_group(name):
    if name.startswith('_backward') or name.startswith('_contrib_backward') \
            or name == 'add_n':        # add_n sums gradients of branching activations
        return 'backward'
    if 'update' in name:
        return 'update'
    if name in _FORWARD_OPS or name.startswith('_sg_mkldnn'):
        return 'forward'
    return 'other'


# --------------------------------------------------------------------------- machine
def _lscpu():
    try:
        import subprocess
        text = subprocess.run(['lscpu'], capture_output=True, text=True, timeout=10).stdout
    except Exception:  # noqa: BLE001 - lscpu is optional
        return {}
    out = {}
    for line in text.splitlines():
        if ':' in line:
            k, v = line.split(':', 1)
            out[k.strip()] = v.strip()
    return out


def _cpuinfo():
    try:
        with open('/proc/cpuinfo') as f:
            text = f.read()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if ':' in line:
            k, v = line.split(':', 1)
            out.setdefault(k.strip(), v.strip())
    return out


def cpu_peak_gflops(cores, ghz, flags):
    """FP32 peak of a CPU: cores x GHz x FLOPs per cycle and core.

    FLOPs per cycle assume two vector FMA pipes, as on Intel Haswell and later and AMD Zen 2
    and later: AVX-512 with FMA 2 x 16 lanes x 2 = 64, AVX2 with FMA 2 x 8 x 2 = 32, AVX without
    FMA 16 (one add and one multiply of 8 lanes), SSE 8. (Zen 1 has two 128-bit FMA pipes,
    half the AVX2 figure; some Xeons have one AVX-512 FMA pipe.)

    Returns
    -------
    (float, int)
        ``(GFLOP/s, FLOPs per cycle per core)``.
    """
    flags = set(flags)
    if 'avx512f' in flags:
        per_cycle = 64
    elif 'avx2' in flags and 'fma' in flags:
        per_cycle = 32
    elif 'avx' in flags:
        per_cycle = 16
    else:
        per_cycle = 8
    return cores * ghz * per_cycle, per_cycle


def mxnet_omp_threads(cores=None, env=None):
    """OpenMP threads MXNet 1.9.1 computes with on CPU.

    ``OMP_NUM_THREADS`` if set, else ``MXNET_OMP_MAX_THREADS``, else half the processors on
    x86 (``src/engine/openmp.cc`` assumes two hyper-threads per core) and all of them
    elsewhere. On a VM whose vCPUs are whole cores (``Thread(s) per core: 1``) the default
    leaves half of the cores idle: set ``OMP_NUM_THREADS`` to the core count *before*
    importing mxnet.

    Parameters
    ----------
    cores : int, optional
        Processors available (default: the CPU affinity of this process).
    env : dict, optional
        Environment (default ``os.environ``).

    Returns
    -------
    int
    """
    env = os.environ if env is None else env
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cores = os.cpu_count() or 1
    for key in ('OMP_NUM_THREADS', 'MXNET_OMP_MAX_THREADS'):
        try:
            return max(1, int(str(env.get(key, '')).split(',')[0]))
        except ValueError:
            continue
    if platform.machine().lower() in ('x86_64', 'amd64', 'i386', 'i686', 'x86'):
        return max(1, cores >> 1)
    return max(1, cores)


def machine_info():
    """What the figures depend on: CPU, cores, clock, vector width, FP32 peak, load, versions.

    Returns
    -------
    dict
    """
    ls, ci = _lscpu(), _cpuinfo()
    flags = (ls.get('Flags') or ci.get('flags') or '').split()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    mhz = None
    for key in ('CPU max MHz', 'CPU MHz'):
        if ls.get(key):
            mhz = float(ls[key])
            break
    if mhz is None and ci.get('cpu MHz'):
        mhz = float(ci['cpu MHz'])
    info = {'cpu': ls.get('Model name') or ci.get('model name') or platform.processor(),
            'vendor': ls.get('Vendor ID') or ci.get('vendor_id'),
            'cpu_family': ls.get('CPU family'), 'cpu_model': ls.get('Model'),
            'hypervisor': ls.get('Hypervisor vendor'),
            'cores': cores, 'mhz': mhz,
            'threads_per_core': int(ls['Thread(s) per core']) if
            ls.get('Thread(s) per core', '').isdigit() else None,
            'mxnet_omp_threads': mxnet_omp_threads(cores),
            'vector': [f for f in ('sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512_vnni',
                                   'avx512_bf16', 'amx_bf16', 'amx_int8') if f in flags],
            'load_average': list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
            'python': platform.python_version(), 'mxnet': mx.__version__,
            'mkldnn': bool(mx.runtime.Features().is_enabled('MKLDNN')),
            'env': {k: v for k, v in os.environ.items()
                    if k.startswith('MXNET_') or k in ('OMP_NUM_THREADS', 'KMP_AFFINITY')}}
    try:
        import gluoncv
        info['gluoncv'] = gluoncv.__version__
    except ImportError:
        info['gluoncv'] = None
    if mhz:
        peak, per_cycle = cpu_peak_gflops(cores, mhz / 1e3, flags)
        info['peak_gflops_fp32'] = peak
        info['flops_per_cycle_per_core'] = per_cycle
        if 'amx_bf16' in flags:   # one TMUL: 16x32 by 32x16 bf16 tile product = 1024 FMA/cycle
            info['peak_gflops_amx_bf16'] = cores * mhz / 1e3 * 2048
    return info


_SAFE = re.compile(r'[^A-Za-z0-9_.-]+')


def safe_name(text):
    """``text`` with anything but letters, digits, ``_.-`` replaced by ``_`` (file names)."""
    return _SAFE.sub('_', text)
