#!/usr/bin/env bash
# Issue #9's levers, explored on short runs: Fashion-MNIST supernets (the shipped fashion-mnist
# config) trained 5 epochs with seeds 0 and 1, into runs/recipes/<recipe>-s<seed>. Plain uniform
# sampling for 5 epochs is the families study's runs/families/fashion-mnist-s<seed> (same
# config, the same command without the flags below). The recipes:
#
#   uniform               plain uniform sampling, for seeds the families study has no run of
#   focus                 the default focus sampler (budgets log-uniform over the MAC range)
#   inband                focus with focus.uniform_share=1: its budgets, uniform draws within
#                         each budget's band, no steering (separates budgets from steering)
#   focus-targets         focus trained for the budgets the probe is scored at (8M,15M,25M)
#   inband-targets        the same budgets, uniform draws in their bands, no steering
#   uniform-sandwich-kl   uniform + sandwich (largest and smallest every step) + in-place KL
#                         distillation from the largest subnet
#   uniform-sandwich      uniform + sandwich, no distillation (the distillation loss's own share)
#   uniform-sandwich-alpha  uniform + sandwich + AlphaNet's adaptive alpha-divergence
#   focus-sandwich-kl     focus under the same sandwich + KL recipe
#   attentive             AttentiveNAS's BestUp (best of 3 in-band candidates by minibatch loss)
#
# RECIPE-<N>ep is RECIPE trained N epochs instead of 5. Used: attentive-7ep (a step costs 2.1
# times a uniform one, bench_focus_overhead.py, so 7 epochs cost about what the 15-epoch study's
# uniform runs did: compared with those at equal compute), and uniform-sandwich-15ep and
# uniform-sandwich-kl-15ep (the study's length, compared with runs/focus9/uniform-s<seed>).
#
# Seed 2 of focus and uniform: bash benchmarks/recipe_study.sh 2 focus-s2 uniform-s2
#
# Resumable: run it again to continue runs a kill or a session's end cut off; finished runs are
# skipped. LANES parallel processes of one thread each (default 2). Name runs as RECIPE-sSEED to
# train just those, in that order (default: every recipe with seeds 0 and 1, in the order below).
#
#     bash benchmarks/recipe_study.sh [LANES] [RECIPE-sSEED ...]
#
# Then score every run on the probe set (no search needed; see bench_recipes.py):
#
#     python benchmarks/bench_recipes.py --probe benchmarks/probe-fashion-mnist-winners.json \
#         --runs uniform=runs/families/fashion-mnist-s0,runs/families/fashion-mnist-s1 \
#                focus=runs/recipes/focus-s0,runs/recipes/focus-s1 ...
set -euo pipefail
cd "$(dirname "$0")/.."
LANES=${1:-2}
TRAIN=${TRAIN:-.venv/bin/focusformer-train}

job() {
  local recipe=$1 seed=$2 dir=runs/recipes/$1-s$2 epochs=5 flags
  if [[ $recipe =~ ^(.+)-([0-9]+)ep$ ]]; then
    recipe=${BASH_REMATCH[1]} epochs=${BASH_REMATCH[2]}
  fi
  local targets="--target-budgets 8M,15M,25M" no_steering="--set focus.uniform_share=1.0"
  case $recipe in
    uniform)             flags="--sampler uniform" ;;
    focus)               flags="--sampler focus" ;;
    inband)              flags="--sampler focus $no_steering" ;;
    focus-targets)       flags="--sampler focus $targets" ;;
    inband-targets)      flags="--sampler focus $targets $no_steering" ;;
    uniform-sandwich-kl) flags="--sampler uniform --sandwich --distill kl" ;;
    uniform-sandwich)    flags="--sampler uniform --sandwich" ;;
    uniform-sandwich-alpha) flags="--sampler uniform --sandwich --distill alpha" ;;
    focus-sandwich-kl)   flags="--sampler focus --sandwich --distill kl" ;;
    attentive)           flags="--sampler attentive" ;;
    *) echo "unknown recipe $recipe" >&2; return 1 ;;
  esac
  mkdir -p runs/recipes
  [ -f "$dir/final.json" ] && return 0
  if [ -f "$dir/last.pt" ]; then
    OMP_NUM_THREADS=1 $TRAIN --resume "$dir" --no-progress >> "$dir.log" 2>&1
  else
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 $TRAIN --config fashion-mnist --epochs "$epochs" $flags --seed "$seed" \
      --checkpoint-every 50 --output "$dir" --no-progress >> "$dir.log" 2>&1
  fi
}
export -f job
export TRAIN
if [ $# -gt 1 ]; then
  shift
  runs=("$@")
else
  runs=(uniform-sandwich-kl-s0 focus-s0 focus-targets-s0 inband-targets-s0 inband-s0
        focus-s1 focus-targets-s1 inband-targets-s1 inband-s1 uniform-sandwich-kl-s1
        uniform-sandwich-s0 uniform-sandwich-s1 focus-sandwich-kl-s0 focus-sandwich-kl-s1
        attentive-s0 attentive-s1 attentive-7ep-s0 attentive-7ep-s1)
fi
jobs=()
for run in "${runs[@]}"; do
  [[ $run =~ ^(.+)-s([0-9]+)$ ]] || { echo "expected RECIPE-sSEED, got '$run'" >&2; exit 2; }
  jobs+=("${BASH_REMATCH[1]} ${BASH_REMATCH[2]}")
done
printf '%s\n' "${jobs[@]}" | xargs -P "$LANES" -L 1 bash -c 'job $0 $1'
