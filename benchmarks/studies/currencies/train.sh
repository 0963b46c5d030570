#!/usr/bin/env bash
# The training runs of the currencies study (what focus saves in supernet epochs and in search
# time): each "ARM SEED" trains one supernet into ROOT/<arm>-s<seed>, one thread per process,
# LANES processes at a time. Resumable: a finished run is skipped, a cut-off one resumed.
#
#     bash benchmarks/studies/currencies/train.sh runs/currencies "vfocus15 0" "vuniform16 0" ...
#
# Arms, on vitas-fashion-mnist (its config: focus with reward loss):
#   vfocus15               focus, 15 epochs (the config's sampler and reward)
#   vuniform16/24/32       uniform sampling, 16, 24 or 32 epochs
# on fashion-mnist (AutoFormer's space):
#   afocusloss15           focus with reward loss, 15 epochs
#   afocusdistill15        focus with reward distill, 15 epochs
#   auniform16             uniform sampling, 16 epochs (equal compute with focus's 15)
# TRAIN names the training command (default: the checkout's .venv).
set -uo pipefail
cd "$(dirname "$0")/../../.."
ROOT=${1:?usage: train.sh ROOT "ARM SEED" ...}; shift
LANES=${LANES:-2}
TRAIN=${TRAIN:-.venv/bin/focusformer-train}
export ROOT TRAIN OMP_NUM_THREADS=1

job() {
  local arm=$1 seed=$2 dir=$ROOT/$1-s$2 args
  case $arm in
    vfocus15) args=(--config vitas-fashion-mnist --sampler focus --epochs 15) ;;
    vuniform16) args=(--config vitas-fashion-mnist --sampler uniform --epochs 16) ;;
    vuniform24) args=(--config vitas-fashion-mnist --sampler uniform --epochs 24) ;;
    vuniform32) args=(--config vitas-fashion-mnist --sampler uniform --epochs 32) ;;
    afocusloss15) args=(--config fashion-mnist --sampler focus --set focus.reward=loss --epochs 15) ;;
    afocusdistill15) args=(--config fashion-mnist --sampler focus --set focus.reward=distill --epochs 15) ;;
    auniform16) args=(--config fashion-mnist --sampler uniform --epochs 16) ;;
    *) echo "unknown arm $arm" >&2; return 2 ;;
  esac
  mkdir -p "$ROOT"
  [ -f "$dir/final.json" ] && return 0
  if [ -f "$dir/last.pt" ]; then
    $TRAIN --resume "$dir" --no-progress >> "$dir.log" 2>&1
  else
    $TRAIN "${args[@]}" --seed "$seed" --output "$dir" --checkpoint-every 100 --no-progress >> "$dir.log" 2>&1
  fi
}
export -f job
printf '%s\n' "$@" | xargs -P "$LANES" -L 1 bash -c 'job $0 $1'
