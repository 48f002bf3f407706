#!/usr/bin/env bash
# Table 6: the refinements of section 5 stacked one by one on the efficient setting, for
# ResNet-50-D, Inception-V3 (299 px) and MobileNet:
#   efficient -> + cosine decay -> + label smoothing (eps 0.1)
#   -> + distillation (T 20, teacher ResNet-152-D trained with cosine + label smoothing)
#   -> + mixup (alpha 0.2, 200 epochs) without distillation
#   -> + distillation with mixup (the teacher trained with mixup too, 200 epochs).
# The two teachers are trained first (efficient setting + the same refinements).
# The efficient rows are Table 3's/5's runs.
#   scripts/classification/tables/table6.sh
# Variables: see common.sh. Report: $REPORT_DIR/table6.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start table6

run_row teacher-r152d-cos-ls       --model resnet152_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${E120[@]}"
run_row teacher-r152d-cos-ls-mixup --model resnet152_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${E200[@]}"

for net in r50d inception mobilenet; do
  case "${net}" in
    r50d) M=(--model resnet50_v1d) ;;
    inception) M=(--model inceptionv3 --input-size 299) ;;
    mobilenet) M=(--model mobilenet1.0) ;;
  esac
  distill teacher-r152d-cos-ls;       D=("${DISTILL[@]}")
  distill teacher-r152d-cos-ls-mixup; DM=("${DISTILL[@]}")
  run_row ${net}-efficient      "${M[@]}" "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
  run_row ${net}-cosine         "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${E120[@]}"
  run_row ${net}-smooth         "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${E120[@]}"
  run_row ${net}-distill        "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${D[@]}" "${E120[@]}"
  run_row ${net}-mixup          "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${E200[@]}"
  run_row ${net}-distill-mixup  "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${DM[@]}" "${E200[@]}"
done

report table6
