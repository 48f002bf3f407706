#!/usr/bin/env bash
# Table 2: the baseline of section 2.1 for ResNet-50, Inception-V3 (299 px) and MobileNet:
# batch 256 (32 x 8 GPUs), FP32, NAG, lr 0.1 divided by 10 at epochs 30, 60, 90, 120 epochs.
#   scripts/classification/tables/table2.sh            # DATA_DIR, NUM_GPUS or NP, RUNS_DIR ...
#   DRY_RUN=1 scripts/classification/tables/table2.sh  # print the commands
# Variables: see common.sh. Report: $REPORT_DIR/table2.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table2

run_row r50-baseline       --model resnet50_v1  "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"
run_row inception-baseline --model inceptionv3  --input-size 299 "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"
run_row mobilenet-baseline --model mobilenet1.0 "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"

report table2
