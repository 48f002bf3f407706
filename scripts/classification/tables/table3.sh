#!/usr/bin/env bash
# Table 3: time per epoch and accuracy, baseline (batch 256, FP32; Table 2's runs) vs the
# efficient setting of section 3 (batch 1024, FP16, lr 0.4, 5 warmup epochs, zero gamma, no
# bias decay) for ResNet-50, Inception-V3 and MobileNet.
# Rows: tools/experiments/tables.py; variables: tools/experiments/run.py. Report: table3.md.
here="$(dirname "$0")"; py="${here}/../../../.venv/bin/python"; [[ -x "${py}" ]] || py=python3
exec "${py}" "${here}/run.py" table3 "$@"
