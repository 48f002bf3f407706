"""One reader of the CPU's flags (gluon_tricks.cpu) and the decisions built on it.

Every test here sets the flags itself (a fake cpuinfo file, or GLUON_TRICKS_CPU_FLAGS through
monkeypatch), so none depends on the CPU the suite runs on.
"""
import os

import pytest

from gluon_tricks import amx, cpu, precision
from gluon_tricks import quantize as Q

AVX2 = 'avx2,fma,sse4_2'
AVX512_BF16 = 'avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,avx512_bf16,avx512_vnni'
CPUINFO = ('processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma avx512f\n\n'
           'processor\t: 1\nflags\t\t: fpu sse4_2 avx2 fma\n\n')


@pytest.fixture
def fake_cpuinfo(tmp_path, monkeypatch):
    """A two-processor cpuinfo file standing for /proc/cpuinfo (variable unset)."""
    path = tmp_path / 'cpuinfo'
    path.write_text(CPUINFO)
    monkeypatch.setattr(cpu, 'CPUINFO', str(path))
    monkeypatch.setattr(cpu, '_CPUINFO_FLAGS', {})
    monkeypatch.delenv(cpu.ENV_VAR, raising=False)
    return path


def test_cpuinfo_flags_are_those_of_every_processor_and_cached(fake_cpuinfo):
    assert cpu.cpu_flags() == {'fpu', 'sse4_2', 'avx2', 'fma'}      # avx512f: CPU 0 only
    assert cpu.flags_origin() == str(fake_cpuinfo)
    fake_cpuinfo.write_text('flags\t: sse2\n')
    assert cpu.cpu_flags() == {'fpu', 'sse4_2', 'avx2', 'fma'}      # the read is cached
    assert cpu.cpu_flags(refresh=True) == {'sse2'}
    assert cpu.cpuinfo_flags(str(fake_cpuinfo) + '.missing') == frozenset()


def test_variable_overrides_cpuinfo_and_is_read_at_each_call(fake_cpuinfo, monkeypatch):
    monkeypatch.setenv(cpu.ENV_VAR, 'avx512f, amx_bf16')
    assert cpu.cpu_flags() == {'avx512f', 'amx_bf16'}                # exactly those
    assert cpu.flags_origin() == 'GLUON_TRICKS_CPU_FLAGS'
    monkeypatch.setenv(cpu.ENV_VAR, AVX2)
    assert cpu.cpu_flags() == {'avx2', 'fma', 'sse4_2'}
    monkeypatch.setenv(cpu.ENV_VAR, '')
    assert cpu.cpu_flags() == frozenset()                            # empty: no flags
    monkeypatch.delenv(cpu.ENV_VAR)
    assert cpu.cpu_flags() == {'fpu', 'sse4_2', 'avx2', 'fma'}       # back to the file


def test_bad_variable_names_the_variable_and_the_fix(monkeypatch):
    monkeypatch.setenv(cpu.ENV_VAR, 'avx2 fma')
    with pytest.raises(cpu.CpuFlagsError) as err:
        cpu.cpu_flags()
    msg = str(err.value)
    assert "GLUON_TRICKS_CPU_FLAGS='avx2 fma'" in msg and 'separated by commas' in msg
    assert isinstance(err.value, ValueError)


def test_avx2_mask_makes_bfloat16_unsupported_naming_the_flag(monkeypatch):
    from conftest import bfloat16_skip_reason
    monkeypatch.setenv(cpu.ENV_VAR, AVX2)
    ok, reason = precision.bfloat16_cpu_support()
    assert not ok
    assert 'avx512_bf16' in reason and 'amx_bf16' in reason and 'avx512f' in reason
    assert 'GLUON_TRICKS_CPU_FLAGS' in reason
    assert 'avx512_bf16' in bfloat16_skip_reason()
    assert precision.cpu_flags is cpu.cpu_flags                     # one reader


def test_avx512_bf16_mask_makes_bfloat16_supported(monkeypatch):
    from conftest import bfloat16_skip_reason
    monkeypatch.setenv(cpu.ENV_VAR, AVX512_BF16)
    assert precision.bfloat16_cpu_support() == (True, 'avx512_bf16')
    assert bfloat16_skip_reason() is None


def test_int8_speed_follows_the_mask(monkeypatch):
    monkeypatch.setenv(cpu.ENV_VAR, AVX2)
    fast, why = Q.int8_cpu_support()
    assert not fast and 'avx512_vnni' in why and 'GLUON_TRICKS_CPU_FLAGS' in why
    monkeypatch.setenv(cpu.ENV_VAR, AVX512_BF16)
    assert Q.int8_cpu_support() == (True, 'avx512_vnni')


def test_amx_is_a_no_op_under_an_avx2_mask(monkeypatch):
    def forbidden(*args):
        raise AssertionError('no AMX flag: nothing may be asked of Linux or oneDNN')
    monkeypatch.setattr(amx, '_STATE', {})
    monkeypatch.setattr(amx, 'request_amx_permission', forbidden)
    monkeypatch.setattr(amx, '_touch_onednn', forbidden)
    monkeypatch.delenv('GLUON_TRICKS_AMX', raising=False)
    monkeypatch.setenv(cpu.ENV_VAR, AVX2)
    isa = os.environ.get('DNNL_MAX_CPU_ISA')
    assert amx.amx_flags() == []
    ok, why = amx.enable_amx()
    assert not ok and 'amx_bf16' in why and 'GLUON_TRICKS_CPU_FLAGS' in why
    assert os.environ.get('DNNL_MAX_CPU_ISA') == isa


def test_amx_flags_in_the_mask_are_acted_on(monkeypatch):
    """The other way round: AMX flags in the mask make enable_amx ask Linux (refused here)."""
    asked = []
    monkeypatch.setattr(amx, '_STATE', {})
    monkeypatch.setattr(amx, 'request_amx_permission',
                        lambda: asked.append(1) or (False, 'refused in this test'))
    monkeypatch.delenv('GLUON_TRICKS_AMX', raising=False)
    monkeypatch.setenv(cpu.ENV_VAR, 'avx512f,amx_bf16,amx_int8')
    assert amx.amx_flags() == ['amx_bf16', 'amx_int8']
    assert amx.enable_amx() == (False, 'no AMX: refused in this test') and asked == [1]


def test_golden_trace_machine_key_follows_the_mask(monkeypatch):
    from tools.golden import traces
    monkeypatch.setenv(cpu.ENV_VAR, AVX2 + ',avx512_bf16')
    assert traces.machine() == ['avx2', 'avx512_bf16', 'fma']
    with pytest.raises(SystemExit):
        traces.main(['record', '--out', '/nonexistent/never-written'])
