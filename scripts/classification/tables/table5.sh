#!/usr/bin/env bash
# Table 5: the ResNet-50 tweaks of section 4 (A = resnet50_v1, B, C, D) trained with the
# efficient setting of section 3 (batch 1024, FP16, warmup, zero gamma, no bias decay, step
# decay). The params and FLOPs (multiply-add) columns of the report come from the model
# summary (no training needed); ResNet-50 (A) is Table 3's efficient run.
#   scripts/classification/tables/table5.sh
# Variables: see common.sh. Report: $REPORT_DIR/table5.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table5

run_row r50-efficient  --model resnet50_v1  "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row r50b-efficient --model resnet50_v1b "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row r50c-efficient --model resnet50_v1c "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row r50d-efficient --model resnet50_v1d "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"

report table5
