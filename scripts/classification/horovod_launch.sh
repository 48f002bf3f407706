#!/usr/bin/env bash
# Launch scripts/classification/train_imagenet.py with Horovod: one rank per GPU, the same
# training script and flags as a single-process run plus --horovod (there is no separate
# Horovod training script).
#
# Default: the paper's efficient setting (section 3, Table 3/4) on one host with 8 GPUs:
# 8 ranks x 128 images = global batch 1024, float16 with a float32 master copy, linear
# learning-rate scaling (lr = 0.1 x 1024 / 256 = 0.4), 5 warmup epochs, zero gamma
# (--last-gamma), no bias decay (--no-wd), plus the cosine schedule of section 5.1.
#
#   # one host, 8 GPUs (horovodrun -np 8 -H localhost:8 ...)
#   DATA_DIR=~/data/imagenet/rec scripts/classification/horovod_launch.sh
#
#   # two hosts with 8 GPUs each (16 ranks, global batch 2048): a hostfile with lines
#   #   host1 slots=8
#   #   host2 slots=8
#   # (the repository, venv and DATA_DIR at the same paths on every host, passwordless ssh
#   # between them; horovodrun -np 16 -hostfile hosts ...). SAVE_DIR need not be shared:
#   # only rank 0 writes it, and on --resume rank 0 reads the checkpoint and broadcasts it.
#   # A scheduler that shows each rank only its own GPU (CUDA_VISIBLE_DEVICES per rank) works
#   # too: a rank that sees one GPU uses gpu(0).
#   NP=16 HOSTFILE=hosts DATA_DIR=/shared/imagenet/rec scripts/classification/horovod_launch.sh
#
#   # anything after the script name goes to train_imagenet.py, e.g. the section 5 tricks:
#   scripts/classification/horovod_launch.sh --label-smoothing --mixup --num-epochs 200
#
#   # print the command instead of running it
#   DRY_RUN=1 scripts/classification/horovod_launch.sh
#
# Variables (all optional):
#   NP          number of ranks = total GPUs (default 8)
#   HOSTS       horovodrun -H value when no HOSTFILE (default localhost:$NP)
#   HOSTFILE    horovodrun -hostfile (several hosts); overrides HOSTS
#   DATA_DIR    directory with train.rec/train.idx/val.rec/val.idx (see im2rec)
#   MODEL       network name (default resnet50_v1d)
#   BATCH_SIZE  per-GPU batch (default 128; global batch = BATCH_SIZE x NP)
#   LR          --lr to pass; unset = the script's default (derive it from the global batch
#               with the linear scaling rule: 0.1 x BATCH_SIZE x NP / 256)
#   DTYPE       float16 (default) or float32
#   SAVE_DIR    checkpoints and logs (default runs/<MODEL>-hvd<NP>)
#   PYTHON      interpreter on every host (default: python)
#   HOROVODRUN  launcher (default: horovodrun; built by `make horovod`)
#   HOROVODRUN_ARGS  extra launcher flags, e.g. "--gloo" or "--mpi --network-interface eth0"
#   DRY_RUN=1   print the command, do not run it
#
# Failure handling: horovodrun ends the job when any rank exits non-zero; the training script
# wraps main() in gluon_tricks.distributed.run_main so a failing rank logs
# "rank R/N failed: ..." and exits at once instead of hanging in a collective.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NP="${NP:-8}"
HOSTS="${HOSTS:-localhost:${NP}}"
HOSTFILE="${HOSTFILE:-}"
DATA_DIR="${DATA_DIR:-${HOME}/.mxnet/datasets/imagenet/rec}"
MODEL="${MODEL:-resnet50_v1d}"
BATCH_SIZE="${BATCH_SIZE:-128}"
LR="${LR:-}"
DTYPE="${DTYPE:-float16}"
SAVE_DIR="${SAVE_DIR:-runs/${MODEL}-hvd${NP}}"
PYTHON="${PYTHON:-python}"
HOROVODRUN="${HOROVODRUN:-horovodrun}"
HOROVODRUN_ARGS="${HOROVODRUN_ARGS:-}"

cmd=("${HOROVODRUN}" -np "${NP}")
if [[ -n "${HOSTFILE}" ]]; then
  cmd+=(-hostfile "${HOSTFILE}")
else
  cmd+=(-H "${HOSTS}")
fi
if [[ -n "${HOROVODRUN_ARGS}" ]]; then
  read -r -a extra_launcher <<< "${HOROVODRUN_ARGS}"
  cmd+=("${extra_launcher[@]}")
fi
cmd+=("${PYTHON}" "${HERE}/train_imagenet.py" --horovod
  --model "${MODEL}"
  --num-gpus 1                     # per rank: each rank drives GPU <local rank>
  --batch-size "${BATCH_SIZE}"     # per GPU; global batch = BATCH_SIZE x NP
  --dtype "${DTYPE}"
  --lr-mode cosine --warmup-epochs 5
  --last-gamma --no-wd
  --use-rec
  --rec-train "${DATA_DIR}/train.rec" --rec-train-idx "${DATA_DIR}/train.idx"
  --rec-val "${DATA_DIR}/val.rec" --rec-val-idx "${DATA_DIR}/val.idx"
  --save-dir "${SAVE_DIR}" --logging-file "${SAVE_DIR}/train.log")
if [[ -n "${LR}" ]]; then
  cmd+=(--lr "${LR}")
fi
cmd+=("$@")

if [[ "${DRY_RUN:-0}" == "1" ]]; then
  printf '%q ' "${cmd[@]}"
  printf '\n'
  exit 0
fi
mkdir -p "${SAVE_DIR}"
exec "${cmd[@]}"
