"""MXNet's OpenMP threads, set right before MXNet starts.

MXNet 1.9.1 starts one OpenMP thread per two logical CPUs when ``OMP_NUM_THREADS`` is unset
(it assumes two hyper-threads per core): on a cloud VM with one thread per core that leaves
half the machine idle (1.7-1.8x slower training on 2 vCPUs, docs/performance.md). Every entry
point therefore calls :func:`configure_threads` before ``import mxnet``:

* ``OMP_NUM_THREADS`` set by the user wins;
* otherwise the usable physical cores (the CPU affinity of the process, counted per core, not
  per hyper-thread) divided among the local Horovod ranks of the host (``HOROVOD_LOCAL_SIZE``,
  or Open MPI's ``OMPI_COMM_WORLD_LOCAL_SIZE``).

The data worker processes (``-j``) are not subtracted: on CPUs the network needs all cores
and decoding takes a few percent of one (measured in docs/performance.md); on GPUs MXNet's
CPU threads are mostly idle.

The wait policy: libgomp's default lets a thread that reaches a barrier spin for about 300,000
iterations before it sleeps. On a machine shared with other processes the thread it waits for
is often descheduled, and the spinning thread takes the core it needs: two threads became 10x
slower than one under load (docs/performance.md). Unless ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is set by the user, :func:`configure_threads` caps the spin at
:data:`SPIN_COUNT` iterations (a few microseconds, about the length of a well-balanced barrier
on an idle machine) before a thread sleeps. This module does not import MXNet.
"""
import os
import sys

__all__ = ['physical_cores', 'local_ranks', 'choose_threads', 'choose_wait_policy',
           'configure_threads', 'data_workers', 'usable_cpus', 'SPIN_COUNT']

#: libgomp's spin iterations at a barrier before sleeping (its own default: 300,000).
SPIN_COUNT = 10000

_CHOICE = {}


def usable_cpus():
    """Logical CPUs this process may run on (its affinity; the CPU count where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def physical_cores(cpus=None, sysfs='/sys/devices/system/cpu'):
    """Distinct physical cores among the logical CPUs ``cpus`` (default: this process's
    affinity), from the sysfs topology; the CPU count where the topology is not readable."""
    if cpus is None:
        try:
            cpus = sorted(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        base = os.path.join(sysfs, 'cpu%d' % cpu, 'topology')
        try:
            with open(os.path.join(base, 'core_id')) as f:
                core = f.read().strip()
            with open(os.path.join(base, 'physical_package_id')) as f:
                package = f.read().strip()
        except OSError:
            return max(1, len(cpus))
        cores.add((package, core))
    return max(1, len(cores))


def local_ranks(environ=None):
    """Processes of this job on this host (Horovod or Open MPI launchers), 1 otherwise."""
    environ = os.environ if environ is None else environ
    for key in ('HOROVOD_LOCAL_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE', 'MPI_LOCALNRANKS'):
        value = environ.get(key, '')
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def choose_threads(environ=None, cores=None):
    """``(threads, reason)`` for ``OMP_NUM_THREADS``; see the module notes."""
    environ = os.environ if environ is None else environ
    user = environ.get('OMP_NUM_THREADS', '').strip()
    if user:
        return user, 'OMP_NUM_THREADS=%s set by you' % user
    cores = physical_cores() if cores is None else cores
    ranks = local_ranks(environ)
    threads = max(1, cores // ranks)
    reason = '%d physical core(s) usable' % cores
    if ranks > 1:
        reason += ', shared by %d ranks on this host' % ranks
    return str(threads), '%s threads: %s (MXNet alone would start one per 2 logical CPUs)' % (
        threads, reason)


def data_workers(requested=None, environ=None, cpus=None):
    """``(workers, reason)``: the data worker processes of one training process (``-j``).

    ``requested`` (the user's ``-j``) wins. Otherwise the logical CPUs this process may run on
    (its affinity) shared among the local ranks of the host, less one for the training
    process itself where a rank has more than two: 2 on a 2-CPU machine, 7 for each of 8 ranks
    on 64 CPUs. (GluonCV's default is 4 whatever the machine.)
    """
    if requested is not None:
        return int(requested), '-j %d set by you' % int(requested)
    environ = os.environ if environ is None else environ
    cpus = usable_cpus() if cpus is None else cpus
    ranks = local_ranks(environ)
    share = max(1, cpus // ranks)
    workers = share - 1 if share > 2 else share
    return workers, '%d data worker(s): %d CPU(s)%s%s (-j to choose)' % (
        workers, cpus, ' shared by %d ranks' % ranks if ranks > 1 else '',
        ', one left for the training process' if share > 2 else '')


def choose_wait_policy(environ=None):
    """``(variables to set, reason)`` for OpenMP's waiting at barriers; see the module notes."""
    environ = os.environ if environ is None else environ
    user = [k for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT') if environ.get(k, '').strip()]
    if user:
        return {}, 'waiting: %s set by you' % ', '.join(
            '%s=%s' % (k, environ[k].strip()) for k in user)
    return {'GOMP_SPINCOUNT': str(SPIN_COUNT)}, (
        'waiting: spin %d iterations, then sleep (GOMP_SPINCOUNT; keeps its speed when other '
        'processes share the cores)' % SPIN_COUNT)


def configure_threads():
    """Set ``OMP_NUM_THREADS`` and the wait policy (where the user has not) before MXNet is
    imported; returns the sentence to log. Calling it after ``import mxnet`` changes nothing,
    and says so."""
    if 'mxnet' in sys.modules and 'reason' not in _CHOICE:
        _CHOICE['reason'] = ('OpenMP threads left to MXNet (configure_threads ran after '
                             'import mxnet)')
    if 'reason' not in _CHOICE:
        threads, reason = choose_threads()
        os.environ['OMP_NUM_THREADS'] = threads
        wait, wait_reason = choose_wait_policy()
        os.environ.update(wait)
        _CHOICE['reason'] = 'OpenMP: %s; %s' % (reason, wait_reason)
    return _CHOICE['reason']
