"""The report of the paper's tables and figures from run directories (repository tooling;
``gluon_tricks`` never imports it).

* :mod:`.runs`: a run directory (``metrics.jsonl``, ``config.json`` looked up by field name,
  ``results.json``);
* :mod:`.tables`: a table as Markdown beside the paper's numbers (rows, runs and numbers from
  :mod:`tools.experiments`), mean and spread over the seeds of a row;
* :mod:`.figures`: Figures 3 and 4;
* :mod:`.write`: the whole report folder (``scripts/report.py`` is its command line).
"""
from .runs import RunInfo, read_run
from .tables import render_table, run_scale
from .write import ORDER, write_report

__all__ = ['RunInfo', 'read_run', 'render_table', 'run_scale', 'ORDER', 'write_report']
