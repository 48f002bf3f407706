"""What the figures depend on: CPU model, cores, clock, vector width, FP32 peak, OpenMP
threads, load and versions."""
import os
import platform

import mxnet as mx

__all__ = ['machine_info', 'cpu_peak_gflops', 'mxnet_omp_threads', 'BusyLoad']


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
        from gluon_tricks.threads import usable_cpus
        cores = usable_cpus()
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
    from gluon_tricks.cpu import cpu_flags
    flags = sorted(cpu_flags())
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


class BusyLoad(object):
    """``n`` competing processes, each a Python busy loop on one core, for the duration of a
    ``with`` block: a machine shared with other jobs (a CI box, other ranks, a browser).
    They are started before and killed after everything measured inside the block."""

    def __init__(self, n):
        self.n = max(0, int(n))
        self.procs = []

    def __enter__(self):
        import subprocess
        import sys
        for _ in range(self.n):
            self.procs.append(subprocess.Popen(
                [sys.executable, '-c', 'while True:\n    pass'],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []
        return False
