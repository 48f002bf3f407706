"""Timing: windows of interleaved loops, paired ratios, per-call latency.

Everything is measured in *windows*: a loop runs ``iterations`` batches (or one epoch of the
data), is synchronised, and the window's images per second are recorded. Loops that are
compared with each other run in the same process with their windows *interleaved* (A B, B A,
A B, ...) so that a change of load on a shared machine hits both alike; a figure is the median
over the windows, and a ratio is the ratio of the medians.
"""
import statistics
import time

__all__ = ['median', 'interleaved_windows', 'paired_ratio', 'latency_ms']


def median(values):
    """Median of a non-empty sequence of numbers (float)."""
    values = list(values)
    if not values:
        raise ValueError('median of no values')
    return float(statistics.median(values))


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
        for a loop that reports ``last_cpu_seconds``,
        :class:`~tools.benchmark.precision.RemoteLoop`).
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
