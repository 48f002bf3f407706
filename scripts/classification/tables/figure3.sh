#!/usr/bin/env bash
# Figure 3: (a) step vs cosine schedules with warmup (no training); (b) validation top-1 per
# epoch of ResNet-50-D efficient with step and with cosine decay (Table 6's first two rows).
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: figure3*.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" figure3 "$@"
