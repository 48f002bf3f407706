"""The benchmark's measurements (``scripts/classification/benchmark.py`` parses the flags and
calls :func:`run`): training loops, data pipeline, inference, exports, and the text report."""
import os
import re
import shutil
import sys
import tempfile
import time

import mxnet as mx

from gluon_tricks.amx import enable_amx
from gluon_tricks.distributed import DistContext
from gluon_tricks.export import export_model, load_exported
from gluon_tricks.model_zoo import get_initializer, get_model
from gluon_tricks.precision import cast_network, data_dtype, init_amp

from .loops import GluonCVTrainLoop, InferenceLoop, OurTrainLoop, train_gflops_per_image
from .machine import BusyLoad, machine_info
from .pipeline import PlainRecordIter, RecordPipeline, make_jpeg_record, record_iter_threads
from .precision import RemoteLoop, bench_exports, digits_accuracy
from .profiling import profile_step
from .timing import interleaved_windows, latency_ms, median, paired_ratio

__all__ = ['run', 'report', 'bench_train', 'bench_data', 'bench_inference']

_SAFE = re.compile(r'[^A-Za-z0-9_.-]+')


def safe_name(text):
    """``text`` with anything but letters, digits, ``_.-`` replaced by ``_`` (file names)."""
    return _SAFE.sub('_', text)


def log(msg):
    """A progress line to stderr (the report goes to stdout)."""
    sys.stderr.write(msg + '\n')
    sys.stderr.flush()


def bench_train(args, devices, results):
    """Our loop and (if asked) GluonCV's, interleaved; fills ``results['train']`` etc."""
    loops = []
    ours = None
    if 'train' in args.what:
        log('building our loop (%s, batch %d x %d, %d px, %s)'
             % (args.model, args.batch_size, len(devices), args.input_size, args.dtype))
        ours = OurTrainLoop(args.model, devices, args.batch_size, args.input_size,
                               args.dtype, args.classes, args.label_smoothing, args.loss_scale,
                               seed=args.seed)
        loops.append(ours)
    spec = dict(model=args.model, batch_size=args.batch_size, input_size=args.input_size,
                classes=args.classes, label_smoothing=args.label_smoothing, seed=args.seed)
    if 'reference' in args.what and (args.reference_env == 'same' or args.num_gpus):
        log('building the GluonCV reference loop (in this process)')
        data = (ours.data, ours.label) if ours is not None else None
        loops.append(GluonCVTrainLoop(args.model, devices, args.batch_size, args.input_size,
                                         args.dtype, args.classes, args.label_smoothing,
                                         seed=args.seed, data=data))
    elif 'reference' in args.what:
        log('starting the GluonCV reference loop in a worker process, GluonCV\'s default '
             'environment (float32)')
        loops.append(RemoteLoop('reference', dict(spec, kind='reference', env='gluoncv',
                                                     dtype='float32')))
    if 'train_bf16' in args.what:
        log('starting our loop in bfloat16 in a worker process (our environment)')
        loops.append(RemoteLoop('ours_bf16', dict(spec, kind='ours', env='ours',
                                                     dtype='bfloat16', loss_scale=None)))
    log('training: %d warm-up batches, %d windows of %d batches'
         % (args.warmup, args.windows, args.iterations))
    rates, cpu = interleaved_windows(loops, args.iterations, args.windows, args.warmup,
                                        log=log)
    gflops, gmacs = train_gflops_per_image(args.model, args.input_size, args.classes)
    peak = results['machine'].get('peak_gflops_fp32') if devices[0].device_type == 'cpu' \
        else None
    for loop in loops:
        key = 'train' if loop is ours else ('train_bf16' if loop.name == 'ours_bf16'
                                            else 'reference')
        speed = median(rates[loop.name])
        entry = {'img_per_sec': speed, 'windows': rates[loop.name],
                 'img_per_cpu_sec': median(cpu[loop.name]), 'cpu_windows': cpu[loop.name],
                 'batch_size': loop.batch_size, 'gflops_per_image': gflops,
                 'achieved_gflops': speed * gflops}
        entry['gflops_per_cpu_sec'] = entry['img_per_cpu_sec'] * gflops
        if peak:
            # wall-clock against all cores; per CPU-second against one core
            entry['peak_fraction'] = speed * gflops / peak
            entry['core_peak_fraction'] = entry['gflops_per_cpu_sec'] / (
                peak / results['machine']['cores'])
        if loop is ours:
            entry['loss'] = ours.last_meters['loss']
        if isinstance(loop, RemoteLoop):
            entry['process'] = {'env': loop.spec['env'], 'omp_threads': loop.omp_threads,
                                'note': loop.env_note}
        results[key] = entry
    results['model_gmacs'] = gmacs
    if ours is not None and 'reference' in results:
        ref = results['reference']
        results['ratio'] = results['train']['img_per_sec'] / ref['img_per_sec']
        results['ratio_paired'] = paired_ratio(results['train']['windows'], ref['windows'])
        results['ratio_cpu'] = results['train']['img_per_cpu_sec'] / ref['img_per_cpu_sec']
    if 'train_bf16' in results and 'reference' in results:
        ref, bf = results['reference'], results['train_bf16']
        results['ratio_bf16'] = bf['img_per_sec'] / ref['img_per_sec']
        results['ratio_bf16_paired'] = paired_ratio(bf['windows'], ref['windows'])
        results['ratio_bf16_cpu'] = bf['img_per_cpu_sec'] / ref['img_per_cpu_sec']
    for loop in loops:
        if isinstance(loop, RemoteLoop):
            loop.close()
    if args.profile and ours is not None:
        log('profiling one step of our loop')
        results['profile'] = profile_step(ours, steps=1, top=args.profile_top,
                                             filename=args.profile)
    return loops


def bench_data(args, work_dir, results):
    """Our RecordLoader against a bare ImageRecordIter, at 1 and --data-threads threads."""
    batch = args.batch_size * max(1, args.num_gpus)
    n = -(-args.data_images // batch) * batch
    w, h = args.image_wh
    log('data: %d synthetic %dx%d JPEGs -> .rec' % (n, w, h))
    tic = time.time()
    rec = make_jpeg_record(work_dir, n, w, h, seed=args.seed,
                              num_workers=args.data_threads, distinct=args.data_distinct)
    log('  %s (%.1f KB per image, %s in %.1fs)' % (rec['rec'], rec['bytes_per_image'] / 1e3,
                                                      'reused' if rec['reused'] else 'written',
                                                      time.time() - tic))
    out = {'images': n, 'image_size': [w, h], 'bytes_per_image': rec['bytes_per_image'],
           'batch_size': batch, 'input_size': args.input_size, 'threads': {}}
    thread_counts = list(range(1, args.data_threads + 1))
    effective = {t: record_iter_threads(t) for t in thread_counts}
    out['effective_threads'] = {str(t): e for t, e in effective.items()}
    measured = []
    for threads in thread_counts:
        if threads > 1 and effective[threads] == effective[1]:
            log('data: %d threads requested, but ImageRecordIter decodes with %d on %d cores '
                 '(it caps at max(cores / 2 - 1, 1)); our loader runs %d worker processes'
                 % (threads, effective[threads], results['machine']['cores'], threads))
        measured.append(threads)
        loops = [RecordPipeline(rec['rec'], rec['idx'], batch, args.input_size, threads,
                                seed=args.seed),
                 PlainRecordIter(rec['rec'], rec['idx'], batch, args.input_size, threads,
                                 seed=args.seed),
                 PlainRecordIter(rec['rec'], rec['idx'], batch, args.input_size, threads,
                                 seed=args.seed, fresh=True),
                 RecordPipeline(rec['rec'], rec['idx'], batch, args.input_size, 0,
                                seed=args.seed)]
        log('data: %d thread(s) (%d effective), %d windows of one epoch'
             % (threads, effective[threads], args.data_windows))
        rates, cpu = interleaved_windows(loops, 1, args.data_windows, warmup=1, log=log)
        ours, plain, fresh, inproc = (median(rates[loop.name]) for loop in loops)
        eff = effective[threads]
        out['threads'][str(threads)] = {
            'effective_threads': eff,
            'img_per_sec': ours, 'img_per_sec_per_thread': ours / eff,
            'reference_img_per_sec': plain, 'reference_img_per_sec_per_thread': plain / eff,
            'ratio': ours / plain,
            'ratio_paired': paired_ratio(rates[loops[0].name], rates[loops[1].name]),
            'ratio_cpu': median(cpu[loops[0].name]) / median(cpu[loops[1].name]),
            'windows': rates[loops[0].name], 'reference_windows': rates[loops[1].name],
            'fresh_img_per_sec': fresh, 'ratio_fresh': ours / fresh,
            'ratio_fresh_paired': paired_ratio(rates[loops[0].name], rates[loops[2].name]),
            'ratio_fresh_cpu': median(cpu[loops[0].name]) / median(cpu[loops[2].name]),
            'img_per_cpu_sec': median(cpu[loops[0].name]),
            'reference_img_per_cpu_sec': median(cpu[loops[1].name]),
            'fresh_img_per_cpu_sec': median(cpu[loops[2].name]),
            'in_process_img_per_sec': inproc, 'ratio_in_process': ours / inproc,
            'ratio_in_process_paired': paired_ratio(rates[loops[0].name],
                                                    rates[loops[3].name]),
            'in_process_img_per_cpu_sec': median(cpu[loops[3].name])}
        del loops
    top = out['threads'][str(measured[-1])]
    out['img_per_sec'] = top['img_per_sec']
    out['img_per_sec_per_thread'] = top['img_per_sec_per_thread']
    out['ratio'] = top['ratio']
    results['data'] = out


def bench_inference(args, devices, work_dir, results):
    """Exported model against the in-memory hybridized network: throughput and latency.

    Variants: ``in_memory`` (our network, ``hybridize(static_alloc=True,
    static_shape=True)``), ``exported`` (``gluon_tricks.export.load_exported``, i.e.
    ``SymbolBlock.imports`` with static memory planning, as deployment code gets it) and, on
    a CPU build with MKLDNN, ``exported_mkldnn`` (the same, with
    ``optimize_for(backend='MKLDNN')``: convolution, BatchNorm, ReLU and addition fused for
    inference).
    """
    ctx = devices[0]
    size, batch = args.input_size, args.batch_size
    dtype = data_dtype(args.dtype)
    net = get_model(args.model, classes=args.classes)
    cast_network(net, args.dtype)
    net.initialize(get_initializer('paper'), ctx=ctx)
    net.hybridize(static_alloc=True, static_shape=True)
    prefix = os.path.join(work_dir, 'export', safe_name(args.model))
    log('inference: exporting to %s' % prefix)
    export_model(net, prefix, input_size=size, model_name=args.model)
    x = mx.nd.random.normal(shape=(batch, 3, size, size), ctx=ctx).astype(dtype)
    x1 = x[:1].copy()
    variants = [('in_memory', net), ('exported', load_exported(prefix, ctx=ctx)[0])]
    if ctx.device_type == 'cpu' and results['machine']['mkldnn']:
        fused = load_exported(prefix, ctx=ctx)[0]
        fused.optimize_for(x, backend='MKLDNN', static_alloc=True, static_shape=True)
        variants.append(('exported_mkldnn', fused))
    out = {'batch_size': batch}
    # one input shape per phase: a static-shape graph re-plans when the shape changes
    for phase, data in (('throughput', x), ('latency', x1)):
        loops = [InferenceLoop(name, block, data) for name, block in variants]
        if phase == 'throughput':
            log('inference: batch %d, %d windows of %d batches'
                 % (batch, args.windows, args.iterations))
            rates, cpu = interleaved_windows(loops, args.iterations, args.windows,
                                                args.warmup, log=log)
            for loop in loops:
                out[loop.name] = {'img_per_sec': median(rates[loop.name]),
                                  'windows': rates[loop.name],
                                  'img_per_cpu_sec': median(cpu[loop.name])}
        else:
            log('inference: batch-1 latency, %d calls each' % args.latency_calls)
            lat = {loop.name: [] for loop in loops}
            lat_cpu = {loop.name: [] for loop in loops}
            for loop in loops:
                latency_ms(loop.call, 0, warmup=max(1, args.warmup))
            # alternate in blocks of 5 calls, like the windows
            per_block = 5
            for b in range(-(-args.latency_calls // per_block)):
                for loop in (loops if b % 2 == 0 else loops[::-1]):
                    lat[loop.name] += latency_ms(loop.call, per_block, warmup=0,
                                                    cpu=lat_cpu[loop.name])
            for loop in loops:
                out[loop.name]['latency_ms'] = median(lat[loop.name])
                out[loop.name]['latency_cpu_ms'] = median(lat_cpu[loop.name])
    base = out['in_memory']
    for name, _ in variants[1:]:
        v = out[name]
        v['throughput_ratio'] = v['img_per_sec'] / base['img_per_sec']
        v['throughput_ratio_paired'] = paired_ratio(v['windows'], base['windows'])
        v['latency_ratio'] = v['latency_ms'] / base['latency_ms']
        v['latency_ratio_paired'] = paired_ratio(lat[name], lat['in_memory'])
        v['throughput_ratio_cpu'] = v['img_per_cpu_sec'] / base['img_per_cpu_sec']
        v['latency_ratio_cpu'] = v['latency_cpu_ms'] / base['latency_cpu_ms']
    out['throughput_ratio'] = out['exported']['throughput_ratio']
    out['latency_ratio'] = out['exported']['latency_ratio']
    out['variants'] = [name for name, _ in variants]
    results['inference'] = out


def report(results):
    """The human-readable summary of ``results``."""
    m = results['machine']
    lines = ['machine: %s, %d cores @ %s MHz, %s, FP32 peak %s GFLOP/s, load %s'
             % (m['cpu'], m['cores'], m['mhz'], '+'.join(m['vector']),
                '%.0f' % m['peak_gflops_fp32'] if m.get('peak_gflops_fp32') else '?',
                ', '.join('%.2f' % v for v in m['load_average'] or [])),
             'mxnet %s (MKLDNN %s, %d OpenMP thread(s)), gluoncv %s'
             % (m['mxnet'], m['mkldnn'], m['mxnet_omp_threads'], m['gluoncv'])]
    if m['mxnet_omp_threads'] < m['cores'] and m.get('threads_per_core') == 1:
        lines.append('note: MXNet computes with %d of the %d cores (it assumes 2 hyper-threads '
                     'per core on x86; this CPU has 1): set OMP_NUM_THREADS=%d before starting '
                     'Python to use them all' % (m['mxnet_omp_threads'], m['cores'], m['cores']))
    c = results['config']
    lines.append('model %s, %d px, batch %d x %d device(s), %s'
                 % (c['model'], c['input_size'], c['batch_size'], c['num_devices'], c['dtype']))
    if c.get('load'):
        lines.append('load: %d competing busy process(es) during every measurement'
                     % c['load'])
    for key, label in (('train', 'ours'), ('reference', 'GluonCV reference')):
        if key in results:
            r = results[key]
            extra = ' (%.1f%% of the FP32 peak; per CPU-second %.1f%% of one core\'s)' % (
                100 * r['peak_fraction'], 100 * r['core_peak_fraction']) \
                if 'peak_fraction' in r else ''
            lines.append('train %-18s %9.2f img/s (median of %d; windows %s), %.2f img/cpu-s; '
                         '%.1f GFLOP/s, %.1f GFLOP per CPU-second%s'
                         % (label, r['img_per_sec'], len(r['windows']),
                            ' '.join('%.2f' % v for v in r['windows']), r['img_per_cpu_sec'],
                            r['achieved_gflops'], r['gflops_per_cpu_sec'], extra))
    if 'ratio' in results:
        lines.append('train ratio ours/reference: %.3f (median of paired windows %.3f, per '
                     'CPU-second %.3f)' % (results['ratio'], results['ratio_paired'],
                                          results['ratio_cpu']))
    if 'profile' in results:
        pr = results['profile']
        lines.append('profile of one step: %.0f ms wall, %.0f ms in %d operators'
                     % (pr['wall_ms'], pr['operator_ms'], pr['num_operators']))
        for op in pr['operators']:
            lines.append('  %-40s %6.1f calls %9.1f ms %5.1f%%'
                         % (op['name'], op['count'], op['total_ms'], 100 * op['share']))
    if 'data' in results:
        d = results['data']
        lines.append('data: %d JPEGs %dx%d (%.0f KB), batch %d, %d px, full augmentation'
                     % (d['images'], d['image_size'][0], d['image_size'][1],
                        d['bytes_per_image'] / 1e3, d['batch_size'], d['input_size']))
        for t, r in sorted(d['threads'].items(), key=lambda kv: int(kv[0])):
            lines.append('  %s thread(s) (%d decoding): ours %7.1f img/s (%.1f per thread), '
                         'ImageRecordIter %7.1f img/s (%.1f per thread), ratio %.3f (paired '
                         '%.3f, per CPU-second %.3f)'
                         % (t, r['effective_threads'], r['img_per_sec'],
                            r['img_per_sec_per_thread'], r['reference_img_per_sec'],
                            r['reference_img_per_sec_per_thread'], r['ratio'],
                            r['ratio_paired'], r['ratio_cpu']))
            lines.append('    ImageRecordIter built per epoch like ours: %7.1f img/s; ours / it '
                         '%.3f (paired %.3f, per CPU-second %.3f)'
                         % (r['fresh_img_per_sec'], r['ratio_fresh'], r['ratio_fresh_paired'],
                            r['ratio_fresh_cpu']))
            if 'in_process_img_per_sec' in r:
                lines.append('    ours decoding in the calling process (-j 0): %7.1f img/s '
                             '(%.1f img/cpu-s); workers / in-process %.3f (paired %.3f)'
                             % (r['in_process_img_per_sec'], r['in_process_img_per_cpu_sec'],
                                r['ratio_in_process'], r['ratio_in_process_paired']))
    if 'train_bf16' in results:
        r = results['train_bf16']
        lines.append('train ours bfloat16 (worker)  %9.2f img/s (windows %s), %.2f img/cpu-s; '
                     '%s' % (r['img_per_sec'], ' '.join('%.2f' % v for v in r['windows']),
                             r['img_per_cpu_sec'], r['process']['note']))
    if 'reference' in results and 'process' in results['reference']:
        lines.append('reference process: %s (%d OpenMP thread(s))'
                     % (results['reference']['process']['note'],
                        results['reference']['process']['omp_threads']))
    if 'ratio_bf16' in results:
        lines.append('train ratio ours bfloat16/reference: %.3f (paired %.3f, per CPU-second '
                     '%.3f)' % (results['ratio_bf16'], results['ratio_bf16_paired'],
                                results['ratio_bf16_cpu']))
    if 'exports' in results:
        r = results['exports']
        for key in r['variants']:
            v = r[key]
            lines.append('export %-14s %8.2f img/s (%.2f img/cpu-s) at batch %d, x%.2f float32 '
                         '(paired %.2f, per CPU-s %.2f); batch-1 latency %.2f ms (x%.2f)'
                         % (key, v['img_per_sec'], v['img_per_cpu_sec'], r['batch_size'],
                            v['throughput_ratio'], v['throughput_ratio_paired'],
                            v['throughput_ratio_cpu'], v['latency_ms'], v['latency_ratio']))
    if 'digits' in results:
        r = results['digits']
        lines.append('digits top-1 (%s, %d px, %d held-out): %s'
                     % (r['model'], r['input_size'], r['val_images'],
                        ', '.join('%s %.4f (drop %.2f points)' % (k, r['top1'][k],
                                                                  r['drop_points'][k])
                                  for k in r['top1'])))
    if 'inference' in results:
        r = results['inference']
        for key in r['variants']:
            v = r[key]
            extra = '' if key == 'in_memory' else \
                '\n    vs in-memory: throughput %.3f (paired %.3f, per CPU-second %.3f), ' \
                'latency %.3f (paired %.3f, CPU time %.3f)' % (
                    v['throughput_ratio'], v['throughput_ratio_paired'],
                    v['throughput_ratio_cpu'], v['latency_ratio'], v['latency_ratio_paired'],
                    v['latency_ratio_cpu'])
            lines.append('inference %-16s %8.2f img/s (%.2f img/cpu-s) at batch %d, batch-1 '
                         'latency %.2f ms (%.2f ms CPU)%s'
                         % (key, v['img_per_sec'], v['img_per_cpu_sec'], r['batch_size'],
                            v['latency_ms'], v['latency_cpu_ms'], extra))
    return '\n'.join(lines)


def run(args, command):
    """Run the parts of ``args.what`` (flags checked by the script's ``parse_args``); returns
    the results dict (``command``: the command line, recorded in ``results['config']``)."""
    try:
        init_amp(args.dtype)  # bfloat16: before any network is built
    except (RuntimeError, ImportError) as e:
        raise SystemExit('benchmark.py: error: --dtype %s: %s' % (args.dtype, e))
    try:
        devices = DistContext().devices(args.num_gpus)
    except ValueError as e:
        raise SystemExit('benchmark.py: error: --num-gpus: %s' % e)
    results = {'machine': dict(machine_info(), amx=enable_amx()[1]),
               'config': {'model': args.model, 'batch_size': args.batch_size,
                          'num_devices': len(devices), 'input_size': args.input_size,
                          'dtype': args.dtype, 'iterations': args.iterations,
                          'windows': args.windows, 'warmup': args.warmup,
                          'what': args.what, 'data_threads': args.data_threads,
                          'label_smoothing': args.label_smoothing,
                          'loss_scale': args.loss_scale, 'classes': args.classes,
                          'load': args.load, 'command': command}}
    tic = time.time()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='gluon_tricks_bench_')
    os.makedirs(work_dir, exist_ok=True)
    load = BusyLoad(args.load)
    if args.load:
        log('load: %d busy process(es) compete for the cores during every measurement'
            % args.load)
    try:
        load.__enter__()
        if set(args.what) & {'train', 'reference', 'train_bf16'}:
            bench_train(args, devices, results)
        if 'inference' in args.what:
            bench_inference(args, devices, work_dir, results)
        if 'data' in args.what:
            bench_data(args, work_dir, results)
        if 'exports' in args.what:
            results['exports'] = bench_exports(
                args.model, args.input_size, args.batch_size, args.iterations, args.windows,
                args.warmup, args.latency_calls, os.path.join(work_dir, 'exports'),
                classes=args.classes, log=log)
        if 'digits' in args.what:
            results['digits'] = digits_accuracy(work_dir, steps=args.digits_steps, log=log)
    finally:
        load.__exit__(None, None, None)
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    results['machine']['load_average_end'] = list(os.getloadavg())
    results['seconds'] = time.time() - tic
    return results
