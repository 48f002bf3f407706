#!/usr/bin/env bash
# Figure 4: (a) the theoretical gap log((K-1)(1-eps)/eps) of eq. (5) against eps, K = 1000
# (about 9.1 at eps 0.1; no training); (b) histogram over the validation set of the gap
# between the top logit and the mean of the others, for ResNet-50-D without label smoothing
# (Table 6 "+ cosine") and with it (Table 6 "+ label smoothing").
#   scripts/classification/tables/figure4.sh
# Variables: see common.sh. Report: $REPORT_DIR/figure4a.png, figure4b.png.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start figure4

run_row r50d-cosine --model resnet50_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${E120[@]}"
run_row r50d-smooth --model resnet50_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${E120[@]}"

report figure4
