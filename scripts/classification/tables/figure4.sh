#!/usr/bin/env bash
# Figure 4: (a) the theoretical gap of eq. (5) (no training); (b) logit-gap histograms of
# ResNet-50-D without (Table 6 "+ cosine") and with label smoothing (Table 6 "+ label smoothing").
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: figure4*.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" figure4 "$@"
