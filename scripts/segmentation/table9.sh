#!/usr/bin/env bash
# Table 9: FCN (dilated stages 3 and 4, auxiliary loss) on ADE20K, pixAcc and mIoU on the
# validation set, with each backbone of the paper: B-standard (ResNet-50-B, baseline setting)
# and ResNet-50-D efficient, + cosine, + label smoothing, + distillation, + mixup, + both
# (Table 6's runs). The backbones are trained first when not finished; every FCN keeps
# GluonCV's ADE20K recipe (16 images per step, lr 0.01, poly decay, 120 epochs, base size 520,
# crop 480).
#   ADE_DIR=~/data/ade DATA_DIR=~/data/imagenet/rec scripts/segmentation/table9.sh
# Variables: see scripts/classification/tables/common.sh. Report: $REPORT_DIR/table9.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${HERE}/../classification/tables/common.sh"
start table9
ensure_proxy_transfer_data ade "${ADE_DIR}"

FCN=(--global-batch 16 --epochs 120 --base-size 520 --crop-size 480 --data-dir "${ADE_DIR}")
# proxy scale only: tiny images
PROXY_FCN=(--base-size 96 --crop-size 64 --warmup-epochs 0.2 -j 1 --log-interval 1000)
PROXY_FLAGS_VAR=PROXY_FCN

resnet50d_backbones
for entry in "${TRANSFER_BACKBONES[@]}"; do
  row="${entry%%:*}"; model="${entry#*:}"
  run_transfer "seg-${row}" "${HERE}/train_fcn.py" --backbone "${model}" \
    --backbone-params "$(params_of "${row}")" "${FCN[@]}"
done

report table9
