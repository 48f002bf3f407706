#!/usr/bin/env bash
# Table 8: Faster-RCNN on Pascal VOC (VOC07+12 trainval, VOC07 test mAP) from each backbone
# (B-standard and Table 6's ResNet-50-D rows, trained first), GluonCV's VOC recipe.
#   VOC_DIR=~/data/voc DATA_DIR=~/data/imagenet/rec scripts/detection/table8.sh
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table8.md.
here="$(dirname "$0")"; py="${here}/../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/../classification/tables/run.py" table8 "$@"
