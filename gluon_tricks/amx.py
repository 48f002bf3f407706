"""Intel AMX for MXNet 1.9.1's oneDNN (bfloat16 and INT8 convolutions on AMX tiles).

MXNet 1.9.1 ships oneDNN 2.4.4, which has AMX kernels (``brgconv:avx512_core_amx_bf16``,
``..._amx``) but by default stops at ``avx512_core_bf16`` (AVX-512 ``vdpbf16ps``): on this
class of CPU (Sapphire/Emerald Rapids) that bfloat16 path was *slower* than float32 (0.8-0.9x,
ResNet-50-D inference), while the AMX path ran the bfloat16 convolutions about 4.5x faster
(oneDNN verbose: 1.81 s -> 0.38 s of convolution per batch of 16 at 224 px).

Two things are needed, and both must happen before oneDNN creates its first primitive:

1. Linux (>= 5.16) gives a process the AMX tile state only on request:
   ``arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)``. oneDNN 2.4 does not ask, so an
   AMX instruction kills the process with SIGILL. The permission is per process: kept across
   ``fork`` (DataLoader workers), *not* across ``exec``.
2. oneDNN must be allowed the ISA: ``DNNL_MAX_CPU_ISA=AVX512_CORE_AMX``, read once, at the
   first ISA query.

:func:`enable_amx` does both, forces oneDNN to read the variable (one tiny convolution), and
removes the variable again, so that a child process started with ``exec`` (which does not have
the permission) never sees it. It does nothing where the CPU has no ``amx_bf16``/``amx_int8``
(:func:`gluon_tricks.cpu.cpu_flags`, so also under ``GLUON_TRICKS_CPU_FLAGS`` without them),
where the kernel refuses, where ``GLUON_TRICKS_AMX=0``, or where the user set
``DNNL_MAX_CPU_ISA``/``ONEDNN_MAX_CPU_ISA`` (then only the permission is requested, so that
the user's choice cannot crash). This module imports MXNet only inside :func:`enable_amx`.
"""
import ctypes
import os

from .cpu import cpu_flags, flags_origin

__all__ = ['enable_amx', 'request_amx_permission', 'amx_flags']

_SYS_ARCH_PRCTL = 158            # x86_64
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_ISA_VARS = ('DNNL_MAX_CPU_ISA', 'ONEDNN_MAX_CPU_ISA')
_STATE = {}


def amx_flags(flags=None):
    """The AMX flags (``amx_bf16``, ``amx_int8``) among ``flags``, default the CPU's
    (:func:`gluon_tricks.cpu.cpu_flags`: ``/proc/cpuinfo`` or ``GLUON_TRICKS_CPU_FLAGS``)."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    return [f for f in ('amx_bf16', 'amx_int8') if f in flags]


def request_amx_permission():
    """``(ok, reason)``: ask Linux for the AMX tile state of this process."""
    if os.uname().machine != 'x86_64':
        return False, 'not x86_64'
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)
    except (OSError, AttributeError) as err:
        return False, 'arch_prctl unavailable: %s' % err
    if rc != 0:
        return False, ('arch_prctl(ARCH_REQ_XCOMP_PERM) refused (errno %d): Linux >= 5.16 '
                       'is needed for AMX' % ctypes.get_errno())
    return True, 'granted'


def enable_amx():
    """Let oneDNN use AMX in this process (see the module notes); idempotent.

    Returns
    -------
    (bool, str)
        Whether AMX is enabled, and why (or why not), for the log.
    """
    if 'result' in _STATE:
        return _STATE['result']
    flags = amx_flags()
    if os.environ.get('GLUON_TRICKS_AMX', '1').strip() in ('0', 'false', 'False', 'no'):
        result = (False, 'AMX off: GLUON_TRICKS_AMX=0')
    elif not flags:
        result = (False, 'no AMX: this CPU has neither amx_bf16 nor amx_int8 (in %s)'
                  % flags_origin())
    else:
        ok, why = request_amx_permission()
        user = [v for v in _ISA_VARS if os.environ.get(v)]
        if not ok:
            result = (False, 'no AMX: ' + why)
        elif user:
            result = (True, 'AMX permission granted; oneDNN ISA left to %s=%s'
                      % (user[0], os.environ[user[0]]))
        else:
            os.environ['DNNL_MAX_CPU_ISA'] = 'AVX512_CORE_AMX'
            try:
                _touch_onednn()
            finally:
                del os.environ['DNNL_MAX_CPU_ISA']
            result = (True, 'AMX on (%s): oneDNN may use AVX512_CORE_AMX'
                      % ', '.join(flags))
    _STATE['result'] = result
    return result


def _touch_onednn():
    """Create one oneDNN primitive so that oneDNN reads its ISA limit now."""
    import mxnet as mx
    x = mx.nd.ones((1, 1, 4, 4))
    w = mx.nd.ones((1, 1, 3, 3))
    mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=1, no_bias=True).wait_to_read()
