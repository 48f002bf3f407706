#!/usr/bin/env bash
# Table 4: the heuristics of section 3 added one by one to ResNet-50, at batch 256 (32 x 8)
# and batch 1024 (128 x 8). lr = 0.1 x batch / 256 in every row (linear scaling); the
# "Linear scaling" BS=256 row is the Table 2 baseline and the "+ FP16" BS=1024 row is the
# efficient setting of Table 3 (same runs).
#   scripts/classification/tables/table4.sh
# Variables: see common.sh. Report: $REPORT_DIR/table4.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table4

for bs in 256 1024; do
  if [[ "${bs}" == 256 ]]; then linear=r50-baseline; fp16=r50-bs256-fp16; else linear=r50-bs1024-linear; fp16=r50-efficient; fi
  B=(--model resnet50_v1 --global-batch "${bs}")
  run_row "${linear}"             "${B[@]}" --dtype float32 "${STEP[@]}" "${E120[@]}"
  run_row r50-bs${bs}-warmup      "${B[@]}" --dtype float32 --warmup-epochs 5 "${STEP[@]}" "${E120[@]}"
  run_row r50-bs${bs}-zerogamma   "${B[@]}" --dtype float32 --warmup-epochs 5 --last-gamma "${STEP[@]}" "${E120[@]}"
  run_row r50-bs${bs}-nobiasdecay "${B[@]}" --dtype float32 --warmup-epochs 5 --last-gamma --no-wd "${STEP[@]}" "${E120[@]}"
  run_row "${fp16}"               "${B[@]}" --dtype float16 --warmup-epochs 5 --last-gamma --no-wd "${STEP[@]}" "${E120[@]}"
done

report table4
