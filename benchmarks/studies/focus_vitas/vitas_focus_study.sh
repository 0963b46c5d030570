#!/usr/bin/env bash
# Issue #24 §2: does focus pay where subnets of one budget differ by points? `vitas-fashion-mnist`
# (patch 7 against patch 4 at 8M MACs), its shipped recipe (shared q/k, minimum depth 1), the
# default budget prior (the MACs of uniform draws), each sampler arm and seed trained EPOCHS
# epochs into ROOT/<arm>-s<seed>, then evaluated at 8M, 15M, 25M by focusformer-specialize on
# 1,000 search-val images: the best of 32 uniform draws (every run) and the trained policy's pick
# among 32 (focus runs), drawn in each budget's band and its rungs (specialize's default), each
# winner's test top-1 (RUN/eval-{uniform,policy}.json).
# Resumable: finished runs and evaluations are skipped, cut-off runs resumed. LANES parallel
# processes of one thread each.
#
#     EPOCHS=15 bash benchmarks/vitas_focus_study.sh runs/p24 "uniform 0" "focus 0" "focusloss 0" ...
#     python benchmarks/bench_inband.py --runs uniform=runs/p24/uniform15-s0,... focus=...
#
# Arms: uniform (--sampler uniform), focus (focus.reward=distill, the package default), focusloss
# (focus.reward=loss, the ViTAS configs' default since this study), focusbal (distill with
# focus.balanced=[patch_size]: the policy does not steer the patch size), attentive (--sampler
# attentive; a step costs about 2 uniform ones, so EPOCHS=8 meets uniform's 16 at equal compute).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:?usage: vitas_focus_study.sh ROOT "ARM SEED" ...}; shift
EPOCHS=${EPOCHS:-15} LANES=${LANES:-2}
TRAIN=${TRAIN:-.venv/bin/focusformer-train} SPECIALIZE=${SPECIALIZE:-.venv/bin/focusformer-specialize}
export ROOT EPOCHS TRAIN SPECIALIZE OMP_NUM_THREADS=1

job() {
  local arm=$1 seed=$2 dir=$ROOT/$1$EPOCHS-s$2 args
  case $arm in
    uniform) args=(--sampler uniform) ;;
    focus) args=(--sampler focus --set focus.reward=distill) ;;
    focusloss) args=(--sampler focus --set focus.reward=loss) ;;
    focusbal) args=(--sampler focus --set focus.reward=distill --set 'focus.balanced=[patch_size]') ;;
    attentive) args=(--sampler attentive) ;;
    *) echo "unknown arm $arm" >&2; return 2 ;;
  esac
  mkdir -p "$ROOT"
  if [ ! -f "$dir/final.json" ]; then
    if [ -f "$dir/last.pt" ]; then
      $TRAIN --resume "$dir" --no-progress >> "$dir.log" 2>&1 || return 1
    else
      $TRAIN --config vitas-fashion-mnist --epochs "$EPOCHS" --seed "$seed" --output "$dir" \
        --checkpoint-every 100 --no-progress "${args[@]}" >> "$dir.log" 2>&1 || return 1
    fi
  fi
  for draws in uniform policy; do
    [ -f "$dir/eval-$draws.json" ] && continue
    [ $draws = policy ] && [ "${arm#focus}" = "$arm" ] && continue
    $SPECIALIZE --checkpoint "$dir" --budgets 8M,15M,25M --val-images 1000 --draws $draws --json \
      --no-progress > "$dir/eval-$draws.json.tmp" 2> "$dir/eval-$draws.err" \
      && mv "$dir/eval-$draws.json.tmp" "$dir/eval-$draws.json"
  done
}
export -f job
printf '%s\n' "$@" | xargs -P "$LANES" -L 1 bash -c 'job $0 $1'
