"""Golden traces: table rows at a tiny scale must train exactly as recorded.

``tests/golden/*.json`` were recorded by ``python -m tools.golden.traces record``: per
optimizer update the learning rate, the summed loss and a digest of the parameters. Here a
few rows (the richest classification row, with and without Horovod, and the two transfer
tasks) are run again through today's table runner and training scripts. On a CPU with the
recording machine's vector features the trace must be identical bit for bit; elsewhere the
learning rates and step structure exactly and the losses within 1 %.
The full check of every row: ``python -m tools.golden.traces check``.
"""
import os

import pytest

from tools.golden import traces

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(REPO, 'tests', 'golden')


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    return str(tmp_path_factory.mktemp('golden'))


@pytest.mark.subprocess
@pytest.mark.parametrize('row,ranks', [('r50d-distill-mixup', 1), ('seg-r50d-efficient', 1)])
def test_row_reproduces_golden_trace(work, row, ranks):
    planned = traces.plan(REPO, work, row)
    entry = next(t for t in planned.values() if t['ranks'] == ranks)
    got = traces.trace_row(entry['argv'], entry['key'], work, REPO, ranks)
    golden = traces.golden_for(GOLDEN, row, ranks)
    problem = traces._compare(golden['trace'], got,
                              exact=golden.get('machine') == traces.machine())
    assert problem == '', '%s: %s' % (row, problem)


def test_compare_catches_a_changed_step():
    """The comparison is not vacuous: one changed lr, loss or digest is reported."""
    step = {'update': 1, 'lr': '0.1', 'loss': '2.5', 'heads': 1, 'params': 'abc'}
    golden = {'rank0': [step]}
    assert traces._compare(golden, {'rank0': [dict(step)]}) == ''
    assert 'DIFFERS' in traces._compare(golden, {'rank0': [dict(step, params='abd')]})
    assert 'DIFFERS' in traces._compare(golden, {'rank0': [dict(step, lr='0.2')]}, exact=False)
    assert 'DIFFERS' in traces._compare(golden, {'rank0': [dict(step, loss='2.6')]},
                                        exact=False)
    assert traces._compare(golden, {'rank0': [dict(step, loss='2.5001', params='x')]},
                           exact=False) == ''
    assert 'length' in traces._compare(golden, {'rank0': [step, step]})
