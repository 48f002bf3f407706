#!/usr/bin/env bash
# Table 5: the ResNet-50 tweaks of section 4 (A, B, C, D) with the efficient setting; the size
# columns come from the model summary (no training).
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table5.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table5 "$@"
