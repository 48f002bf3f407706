"""The gluon_tricks.data package as a whole: its modules import alone, without import
cycles, and never reach the repository's tools package."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.subprocess
def test_data_modules_import_alone_without_cycles_or_tools():
    """Every module of gluon_tricks.data imports on its own; the imports between them, function
    -local ones included, form no cycle; none of them reaches the repo's tools package."""
    import ast
    import glob
    pkg = os.path.join(REPO, 'gluon_tricks', 'data')
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(pkg, '*.py')))
    graph = {}
    for name in names:
        with open(os.path.join(pkg, name + '.py')) as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module] if node.module else [a.name for a in node.names])
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                    else [node.module or '']
                assert not any(m == 'tools' or m.startswith('tools.') for m in mods), name
        graph[name] = deps & set(names) - {'__init__'}
    state = {}

    def visit(n, path):
        assert state.get(n) != 'open', 'import cycle: %s' % ' -> '.join(path + [n])
        if state.get(n) is None:
            state[n] = 'open'
            for d in sorted(graph[n]):
                visit(d, path + [n])
            state[n] = 'done'
    for n in names:
        visit(n, [])
    for name in names + ['../loss', '../export', '../inference']:
        mod = 'gluon_tricks.' + name[3:] if name.startswith('../') else \
            'gluon_tricks.data' + ('' if name == '__init__' else '.' + name)
        code = ('import sys, %s; bad = [m for m in sys.modules if m == "tools" or '
                'm.startswith("tools.")]; assert not bad, bad' % mod)
        out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                             text=True)
        assert out.returncode == 0, (mod, out.stderr[-800:])
