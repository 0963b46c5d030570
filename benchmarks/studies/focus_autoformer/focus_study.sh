#!/usr/bin/env bash
# Issue #9's study: Fashion-MNIST supernets trained 15 epochs with each sampler (same recipe,
# the shipped fashion-mnist config), into runs/focus9/<sampler>-s<seed>: uniform and focus with
# seeds 0-4, attentive with seeds 0-2. Each run is evaluated as soon as it has trained (the
# evaluation below, one run at a time; its result is cached in RUN/results/ and reused by the
# all-runs command). Resumable: run it again to continue runs that a kill or a session's end cut
# off; finished runs are skipped. Jobs run in LANES parallel processes of one thread each
# (default 2).
#
#     bash benchmarks/focus_study.sh [LANES]
#
# Then evaluate (searches every run the same way; see bench_focus_vs_uniform.py):
#
#     python benchmarks/bench_focus_vs_uniform.py \
#         --runs uniform=runs/focus9/uniform-s0,runs/focus9/uniform-s1,runs/focus9/uniform-s2,runs/focus9/uniform-s3,runs/focus9/uniform-s4 \
#                focus=runs/focus9/focus-s0,runs/focus9/focus-s1,runs/focus9/focus-s2,runs/focus9/focus-s3,runs/focus9/focus-s4 \
#                attentive=runs/focus9/attentive-s0,runs/focus9/attentive-s1,runs/focus9/attentive-s2 \
#         --budgets 8M,15M,25M --cloud 100 --val-images 1000 --common --plot benchmarks/pareto-focus-vs-uniform.png
set -euo pipefail
cd "$(dirname "$0")/.."
LANES=${1:-2}
TRAIN=${TRAIN:-.venv/bin/focusformer-train}
PYTHON=${PYTHON:-.venv/bin/python}

evaluate() {  # the bench's own cache (keyed by its settings) makes a finished evaluation a no-op
  local sampler=$1 dir=$2
  OMP_NUM_THREADS=1 $PYTHON benchmarks/bench_focus_vs_uniform.py --runs "$sampler=$dir" \
    --budgets 8M,15M,25M --cloud 100 --val-images 1000 --no-progress > "$dir.eval.out" 2>&1
}

job() {
  local sampler=$1 seed=$2 dir=runs/focus9/$1-s$2
  mkdir -p runs/focus9
  [ -f "$dir/final.json" ] && { evaluate "$sampler" "$dir"; return 0; }
  if [ -f "$dir/last.pt" ]; then
    OMP_NUM_THREADS=1 $TRAIN --resume "$dir" --no-progress >> "$dir.log" 2>&1
  else
    OMP_NUM_THREADS=1 $TRAIN --config fashion-mnist --epochs 15 --sampler "$sampler" --seed "$seed" \
      --checkpoint-every 50 --output "$dir" --no-progress >> "$dir.log" 2>&1
  fi
  evaluate "$sampler" "$dir"
}
export -f job evaluate
export TRAIN PYTHON
printf '%s\n' "uniform 0" "focus 0" "uniform 1" "focus 1" "uniform 2" "focus 2" \
  "uniform 3" "focus 3" "uniform 4" "focus 4" \
  "attentive 0" "attentive 1" "attentive 2" | xargs -P "$LANES" -L 1 bash -c 'job $0 $1'
