#!/usr/bin/env bash
# Table 7: ResNet-50-D on MIT Places365 (PLACES_DIR: train.rec/val.rec), efficient and best
# (+ cosine, label smoothing, mixup, 200 epochs).
#   PLACES_DIR=~/data/places365/rec scripts/classification/tables/table7.sh
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table7.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table7 "$@"
