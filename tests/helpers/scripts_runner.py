"""Running the project's scripts from the tests: as a user does (a subprocess), or imported
as a module."""
import importlib.util
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(REPO, 'scripts', 'classification')
#: one OpenMP thread (tests run side by side on small machines), the checkout importable
ENV = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)


def run_script(name, *args, check=True, env=None, umask=None, timeout=600):
    """Run ``scripts/classification/<name>`` (or a path) with ``args``; assert it succeeded
    unless ``check`` is false; return the ``CompletedProcess`` (text output)."""
    path = name if os.path.isabs(name) else os.path.join(SCRIPTS, name)
    proc = subprocess.run([sys.executable, path] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=env or ENV,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def load_script(*parts):
    """Import a script of the repository as a module, e.g. ``load_script('classification',
    'train_imagenet')`` for ``scripts/classification/train_imagenet.py``."""
    path = os.path.join(REPO, 'scripts', *parts) + '.py'
    spec = importlib.util.spec_from_file_location(parts[-1], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
