"""The CPU's feature flags, read in one place for the whole library.

Every capability check (bfloat16 in :mod:`gluon_tricks.precision` and
:mod:`gluon_tricks.quantize`, INT8 speed in :mod:`gluon_tricks.quantize`, AMX in
:mod:`gluon_tricks.amx`) and the golden traces' machine key (``tools.golden.traces``) ask
:func:`cpu_flags`. It returns the flags Linux reports in ``/proc/cpuinfo``, unless the
environment variable ``GLUON_TRICKS_CPU_FLAGS`` is set: then exactly the comma-separated flags
it lists (``GLUON_TRICKS_CPU_FLAGS=avx2,fma,sse4_2`` makes the library treat the CPU as an
AVX2-only one; an empty value means no flags at all). The variable is read at every call, so
a test may set it with ``monkeypatch.setenv``; only the ``/proc/cpuinfo`` read is cached.

The variable changes what this library *decides*; it does not change which kernels MXNet's
oneDNN runs. To mask the CPU for oneDNN too, also set ``DNNL_MAX_CPU_ISA`` (e.g. ``AVX2``)
before the process starts: oneDNN reads it once, at its first primitive.
"""
import os
import re

from .errors import UserError

__all__ = ['ENV_VAR', 'cpu_flags', 'cpuinfo_flags', 'flags_origin', 'bfloat16_cpu_support',
           'BF16_CPU_FLAGS', 'AVX512_CORE_FLAGS', 'CpuFlagsError']

#: The environment variable that replaces ``/proc/cpuinfo``'s flags (comma-separated).
ENV_VAR = 'GLUON_TRICKS_CPU_FLAGS'
#: Where Linux lists the CPU's flags.
CPUINFO = '/proc/cpuinfo'
#: Flags of native bfloat16 instructions; either one suffices.
BF16_CPU_FLAGS = ('avx512_bf16', 'amx_bf16')
#: The flags of oneDNN's ``avx512_core`` ISA, the least its bfloat16 kernels need (emulated).
AVX512_CORE_FLAGS = ('avx512f', 'avx512bw', 'avx512vl', 'avx512dq')
_FLAG_NAME = re.compile(r'^[a-z0-9_]+$')
_CPUINFO_FLAGS = {}     # path -> frozenset, the one cached read


class CpuFlagsError(UserError, ValueError):
    """``GLUON_TRICKS_CPU_FLAGS`` is not a comma-separated list of flag names."""


def cpuinfo_flags(path=None, refresh=False):
    """The flags common to every processor in ``path`` (default :data:`CPUINFO`,
    ``/proc/cpuinfo``), read once per path and cached (``refresh`` reads again).

    An empty frozenset where the file cannot be read or has no ``flags`` lines (non-Linux,
    non-x86); ``GLUON_TRICKS_CPU_FLAGS`` plays no part here.
    """
    path = path or CPUINFO
    if path in _CPUINFO_FLAGS and not refresh:
        return _CPUINFO_FLAGS[path]
    common = None
    try:
        with open(path) as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    common = flags if common is None else common & flags
    except OSError:
        pass
    _CPUINFO_FLAGS[path] = frozenset(common or ())
    return _CPUINFO_FLAGS[path]


def _env_flags(value):
    flags = [f.strip().lower() for f in value.split(',')]
    bad = [f for f in flags if f and not _FLAG_NAME.match(f)]
    if bad:
        raise CpuFlagsError(
            '%s=%r: %r is not a CPU flag name (letters, digits and _ as in %s). List the '
            'flags separated by commas, e.g. %s=avx2,fma,sse4_2, set it empty for no flags, '
            'or unset it to use %s' % (ENV_VAR, value, bad[0], CPUINFO, ENV_VAR, CPUINFO))
    return frozenset(f for f in flags if f)


def cpu_flags(refresh=False):
    """The CPU feature flags the library goes by: a frozenset of names such as ``'avx2'``,
    ``'avx512_bf16'``.

    ``GLUON_TRICKS_CPU_FLAGS`` (read at each call) if set, else :func:`cpuinfo_flags`
    (``refresh`` re-reads ``/proc/cpuinfo``). A value that is not a comma-separated list of
    flag names raises :class:`CpuFlagsError` (a ``ValueError``) naming the variable, the
    value and the fix.
    """
    value = os.environ.get(ENV_VAR)
    if value is not None:
        return _env_flags(value)
    return cpuinfo_flags(refresh=refresh)


def flags_origin():
    """Where :func:`cpu_flags` takes the flags from, for messages:
    ``'GLUON_TRICKS_CPU_FLAGS'`` or the cpuinfo file (``'/proc/cpuinfo'``)."""
    return ENV_VAR if os.environ.get(ENV_VAR) is not None else CPUINFO


def bfloat16_cpu_support(flags=None):
    """Whether the CPU has native bfloat16 instructions: ``avx512_bf16`` or ``amx_bf16``.

    This is the condition under which bfloat16 training is worth running (and tested): with
    either flag oneDNN runs convolution and inner product with bfloat16 instructions
    (:func:`gluon_tricks.precision.bfloat16_supported` then passes); an AVX-512 CPU without
    them only emulates bfloat16, and a CPU without AVX-512 has no bfloat16 kernels at all in
    MXNet 1.9.1.

    Parameters
    ----------
    flags : iterable of str, optional
        CPU flags to judge; default :func:`cpu_flags`.

    Returns
    -------
    (bool, str)
        ``(True, 'avx512_bf16')`` (the flag(s) found) or ``(False, reason)``, the reason
        naming the missing flag(s) and where the flags came from, e.g. ``'this CPU has
        neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo (nor avx512f, avx512bw, avx512vl,
        avx512dq: no AVX-512)'``.
    """
    where = flags_origin() if flags is None else 'the flags given'
    flags = cpu_flags() if flags is None else frozenset(flags)
    if not flags:
        return False, ('no CPU flags in %s, so neither %s nor %s can be confirmed'
                       % (where, BF16_CPU_FLAGS[0], BF16_CPU_FLAGS[1]))
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    if found:
        return True, ', '.join(found)
    missing_core = [f for f in AVX512_CORE_FLAGS if f not in flags]
    return False, ('this CPU has neither %s nor %s in %s%s'
                   % (BF16_CPU_FLAGS[0], BF16_CPU_FLAGS[1], where,
                      ' (nor %s: no AVX-512)' % ', '.join(missing_core) if missing_core else
                      ' (it has AVX-512, on which oneDNN only emulates bfloat16)'))
