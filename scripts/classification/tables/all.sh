#!/usr/bin/env bash
# Every table and figure of the paper in one go: Tables 2-7 and Figures 3-4 (classification),
# then Tables 8 and 9 (Faster-RCNN, FCN) from the Table 6 backbones, then the whole report.
# Each row is trained once even when several tables show it, and finished rows are skipped,
# so this can be stopped and started again.
#   scripts/classification/tables/all.sh                       # the paper's settings
#   SCALE=proxy scripts/classification/tables/all.sh           # the CPU proxy (about an hour)
#   DRY_RUN=1 scripts/classification/tables/all.sh             # print every command
#   SKIP_TRANSFER=1 ...                                        # classification only
# Variables: see common.sh. Report: $REPORT_DIR/README.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "${HERE}/common.sh"
start all

for s in table2 table3 table4 table5 table6 table7 figure3 figure4; do
  REPORT=0 bash "${HERE}/${s}.sh"
done
if [[ "${SKIP_TRANSFER:-0}" != 1 ]]; then
  for s in "${REPO}/scripts/detection/table8.sh" "${REPO}/scripts/segmentation/table9.sh"; do
    REPORT=0 bash "${s}"
  done
fi
if [[ "${REPORT}" == 1 ]]; then
  cmd=("${PYTHON}" "${REPO}/scripts/report.py" --runs "${RUNS_DIR}" --out "${REPORT_DIR}")
  if [[ "${DRY_RUN}" == 1 ]]; then echo "# report"; _print_cmd "${cmd[@]}"; else "${cmd[@]}"; fi
fi
