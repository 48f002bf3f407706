#!/usr/bin/env bash
# Every table and figure of the paper: Tables 2-7 and Figures 3-4, Tables 8 and 9 from the
# Table 6 backbones (SKIP_TRANSFER=1: not those), then the whole report. Each row is trained
# once; finished rows are skipped, so this can be stopped and started again.
#   scripts/classification/tables/all.sh                       # the paper's settings
#   SCALE=proxy scripts/classification/tables/all.sh           # the CPU proxy
#   DRY_RUN=1 scripts/classification/tables/all.sh             # print every command
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" all "$@"
