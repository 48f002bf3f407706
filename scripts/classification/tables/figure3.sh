#!/usr/bin/env bash
# Figure 3: (a) step vs cosine learning-rate schedules with 5 warmup epochs at batch 1024
# (drawn from gluon_tricks.lr_scheduler, no training); (b) validation top-1 per epoch of
# ResNet-50-D efficient with step decay vs with cosine decay (Table 6's first two rows).
#   scripts/classification/tables/figure3.sh
# Variables: see common.sh. Report: $REPORT_DIR/figure3a.png, figure3b.png.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start figure3

run_row r50d-efficient --model resnet50_v1d "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row r50d-cosine    --model resnet50_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${E120[@]}"

report figure3
