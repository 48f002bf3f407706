"""The paper's experiments as Python data, and the runner of the table scripts.

* :mod:`.rows`: every training run of Tables 2-9 and Figures 3-4 as an
  :class:`~.rows.Experiment` built from the baseline / efficient settings plus deltas;
* :mod:`.tables`: which rows each table and figure shows, with the paper's numbers;
* :mod:`.scale`: the CPU proxy as a function of an experiment;
* :mod:`.commands`: an experiment as a command line, and the state of its run directory;
* :mod:`.run`: the runner (``python -m tools.experiments.run TABLE``).

Repository tooling: ``gluon_tricks`` never imports it.
"""
from .rows import EXPERIMENTS, Experiment
from .tables import FIGURES, TABLES, Figure, Table, TableRow

__all__ = ['EXPERIMENTS', 'Experiment', 'TABLES', 'FIGURES', 'Table', 'TableRow', 'Figure']
