#!/usr/bin/env bash
# Table 6: the refinements of section 5 stacked on the efficient setting for ResNet-50-D,
# Inception-V3 and MobileNet (cosine, label smoothing, distillation from a ResNet-152-D
# teacher, mixup with 200 epochs); the two teachers are trained first.
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table6.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table6 "$@"
