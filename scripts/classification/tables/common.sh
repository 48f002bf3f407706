# Shared by the table and figure scripts of this folder (sourced, not run).
#
# Every row of a paper table is one call `run_row NAME FLAGS...`: NAME is the run directory
# under RUNS_DIR, FLAGS are train_imagenet.py flags with the paper's settings plus two
# pseudo-flags that run_row turns into real ones:
#   --global-batch G   the paper's total batch (256 or 1024): --batch-size G / devices and
#                      --lr 0.1 x G / 256 (linear scaling, section 3.1)
#   --dataset D        imagenet (DATA_DIR) or places365 (PLACES_DIR)
# A row that appears in several tables (e.g. the ResNet-50 baseline in Tables 2, 3 and 4) has
# the same NAME and flags everywhere, so it is trained once and reused.
#
# Environment (all optional):
#   SCALE        full (default; the paper's settings) or proxy (digits data on CPU, see below)
#   RUNS_DIR     where runs go (default: <repo>/runs/$SCALE); one directory per row
#   DATA_DIR     ImageNet RecordIO folder: train.rec/.idx, val.rec/.idx
#                (default ~/.mxnet/datasets/imagenet/rec)
#   PLACES_DIR   Places365 RecordIO folder for Table 7 (default ~/.mxnet/datasets/places365/rec)
#   VOC_DIR      Pascal VOC root with VOC2007/ and VOC2012/ for Table 8 (scripts/detection/
#                prepare_voc.py; default ~/.mxnet/datasets/voc)
#   ADE_DIR      folder holding ADEChallengeData2016/ for Table 9 (scripts/segmentation/
#                prepare_ade20k.py; default ~/.mxnet/datasets/ade)
#   NUM_GPUS     GPUs of the one training process when NP <= 1 (default 8; 0 = CPU)
#   NP           > 1: launch NP ranks with horovodrun (one GPU each) instead
#   HOSTS        horovodrun -H (default localhost:$NP); HOSTFILE: horovodrun -hostfile
#   HOROVODRUN   launcher (default: horovodrun next to PYTHON, else on PATH)
#   HOROVODRUN_ARGS  extra launcher flags, e.g. "--gloo"
#   PYTHON       interpreter (default: <repo>/.venv/bin/python if present, else python)
#   EXTRA_ARGS   appended to every training command, e.g. "-j 32 --log-interval 100"
#   ROWS         comma-separated row names or globs to run (default: all rows of the script)
#   DRY_RUN=1    print the commands, run nothing
#   REPORT=0     do not run scripts/report.py at the end of a table script
#   REPORT_DIR   where the report goes (default: $RUNS_DIR/report)
#
# A row whose metrics.jsonl ends with its last epoch is skipped on re-run; an unfinished row
# with a checkpoint continues with --resume (an unfinished one without a checkpoint starts
# again, its old metrics kept as metrics.jsonl.stale-<time>).
#
# SCALE=proxy runs the same rows on scikit-learn's digits (made on first use in PROXY_DATA)
# on CPU, with these substitutions and nothing else changed:
#   models       resnet50_v1{,b,c,d} -> resnet18_v1{,b,c,d}; teacher resnet152_v1d ->
#                resnet34_v1d; inceptionv3 and mobilenet1.0 kept
#   input        32 pixels (75 for inceptionv3, its smallest size); random crops of at least
#                PROXY_AREA_MIN (0.5) of the image and no flip (digits are not symmetric)
#   batch        the paper's global batch / PROXY_BATCH_DIV (8): 32 and 128 on one CPU
#                device, lr by the same linear scaling rule (base PROXY_BASE_LR, 0.1)
#   epochs       every epoch count x PROXY_EPOCHS / 120: 120 -> PROXY_EPOCHS (2),
#                200 -> 3; warmup 5 and step epochs 30,60,90 scaled the same way
#   float16      float32 (MXNet 1.9.1 has no float16 GEMM on CPU)
#   Tables 8/9   tiny VOC/ADE20K look-alikes of digits on a canvas (make_proxy_transfer_data.py,
#                PROXY_TRANSFER_TRAIN/TEST images), 96-pixel images, PROXY_TRANSFER_EPOCHS (1)

TABLES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "${TABLES_DIR}/../../.." && pwd)"
TRAIN_PY="${REPO}/scripts/classification/train_imagenet.py"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "${REPO}/.venv/bin/python" ]]; then PYTHON="${REPO}/.venv/bin/python"; else PYTHON=python; fi
fi
SCALE="${SCALE:-full}"
case "${SCALE}" in full|proxy) ;; *) echo "SCALE must be full or proxy, got '${SCALE}'" >&2; exit 2 ;; esac
RUNS_DIR="${RUNS_DIR:-${REPO}/runs/${SCALE}}"
DATA_DIR="${DATA_DIR:-${HOME}/.mxnet/datasets/imagenet/rec}"
PLACES_DIR="${PLACES_DIR:-${HOME}/.mxnet/datasets/places365/rec}"
VOC_DIR="${VOC_DIR:-${HOME}/.mxnet/datasets/voc}"
ADE_DIR="${ADE_DIR:-${HOME}/.mxnet/datasets/ade}"
NP="${NP:-1}"
HOSTS="${HOSTS:-localhost:${NP}}"
HOSTFILE="${HOSTFILE:-}"
if [[ -z "${HOROVODRUN:-}" ]]; then
  if [[ -x "$(dirname "${PYTHON}")/horovodrun" ]]; then HOROVODRUN="$(dirname "${PYTHON}")/horovodrun"; else HOROVODRUN=horovodrun; fi
fi
HOROVODRUN_ARGS="${HOROVODRUN_ARGS:-}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
ROWS="${ROWS:-}"
DRY_RUN="${DRY_RUN:-0}"
REPORT="${REPORT:-1}"
REPORT_DIR="${REPORT_DIR:-${RUNS_DIR}/report}"
if [[ "${SCALE}" == proxy ]]; then
  NUM_GPUS="${NUM_GPUS:-0}"
  PROXY_EPOCHS="${PROXY_EPOCHS:-2}"
  PROXY_BATCH_DIV="${PROXY_BATCH_DIV:-8}"
  PROXY_BASE_LR="${PROXY_BASE_LR:-0.1}"
  PROXY_INPUT_SIZE="${PROXY_INPUT_SIZE:-32}"
  PROXY_AREA_MIN="${PROXY_AREA_MIN:-0.5}"
  PROXY_DATA="${PROXY_DATA:-${RUNS_DIR}/data/rec}"
  PROXY_WORKERS="${PROXY_WORKERS:-2}"
  VOC_DIR="${PROXY_VOC:-${RUNS_DIR}/data/voc}"
  ADE_DIR="${PROXY_ADE:-${RUNS_DIR}/data/ade}"
else
  NUM_GPUS="${NUM_GPUS:-8}"
fi

# ---- the paper's settings, shared by the table scripts ------------------------------------
# Section 2.1 baseline: 256 images (32 x 8 GPUs), FP32, lr 0.1, step decay /10 at 30, 60, 90.
BASELINE=(--global-batch 256 --dtype float32)
# Section 3 efficient setting: 1024 images (128 x 8), FP16, lr 0.4, 5 warmup epochs, zero
# gamma, no bias decay.
EFFICIENT=(--global-batch 1024 --dtype float16 --warmup-epochs 5 --last-gamma --no-wd)
STEP=(--lr-mode step --lr-decay-epoch 30,60,90)
COSINE=(--lr-mode cosine)                          # section 5.1
SMOOTH=(--label-smoothing --smoothing-eps 0.1)    # section 5.2, eq. (4)
MIXUP=(--mixup --mixup-alpha 0.2)                 # section 5.4
E120=(--num-epochs 120)
E200=(--num-epochs 200)                           # with mixup

# distill TEACHER_ROW: section 5.3 flags, T = 20, a ResNet-152-D teacher trained by TEACHER_ROW
distill() {
  DISTILL=(--teacher resnet152_v1d --teacher-params "$(params_of "$1")" --temperature 20)
}

# params_of ROW: the best checkpoint of a finished row
params_of() { printf '%s' "${RUNS_DIR}/$1/checkpoint-best/net.params"; }

# resnet50d_backbones: the classification rows that Tables 8 and 9 start from (B-standard:
# ResNet-50-B with the baseline setting; ResNet-50-D with Table 6's refinements, and the two
# teachers of its distillation rows), the same rows as in table6.sh
resnet50d_backbones() {
  local M=(--model resnet50_v1d) D DM
  run_row r50b-baseline              --model resnet50_v1b "${BASELINE[@]}" "${STEP[@]}" "${E120[@]}"
  run_row teacher-r152d-cos-ls       --model resnet152_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${E120[@]}"
  run_row teacher-r152d-cos-ls-mixup --model resnet152_v1d "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${E200[@]}"
  distill teacher-r152d-cos-ls;       D=("${DISTILL[@]}")
  distill teacher-r152d-cos-ls-mixup; DM=("${DISTILL[@]}")
  run_row r50d-efficient      "${M[@]}" "${EFFICIENT[@]}" "${STEP[@]}" "${E120[@]}"
  run_row r50d-cosine         "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${E120[@]}"
  run_row r50d-smooth         "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${E120[@]}"
  run_row r50d-distill        "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${D[@]}" "${E120[@]}"
  run_row r50d-mixup          "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${E200[@]}"
  run_row r50d-distill-mixup  "${M[@]}" "${EFFICIENT[@]}" "${COSINE[@]}" "${SMOOTH[@]}" "${MIXUP[@]}" "${DM[@]}" "${E200[@]}"
}
# backbone rows of Tables 8/9 and their networks, in the paper's order
TRANSFER_BACKBONES=(r50b-baseline:resnet50_v1b r50d-efficient:resnet50_v1d r50d-cosine:resnet50_v1d
  r50d-smooth:resnet50_v1d r50d-distill:resnet50_v1d r50d-mixup:resnet50_v1d r50d-distill-mixup:resnet50_v1d)

# ---- helpers ---------------------------------------------------------------------------------
_say() { printf '%s\n' "$*" >&2; }

# quoted command line on stdout
_print_cmd() {
  local a out=()
  for a in "$@"; do
    if [[ "${a}" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+=("${a}"); else out+=("$(printf '%q' "${a}")"); fi
  done
  printf '%s\n' "${out[*]}"
}

# _scale_epochs N: an epoch count at proxy scale (integer, at least 1)
_scale_epochs() { awk -v n="$1" -v e="${PROXY_EPOCHS}" 'BEGIN { v = int(n * e / 120 + 0.5); if (v < 1) v = 1; print v }'; }
# _scale_float X: a fractional epoch at proxy scale
_scale_float() { awk -v n="$1" -v e="${PROXY_EPOCHS}" 'BEGIN { printf "%g", n * e / 120 }'; }

_proxy_model() {
  case "$1" in
    resnet50_*) printf '%s' "resnet18_${1#resnet50_}" ;;
    resnet152_*|resnet101_*) printf '%s' "resnet34_${1#resnet*_}" ;;
    *) printf '%s' "$1" ;;
  esac
}

# _last_epoch DIR: the last epoch recorded in DIR/metrics.jsonl (empty if none)
_last_epoch() {
  [[ -s "$1/metrics.jsonl" ]] || return 0
  grep -v '^[[:space:]]*$' "$1/metrics.jsonl" | tail -n 1 | sed -n 's/.*"epoch": *\([0-9][0-9]*\).*/\1/p'
}

# _selected NAME: is the row chosen by ROWS?
_selected() {
  [[ -z "${ROWS}" ]] && return 0
  local pat
  IFS=',' read -r -a _pats <<< "${ROWS}"
  for pat in "${_pats[@]}"; do
    pat="${pat// /}"
    [[ -n "${pat}" && "$1" == ${pat} ]] && return 0
  done
  return 1
}

# ensure_proxy_data: the digits as RecordIO in PROXY_DATA (made once)
ensure_proxy_data() {
  [[ "${SCALE}" == proxy ]] || return 0
  [[ -f "${PROXY_DATA}/train.rec" && -f "${PROXY_DATA}/val.rec" ]] && return 0
  local folders="${PROXY_DATA%/}-images"
  # 40x40 images for 32-pixel crops (the demo's sizes)
  local make=("${PYTHON}" -c "from gluon_tricks.data import make_digits_dataset as m; m('${folders}', image_size=40, overwrite=True)")
  local pack=("${PYTHON}" "${REPO}/scripts/classification/prepare_imagenet.py" --data-dir "${folders}"
              --out-dir "${PROXY_DATA}" --resize 0 --encoding .png --quality 3 -j "${PROXY_WORKERS}")
  if [[ "${DRY_RUN}" == 1 ]]; then
    echo "# proxy data"; _print_cmd "${make[@]}"; _print_cmd "${pack[@]}"
    return 0
  fi
  _say "[tables] making the proxy data set in ${PROXY_DATA}"
  "${make[@]}"
  "${pack[@]}" > /dev/null
}

# run_row NAME FLAGS...: train one configuration (see the top of this file)
run_row() {
  local name="$1"; shift
  _selected "${name}" || return 0
  local dir="${RUNS_DIR}/${name}"
  local gbatch="" dataset=imagenet args=() a model=""
  while [[ $# -gt 0 ]]; do
    a="$1"; shift
    case "${a}" in
      --global-batch) gbatch="$1"; shift ;;
      --dataset) dataset="$1"; shift ;;
      *) args+=("${a}") ;;
    esac
  done
  [[ -n "${gbatch}" ]] || { _say "run_row ${name}: --global-batch missing"; return 2; }

  # proxy substitutions (see the top of this file)
  local devices base_lr=0.1 has_input=0 i
  if [[ "${SCALE}" == proxy ]]; then
    base_lr="${PROXY_BASE_LR}"
    gbatch=$(( gbatch / PROXY_BATCH_DIV ))
    for ((i = 0; i < ${#args[@]}; i++)); do
      case "${args[i]}" in
        --model|--teacher) args[i+1]="$(_proxy_model "${args[i+1]}")" ;;
        --num-epochs) args[i+1]="$(_scale_epochs "${args[i+1]}")" ;;
        --warmup-epochs) args[i+1]="$(_scale_float "${args[i+1]}")" ;;
        --lr-decay-epoch)
          local e out=()
          IFS=',' read -r -a _eps <<< "${args[i+1]}"
          for e in "${_eps[@]}"; do out+=("$(_scale_float "${e}")"); done
          args[i+1]="$(IFS=,; echo "${out[*]}")" ;;
        --dtype) [[ "${args[i+1]}" == float16 ]] && args[i+1]=float32 ;;
        --input-size) has_input=1; [[ "${args[i+1]}" == 299 ]] && args[i+1]=75 ;;
      esac
    done
    [[ "${has_input}" == 1 ]] || args+=(--input-size "${PROXY_INPUT_SIZE}")
    args+=(--use-rec --data-dir "${PROXY_DATA}" --random-area-min "${PROXY_AREA_MIN}" --no-mirror
           -j "${PROXY_WORKERS}" --progress log --log-interval 1000)
  else
    case "${dataset}" in
      imagenet) args+=(--use-rec --data-dir "${DATA_DIR}") ;;
      places365) args+=(--use-rec --data-dir "${PLACES_DIR}") ;;
      *) _say "run_row ${name}: unknown --dataset ${dataset}"; return 2 ;;
    esac
  fi
  for ((i = 0; i < ${#args[@]}; i++)); do
    [[ "${args[i]}" == --model ]] && model="${args[i+1]}"
  done

  # devices: NP horovod ranks with one GPU each, or one process with NUM_GPUS (0 = CPU)
  if (( NP > 1 )); then devices="${NP}"; elif (( NUM_GPUS > 0 )); then devices="${NUM_GPUS}"; else devices=1; fi
  if (( gbatch % devices != 0 )); then
    _say "run_row ${name}: global batch ${gbatch} is not divisible by ${devices} devices"; return 2
  fi
  local lr
  lr="$(awk -v b="${base_lr}" -v g="${gbatch}" 'BEGIN { printf "%g", b * g / 256 }')"
  local train=(--model "${model}" --batch-size $(( gbatch / devices )) --lr "${lr}")
  # the rest in the row's order, --model already placed first
  for ((i = 0; i < ${#args[@]}; i++)); do
    if [[ "${args[i]}" == --model ]]; then i=$((i + 1)); continue; fi
    train+=("${args[i]}")
  done
  if [[ -n "${EXTRA_ARGS}" ]]; then read -r -a _extra <<< "${EXTRA_ARGS}"; train+=("${_extra[@]}"); fi
  train+=(--save-dir "${dir}")

  _launch "${name}" "${devices}" "${gbatch}" "${TRAIN_PY}" "${train[@]}"
}

# _launch NAME DEVICES GLOBAL_BATCH SCRIPT ARGS...: run SCRIPT (a training script of this
# repository taking --num-gpus/--horovod/--resume and writing SAVE_DIR/metrics.jsonl) for row
# NAME unless it finished; ARGS hold --save-dir and --num-epochs or --epochs
_launch() {
  local name="$1" devices="$2" gbatch="$3" script="$4"; shift 4
  local train=("$@") dir="${RUNS_DIR}/${name}" epochs="" i
  for ((i = 0; i < ${#train[@]}; i++)); do
    case "${train[i]}" in --num-epochs|--epochs) epochs="${train[i+1]}" ;; esac
  done
  local cmd=()
  if (( NP > 1 )); then
    cmd=("${HOROVODRUN}" -np "${NP}")
    if [[ -n "${HOSTFILE}" ]]; then cmd+=(-hostfile "${HOSTFILE}"); else cmd+=(-H "${HOSTS}"); fi
    if [[ -n "${HOROVODRUN_ARGS}" ]]; then read -r -a _hargs <<< "${HOROVODRUN_ARGS}"; cmd+=("${_hargs[@]}"); fi
    cmd+=("${PYTHON}" "${script}" --horovod --num-gpus 1 "${train[@]}")
  else
    cmd=("${PYTHON}" "${script}" --num-gpus "${NUM_GPUS}" "${train[@]}")
  fi

  local last status=""
  last="$(_last_epoch "${dir}")"
  if [[ -n "${last}" && -n "${epochs}" && "${last}" -ge "${epochs}" ]]; then
    status=finished
  elif [[ -f "${dir}/argv.txt" ]] && compgen -G "${dir}/checkpoint-epoch*" > /dev/null; then
    # a checkpoint (also one written in the first epoch by SIGTERM or --checkpoint-interval,
    # or without its pointer: --resume finds it); a new run would be refused there
    status=resume; cmd+=(--resume)
  elif [[ -n "${last}" ]]; then
    status=restart
  fi

  if [[ "${DRY_RUN}" == 1 ]]; then
    echo "# row ${name} (${TABLE:-}${status:+, ${status}})"
    _print_cmd "${cmd[@]}"
    return 0
  fi
  if [[ "${status}" == finished ]]; then
    _say "[${TABLE:-tables}] ${name}: finished (${last}/${epochs} epochs), skipped"
    return 0
  fi
  mkdir -p "${dir}"
  if [[ "${status}" == restart ]]; then
    mv "${dir}/metrics.jsonl" "${dir}/metrics.jsonl.stale-$(date +%Y%m%d-%H%M%S)"
  fi
  # what the report needs to know about the row
  printf '%s\n' "${train[@]}" > "${dir}/argv.txt"
  _print_cmd "${cmd[@]}" > "${dir}/command.sh"
  {
    echo "row=${name}"
    echo "table=${TABLE:-}"
    echo "scale=${SCALE}"
    echo "script=${script#"${REPO}"/}"
    echo "devices=${devices}"
    echo "global_batch=${gbatch}"
  } > "${dir}/row.txt"
  _say "[${TABLE:-tables}] ${name}: ${status:-start}"
  _say "$(_print_cmd "${cmd[@]}")"
  local tic=${SECONDS}
  "${cmd[@]}" > >(tee -a "${dir}/console.log") 2>&1
  _say "[${TABLE:-tables}] ${name}: done in $(( SECONDS - tic )) s"
}

# run_transfer NAME SCRIPT FLAGS...: a downstream row of Tables 8/9 (SCRIPT: a training script
# taking --backbone/--backbone-params/--epochs/--data-dir/--save-dir). Pseudo-flags:
#   --global-batch G   images per step over all devices: --batch-size G / devices (the script
#                      derives its lr from the global batch: GluonCV's per-image base lr)
# At proxy scale the backbone is mapped like the classification models, --epochs becomes
# PROXY_TRANSFER_EPOCHS (1) with --lr-decay-epoch scaled alike, the global batch is divided by
# PROXY_BATCH_DIV (at least 1), and every flag of the array named by PROXY_FLAGS_VAR (set by
# the table script) replaces the same flag of the row or is appended.
run_transfer() {
  local name="$1" script="$2"; shift 2
  _selected "${name}" || return 0
  local dir="${RUNS_DIR}/${name}" gbatch="" args=() a i devices
  while [[ $# -gt 0 ]]; do
    a="$1"; shift
    case "${a}" in
      --global-batch) gbatch="$1"; shift ;;
      *) args+=("${a}") ;;
    esac
  done
  [[ -n "${gbatch}" ]] || { _say "run_transfer ${name}: --global-batch missing"; return 2; }
  if [[ "${SCALE}" == proxy ]]; then
    local full_epochs="" target="${PROXY_TRANSFER_EPOCHS:-1}"
    gbatch=$(( gbatch / PROXY_BATCH_DIV )); (( gbatch >= 1 )) || gbatch=1
    for ((i = 0; i < ${#args[@]}; i++)); do
      [[ "${args[i]}" == --epochs ]] && full_epochs="${args[i+1]}"
    done
    for ((i = 0; i < ${#args[@]}; i++)); do
      case "${args[i]}" in
        --backbone) args[i+1]="$(_proxy_model "${args[i+1]}")" ;;
        --epochs) args[i+1]="${target}" ;;
        --lr-decay-epoch)
          local e out=()
          IFS=',' read -r -a _eps <<< "${args[i+1]}"
          for e in "${_eps[@]}"; do out+=("$(awk -v n="${e}" -v t="${target}" -v f="${full_epochs}" 'BEGIN { printf "%g", n * t / f }')"); done
          args[i+1]="$(IFS=,; echo "${out[*]}")" ;;
      esac
    done
    if [[ -n "${PROXY_FLAGS_VAR:-}" ]]; then
      local -n _over="${PROXY_FLAGS_VAR}"
      local j found
      for ((j = 0; j < ${#_over[@]}; j += 2)); do
        found=0
        for ((i = 0; i < ${#args[@]}; i++)); do
          if [[ "${args[i]}" == "${_over[j]}" ]]; then args[i+1]="${_over[j+1]}"; found=1; fi
        done
        (( found )) || args+=("${_over[j]}" "${_over[j+1]}")
      done
    fi
  fi
  if (( NP > 1 )); then devices="${NP}"; elif (( NUM_GPUS > 0 )); then devices="${NUM_GPUS}"; else devices=1; fi
  if (( gbatch % devices != 0 )); then
    _say "run_transfer ${name}: global batch ${gbatch} is not divisible by ${devices} devices"; return 2
  fi
  local train=("${args[@]}" --batch-size $(( gbatch / devices )))
  if [[ -n "${EXTRA_TRANSFER_ARGS:-}" ]]; then read -r -a _extra <<< "${EXTRA_TRANSFER_ARGS}"; train+=("${_extra[@]}"); fi
  train+=(--save-dir "${dir}")
  _launch "${name}" "${devices}" "${gbatch}" "${script}" "${train[@]}"
}

# ensure_proxy_transfer_data voc|ade DIR: the tiny VOC/ADE20K look-alike of the proxy run
ensure_proxy_transfer_data() {
  [[ "${SCALE}" == proxy ]] || return 0
  local kind="$1" out="$2" marker
  if [[ "${kind}" == voc ]]; then marker="${out}/VOC2007/ImageSets/Main/test.txt"; else marker="${out}/ADEChallengeData2016/annotations/validation"; fi
  [[ -e "${marker}" ]] && return 0
  local cmd=("${PYTHON}" "${TABLES_DIR}/make_proxy_transfer_data.py" "--${kind}" "${out}"
             --train "${PROXY_TRANSFER_TRAIN:-12}" --test "${PROXY_TRANSFER_TEST:-6}")
  if [[ "${DRY_RUN}" == 1 ]]; then echo "# proxy ${kind} data"; _print_cmd "${cmd[@]}"; return 0; fi
  "${cmd[@]}"
}

# report WHAT: the Markdown/PNG report of a table or figure (after its rows)
report() {
  [[ "${REPORT}" == 1 ]] || return 0
  local cmd=("${PYTHON}" "${REPO}/scripts/report.py" --runs "${RUNS_DIR}" --out "${REPORT_DIR}" --only "$1")
  if [[ "${DRY_RUN}" == 1 ]]; then
    echo "# report $1"; _print_cmd "${cmd[@]}"; return 0
  fi
  "${cmd[@]}"
}

# start TABLE: common preamble of each script
start() {
  TABLE="$1"
  if [[ "${DRY_RUN}" != 1 ]]; then mkdir -p "${RUNS_DIR}"; fi
  ensure_proxy_data
}
