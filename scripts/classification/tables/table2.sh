#!/usr/bin/env bash
# Table 2: the baseline of section 2.1 for ResNet-50, Inception-V3 (299 px) and MobileNet:
# batch 256 (32 x 8 GPUs), FP32, NAG, lr 0.1 divided by 10 at epochs 30, 60, 90, 120 epochs.
#   scripts/classification/tables/table2.sh            # DATA_DIR, NUM_GPUS or NP, RUNS_DIR ...
#   DRY_RUN=1 scripts/classification/tables/table2.sh  # print the commands
#   SCALE=proxy ROWS='r50-*' scripts/classification/tables/table2.sh
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table2.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table2 "$@"
