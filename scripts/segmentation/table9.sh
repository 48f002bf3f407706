#!/usr/bin/env bash
# Table 9: FCN (dilated, auxiliary loss) on ADE20K, pixAcc and mIoU, from each backbone
# (B-standard and Table 6's ResNet-50-D rows, trained first), GluonCV's ADE20K recipe.
#   ADE_DIR=~/data/ade DATA_DIR=~/data/imagenet/rec scripts/segmentation/table9.sh
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table9.md.
here="$(dirname "$0")"; py="${here}/../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/../classification/tables/run.py" table9 "$@"
