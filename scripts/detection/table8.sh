#!/usr/bin/env bash
# Table 8: Faster-RCNN on Pascal VOC (train VOC 2007+2012 trainval, test VOC 2007 test, VOC07
# mAP) with each backbone of the paper: B-standard (ResNet-50-B, baseline setting) and
# ResNet-50-D efficient, + cosine, + label smoothing, + distillation, + mixup, + both
# (Table 6's runs). The backbones are trained first when not finished; every detector keeps
# GluonCV's VOC recipe (1 image per GPU x 8, lr 0.001 per image, 20 epochs, decay at 14 and
# 20, short side 600 / max 1000) plus Detectron's linear warmup (500 iterations).
#   VOC_DIR=~/data/voc DATA_DIR=~/data/imagenet/rec scripts/detection/table8.sh
# Variables: see scripts/classification/tables/common.sh. Report: $REPORT_DIR/table8.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${HERE}/../classification/tables/common.sh"
start table8
ensure_proxy_transfer_data voc "${VOC_DIR}"

FRCNN=(--global-batch 8 --epochs 20 --lr-decay-epoch 14,20 --lr-warmup 500
       --short 600 --max-size 1000 --train-splits 2007_trainval,2012_trainval --val-splits 2007_test
       --data-dir "${VOC_DIR}")
# proxy scale only: tiny images (and so fewer anchors/proposals), VOC07 split only
PROXY_FRCNN=(--short 96 --max-size 128 --train-splits 2007_trainval --rpn-train-post-nms 300
             --rpn-test-post-nms 100 --rcnn-num-samples 32 --lr-warmup 2 -j 1 --log-interval 1000)
PROXY_FLAGS_VAR=PROXY_FRCNN

resnet50d_backbones
for entry in "${TRANSFER_BACKBONES[@]}"; do
  row="${entry%%:*}"; model="${entry#*:}"
  run_transfer "det-${row}" "${HERE}/train_faster_rcnn.py" --backbone "${model}" \
    --backbone-params "$(params_of "${row}")" "${FRCNN[@]}"
done

report table8
