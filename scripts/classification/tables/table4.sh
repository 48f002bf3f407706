#!/usr/bin/env bash
# Table 4: the heuristics of section 3 added one by one to ResNet-50 at batch 256 and 1024
# (linear scaling, + warmup, + zero gamma, + no bias decay, + FP16).
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table4.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table4 "$@"
