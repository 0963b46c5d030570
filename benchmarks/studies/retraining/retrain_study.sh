#!/usr/bin/env bash
# Issue #25's measurements, one seed per call, everything under ROOT/s<SEED>:
#   1. a supernet trained EPOCHS epochs with SAMPLER (resumed if cut off);
#   2. focusformer-specialize at BUDGETS (8M,15M,25M), exported (--draws uniform for a uniform run);
#   3. each pick fine-tuned FT_EPOCHS epochs from its inherited weights and retrained SCRATCH_EPOCHS
#      epochs from scratch (focusformer-train --subnet), in parallel;
#   4. ranking fidelity: bench_ranking.py on the supernet (RANK_SPREAD subnets over the MAC range,
#      RANK_WITHIN within RANK_BUDGET (15M), each retrained SCRATCH_EPOCHS epochs), JOBS runs at a time.
# Finished steps are skipped, so a cut-off call continues where it stopped.
#
#     bash benchmarks/retrain_study.sh SEED [ROOT]          # e.g. ROOT=runs/retrain/uniform
#     SAMPLER=focus bash benchmarks/retrain_study.sh 0 runs/retrain/focus
#
#     SUPERNET=runs/p24/focusloss15-s0 SAMPLER=focus RANKING=0 bash benchmarks/retrain_study.sh 0 runs/p25/focusloss
#
# Settings (environment): BUDGETS, RANK_BUDGET, CONFIG (fashion-mnist), SAMPLER (uniform), EPOCHS (15), FT_EPOCHS (5),
# SCRATCH_EPOCHS (15), RANK_SPREAD (12), RANK_WITHIN (8), JOBS (4), DATA_DIR (the dataset's usual
# place), TRAIN (.venv/bin/focusformer-train), SPECIALIZE, PYTHON; SUPERNET: a trained run to use
# instead of step 1 (SAMPLER must then say how it was trained); RANKING=0 skips step 4 (for one
# ground truth shared by several supernets, run bench_ranking.py with one --run per supernet).
set -euo pipefail
cd "$(dirname "$0")/.."
SEED=${1:?usage: retrain_study.sh SEED [ROOT]}
ROOT=${2:-runs/retrain/${SAMPLER:-uniform}}/s$SEED
CONFIG=${CONFIG:-fashion-mnist} SAMPLER=${SAMPLER:-uniform} EPOCHS=${EPOCHS:-15}
FT_EPOCHS=${FT_EPOCHS:-5} SCRATCH_EPOCHS=${SCRATCH_EPOCHS:-15} JOBS=${JOBS:-4}
RANK_SPREAD=${RANK_SPREAD:-12} RANK_WITHIN=${RANK_WITHIN:-8} BUDGETS=${BUDGETS:-8M,15M,25M}
RANK_BUDGET=${RANK_BUDGET:-15M}
TRAIN=${TRAIN:-.venv/bin/focusformer-train} SPECIALIZE=${SPECIALIZE:-.venv/bin/focusformer-specialize}
PYTHON=${PYTHON:-.venv/bin/python}
DATA=()
[ -n "${DATA_DIR:-}" ] && DATA=(--data-dir "$DATA_DIR")
mkdir -p "$ROOT"

supernet=${SUPERNET:-$ROOT/supernet}
if [ ! -f "$supernet/final.json" ]; then
  [ -n "${SUPERNET:-}" ] && { echo "retrain_study.sh: SUPERNET=$SUPERNET is no finished run" >&2; exit 2; }
  if [ -f "$supernet/last.pt" ]; then
    $TRAIN --resume "$supernet" --no-progress >> "$ROOT/supernet.log" 2>&1
  else
    $TRAIN --config "$CONFIG" --epochs "$EPOCHS" --sampler "$SAMPLER" --seed "$SEED" "${DATA[@]}" \
      --checkpoint-every 100 --output "$supernet" --no-progress >> "$ROOT/supernet.log" 2>&1
  fi
fi

# specialize names each export by the budget's label (0.6M -> 600K)
LABELS=$($PYTHON -c "import sys; from focusformer.budget import parse_budget
print(' '.join(parse_budget(b).label for b in sys.argv[1].split(',')))" "$BUDGETS")
picks=$ROOT/picks
if [ ! -f "$picks/${LABELS##* }/arch.json" ]; then
  draws=()
  [ "$SAMPLER" = focus ] || draws=(--draws uniform)
  $SPECIALIZE --checkpoint "$supernet" --budgets "$BUDGETS" "${draws[@]}" --export "$picks" --overwrite \
    --no-progress > "$ROOT/picks.txt" 2>&1
fi

train_pick() {  # BUDGET INIT EPOCHS
  local out=$ROOT/$1-$2-$3ep
  [ -f "$out/final.json" ] && return 0
  $TRAIN --subnet "$picks/$1" --init "$2" --epochs "$3" --seed "$SEED" "${DATA[@]}" --output "$out" \
    --overwrite --no-progress > "$out.log" 2>&1
}
for budget in $LABELS; do
  train_pick "$budget" inherited "$FT_EPOCHS" &
  train_pick "$budget" scratch "$SCRATCH_EPOCHS" &
done
wait

[ "${RANKING:-1}" = 0 ] && { echo "$ROOT: picks (inherited) in picks.txt; fine-tuned and retrained in */final.json"; exit 0; }
$PYTHON benchmarks/bench_ranking.py --run "$supernet" --root "$ROOT/ranking" --spread "$RANK_SPREAD" \
  --within "$RANK_WITHIN" --budget "$RANK_BUDGET" --epochs "$SCRATCH_EPOCHS" --seeds "$SEED" --jobs "$JOBS" "${DATA[@]}" \
  > "$ROOT/ranking.txt" 2>&1
echo "$ROOT: picks (inherited) in picks.txt; fine-tuned and retrained in */final.json; ranking in ranking.txt"
