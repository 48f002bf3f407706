#!/usr/bin/env python3
"""Train the rows of a paper table or figure and write its report (see tools/experiments/run.py).

    scripts/classification/tables/run.py table6 [--dry-run] [--scale proxy] [--rows 'r50d-*']
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..'))
from tools.experiments.run import main  # noqa: E402

if __name__ == '__main__':
    try:
        sys.exit(main())
    except BrokenPipeError:     # DRY_RUN=1 ... | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
