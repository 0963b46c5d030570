#!/usr/bin/env bash
# Issue #9's study: Fashion-MNIST supernets trained 15 epochs with each sampler (same recipe,
# the shipped fashion-mnist config), three seeds each, into runs/focus9/<sampler>-s<seed>.
# Resumable: run it again to continue runs that a kill or a session's end cut off; finished
# runs are skipped. Jobs run in LANES parallel processes of one thread each (default 3).
#
#     bash benchmarks/focus_study.sh [LANES]
#
# Then evaluate (searches every run the same way; see bench_focus_vs_uniform.py):
#
#     python benchmarks/bench_focus_vs_uniform.py \
#         --runs uniform=runs/focus9/uniform-s0,runs/focus9/uniform-s1,runs/focus9/uniform-s2 \
#                focus=runs/focus9/focus-s0,runs/focus9/focus-s1,runs/focus9/focus-s2 \
#                attentive=runs/focus9/attentive-s0,runs/focus9/attentive-s1,runs/focus9/attentive-s2 \
#         --budgets 8M,15M,25M --cloud 100 --val-images 1000 --plot benchmarks/pareto-focus-vs-uniform.png
set -euo pipefail
cd "$(dirname "$0")/.."
LANES=${1:-3}
TRAIN=${TRAIN:-.venv/bin/focusformer-train}

job() {
  local sampler=$1 seed=$2 dir=runs/focus9/$1-s$2
  [ -f "$dir/final.json" ] && return 0
  mkdir -p runs/focus9
  if [ -f "$dir/last.pt" ]; then
    OMP_NUM_THREADS=1 $TRAIN --resume "$dir" --no-progress >> "$dir.log" 2>&1
  else
    OMP_NUM_THREADS=1 $TRAIN --config fashion-mnist --epochs 15 --sampler "$sampler" --seed "$seed" \
      --checkpoint-every 50 --output "$dir" --no-progress >> "$dir.log" 2>&1
  fi
}
export -f job
export TRAIN
printf '%s\n' "uniform 0" "uniform 1" "focus 0" "focus 1" "focus 2" "uniform 2" \
  "attentive 0" "attentive 1" "attentive 2" | xargs -P "$LANES" -L 1 bash -c 'job $0 $1'
