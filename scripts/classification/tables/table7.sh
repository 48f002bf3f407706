#!/usr/bin/env bash
# Table 7: ResNet-50-D on MIT Places365 (PLACES_DIR: train.rec/val.rec of Places365-Standard),
# "Efficient" (section 3 setting) and "Best" (+ cosine decay, label smoothing and mixup,
# 200 epochs; no distillation). The test-set columns need the Places365 test server; the
# report gives our validation numbers beside the paper's.
#   PLACES_DIR=~/data/places365/rec scripts/classification/tables/table7.sh
# Variables: see common.sh. Report: $REPORT_DIR/table7.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table7

P=(--dataset places365 --model resnet50_v1d)
run_row places365-r50d-efficient "${P[@]}" "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row places365-r50d-best      "${P[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${E200[@]}"

report table7
