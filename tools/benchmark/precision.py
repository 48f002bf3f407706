"""Training loops in worker processes with their own environment, and reduced-precision
exports (``benchmark.py --what reference,train_bf16,exports,digits``).

Worker processes
    MXNet reads ``OMP_NUM_THREADS`` (and oneDNN its ISA limit) when it starts, so a loop
    that must run in *another* environment than ours runs in a child process:
    ``python -m tools.benchmark.precision '<json spec>'`` (the repository root on
    ``PYTHONPATH``). :class:`RemoteLoop` starts it,
    and its ``run(n)`` asks the child for a window of ``n`` batches over a pipe and waits:
    the parent and its children take turns exactly as in-process loops do
    (:func:`tools.benchmark.timing.interleaved_windows`), and the child reports its own CPU
    time. ``env='gluoncv'``: GluonCV's default environment (``OMP_NUM_THREADS``,
    ``MXNET_OMP_MAX_THREADS``, oneDNN ISA variables removed, no AMX: MXNet's own thread
    choice, libgomp's default active waiting);
    ``env='ours'``: what our entry points do (:func:`gluon_tricks.threads.
    configure_threads`, :func:`gluon_tricks.amx.enable_amx`).
Exports
    :func:`bench_exports`: float32, fused float32, bfloat16 and INT8 exports
    (:func:`gluon_tricks.quantize.export_precision`) of one network, throughput at a batch
    size and batch-1 latency, windows interleaved; :func:`digits_accuracy`: the top-1 of the
    same four exports of a network trained on the digits.
"""
import json
import os
import subprocess
import sys
import time

from .timing import interleaved_windows, latency_ms, median, paired_ratio

__all__ = ['RemoteLoop', 'gluoncv_env', 'bench_exports', 'digits_accuracy', 'EXPORTS']

#: export variants, in report order: (name, precision for export_precision)
EXPORTS = (('float32', 'float32'), ('float32_fused', 'float32-fused'),
           ('bfloat16', 'bfloat16'), ('int8', 'int8'))


def gluoncv_env(environ=None):
    """GluonCV's default environment: ours without the variables we set or a user may have
    set for MXNet's threads or oneDNN's ISA, and without AMX."""
    env = dict(os.environ if environ is None else environ)
    for key in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'MXNET_OMP_MAX_THREADS',
                'DNNL_MAX_CPU_ISA', 'ONEDNN_MAX_CPU_ISA'):
        env.pop(key, None)
    env['GLUON_TRICKS_AMX'] = '0'
    return env


def _repo_on_path(env):
    """``env`` with the repository root first on ``PYTHONPATH`` (the worker imports tools)."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env['PYTHONPATH'] = os.pathsep.join([repo] + [p for p in env.get('PYTHONPATH', '')
                                                  .split(os.pathsep) if p])
    return env


class RemoteLoop(object):
    """A training loop in a child process (see the module notes).

    Parameters
    ----------
    name : str
    spec : dict
        ``kind`` (``'ours'`` or ``'reference'``), ``env`` (``'ours'`` or ``'gluoncv'``),
        and the loop's arguments: ``model``, ``batch_size``, ``input_size``, ``dtype``,
        ``classes``, ``label_smoothing``, ``loss_scale``, ``seed``.
    """

    def __init__(self, name, spec):
        self.name = name
        self.spec = dict(spec)
        env = gluoncv_env() if spec.get('env') == 'gluoncv' else dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'tools.benchmark.precision', json.dumps(self.spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_repo_on_path(env), text=True,
            bufsize=1)
        hello = self._read()
        self.batch_size = hello['batch_size']
        self.omp_threads = hello['omp_threads']
        self.env_note = hello['note']
        self.last_cpu_seconds = None
        self.last_meters = None

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('benchmark worker %s died (exit code %s); see its stderr'
                               % (self.name, self.proc.poll()))
        return json.loads(line)

    def run(self, n):
        self.proc.stdin.write('%d\n' % n)
        self.proc.stdin.flush()
        out = self._read()
        self.last_cpu_seconds = out['cpu']
        self.last_meters = out.get('loss')
        return out['images']

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _worker(spec):
    """The child: build the loop in its environment, then serve ``run n`` requests."""
    notes = []
    if spec.get('env') == 'ours':
        from gluon_tricks.threads import configure_threads
        notes.append(configure_threads())
        from gluon_tricks.amx import enable_amx
        notes.append(enable_amx()[1])
    else:
        notes.append('GluonCV default environment: OMP_NUM_THREADS unset, no AMX')
    import mxnet as mx          # after configure_threads: MXNet reads OMP_NUM_THREADS once
    from gluon_tricks.precision import init_amp
    from .loops import GluonCVTrainLoop, OurTrainLoop
    from .machine import mxnet_omp_threads
    dtype = spec.get('dtype', 'float32')
    common = dict(model=spec['model'], devices=[mx.cpu()], batch_size=spec['batch_size'],
                  input_size=spec['input_size'], dtype=dtype,
                  classes=spec.get('classes', 1000),
                  label_smoothing=spec.get('label_smoothing', 0.0), seed=spec.get('seed', 0))
    if spec['kind'] == 'ours':
        init_amp(dtype)
        loop = OurTrainLoop(loss_scale=spec.get('loss_scale'), **common)
    else:
        loop = GluonCVTrainLoop(**common)
    print(json.dumps({'batch_size': loop.batch_size, 'note': '; '.join(notes),
                      'omp_threads': mxnet_omp_threads()}), flush=True)
    for line in sys.stdin:
        n = int(line)
        tic = time.process_time()
        images = loop.run(n)
        meters = getattr(loop, 'last_meters', None)
        print(json.dumps({'images': images, 'cpu': time.process_time() - tic,
                          'loss': meters.get('loss') if meters else None}), flush=True)


# --------------------------------------------------------------------------- exports
def _export_all(net_or_prefix, work_dir, calib, log, **export_kwargs):
    from gluon_tricks.quantize import export_precision
    prefixes = {}
    base = None
    for name, precision in EXPORTS:
        prefix = os.path.join(work_dir, name)
        src = base if base else net_or_prefix
        kwargs = export_kwargs if not base else {}
        if precision == 'int8':
            kwargs = dict(kwargs, calib_loader=calib, calib_mode='naive',
                          num_calib_images=256)
        export_precision(src, prefix, precision, log=log, **kwargs)
        prefixes[name] = prefix
        base = base or prefix
    return prefixes


def bench_exports(model, input_size, batch_size, iterations, windows, warmup, latency_calls,
                  work_dir, classes=1000, log=None):
    """Throughput at ``batch_size`` and batch-1 latency of the four exports of ``model``
    (paper init, INT8 calibrated on 64 random normal images; speed does not depend on the
    weights), windows interleaved. Returns ``{variant: {img_per_sec, windows,
    img_per_cpu_sec, latency_ms, latency_cpu_ms, ratio..., }}``."""
    import mxnet as mx
    from gluon_tricks.export import load_exported
    from gluon_tricks.model_zoo import get_initializer, get_model
    from .loops import InferenceLoop
    log = log or (lambda msg: None)
    net = get_model(model, classes=classes)
    net.initialize(get_initializer('paper'))
    calib = [mx.nd.random.normal(shape=(16, 3, input_size, input_size)) for _ in range(4)]
    prefixes = _export_all(net, work_dir, calib, log, input_size=input_size,
                           model_name=model)
    x = mx.nd.random.normal(shape=(batch_size, 3, input_size, input_size))
    x1 = x[:1].copy()
    out = {'batch_size': batch_size, 'variants': [n for n, _ in EXPORTS]}
    rates = {}
    lat = {}
    for phase, data in (('throughput', x), ('latency', x1)):
        loops = [InferenceLoop(name, load_exported(prefixes[name])[0], data)
                 for name, _ in EXPORTS]
        if phase == 'throughput':
            log('exports: batch %d, %d windows of %d batches' % (batch_size, windows,
                                                                 iterations))
            rates, cpu = interleaved_windows(loops, iterations, windows, warmup, log=log)
            for loop in loops:
                out[loop.name] = {'img_per_sec': median(rates[loop.name]),
                                  'windows': rates[loop.name],
                                  'img_per_cpu_sec': median(cpu[loop.name])}
        else:
            log('exports: batch-1 latency, %d calls each' % latency_calls)
            lat = {loop.name: [] for loop in loops}
            lat_cpu = {loop.name: [] for loop in loops}
            for loop in loops:
                latency_ms(loop.call, 0, warmup=max(1, warmup))
            for b in range(-(-latency_calls // 5)):
                for loop in (loops if b % 2 == 0 else loops[::-1]):
                    lat[loop.name] += latency_ms(loop.call, 5, warmup=0,
                                                    cpu=lat_cpu[loop.name])
            for loop in loops:
                out[loop.name]['latency_ms'] = median(lat[loop.name])
                out[loop.name]['latency_cpu_ms'] = median(lat_cpu[loop.name])
    base = out['float32']
    for name, _ in EXPORTS:
        v = out[name]
        v['throughput_ratio'] = v['img_per_sec'] / base['img_per_sec']
        v['throughput_ratio_paired'] = paired_ratio(v['windows'], base['windows'])
        v['throughput_ratio_cpu'] = v['img_per_cpu_sec'] / base['img_per_cpu_sec']
        v['latency_ratio'] = v['latency_ms'] / base['latency_ms']
    return out


def digits_accuracy(work_dir, model='resnet18_v1b', input_size=16, steps=120, lr=0.2,
                    log=None):
    """Train ``model`` on the digits (:func:`tools.benchmark.digits.train_quick`), write
    the four exports (INT8 calibrated, naive, on 256 training images through the validation
    transform) and return the top-1 of each on the 360 held-out digits."""
    from gluon_tricks.data import AugmentConfig, FolderLoader
    from gluon_tricks.export import load_exported
    from .digits import digits_arrays, top1, train_quick
    log = log or (lambda msg: None)
    tic = time.time()
    x, y, xv, yv, info = digits_arrays(os.path.join(work_dir, 'digits'), input_size)
    net = train_quick(x, y, model, steps=steps, lr=lr)
    log('digits: %s trained for %d steps in %.0f s' % (model, steps, time.time() - tic))
    calib = FolderLoader(info.train_dir, batch_size=32, train=False, num_workers=0,
                         aug=AugmentConfig(input_size=input_size, crop_ratio=1.0))
    prefixes = _export_all(net, os.path.join(work_dir, 'digits_export'), calib, log,
                           input_size=input_size, crop_ratio=1.0, model_name=model,
                           class_names=info.classes)
    out = {'model': model, 'input_size': input_size, 'steps': steps,
           'val_images': int(len(yv)), 'top1': {}}
    for name, _ in EXPORTS:
        out['top1'][name] = top1(load_exported(prefixes[name])[0], xv, yv)
    out['drop_points'] = {name: 100 * (out['top1']['float32'] - acc)
                          for name, acc in out['top1'].items()}
    return out


if __name__ == '__main__':
    _worker(json.loads(sys.argv[1]))
