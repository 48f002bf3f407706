#!/usr/bin/env bash
# Table 3: time per epoch and accuracy, baseline (batch 256, FP32) vs the efficient setting of
# section 3 (batch 1024 = 128 x 8, FP16, lr 0.4 by linear scaling, 5 warmup epochs, zero
# gamma, no bias decay), for ResNet-50, Inception-V3 and MobileNet. The baseline rows are
# Table 2's runs (trained once). Time per epoch comes from the measured throughput.
#   scripts/classification/tables/table3.sh
# Variables: see common.sh. Report: $REPORT_DIR/table3.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table3

run_row r50-efficient       --model resnet50_v1  "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row inception-efficient --model inceptionv3  --input-size 299 "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row mobilenet-efficient --model mobilenet1.0 "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
run_row r50-baseline        --model resnet50_v1  "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"
run_row inception-baseline  --model inceptionv3  --input-size 299 "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"
run_row mobilenet-baseline  --model mobilenet1.0 "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"

report table3
