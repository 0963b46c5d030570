"""The currencies study's tables, from the evaluated runs (``evaluate.py`` fills their caches).

1. Training cost (ViTAS's space): uniform at 16, 24 and 32 epochs against focus at 15, paired by
   seed; where uniform's answer meets focus's (linear in epochs between the measured ones), with
   the same crossing of the paired 95% t-interval's ends as its interval; the share of uniform's
   epochs that focus's 15 are.
2. Search cost (the 15-epoch focus supernets): specialize with 1-32 candidates, the data-free
   answer, the best of 32 uniform draws and AutoFormer's evolution (1,000 subnets): test top-1 and
   CPU seconds per budget; the fewest candidates whose mean test top-1 is within 0.2 points of
   evolution's, and how much faster it is (per-seed ratios, their geometric mean and its interval).
3. The reward on AutoFormer's space: focus with ``loss`` and with ``distill`` against uniform at
   equal compute, and against each other.
4. ViTAS's space against AutoFormer's, each trained as its config ships it (focus with the
   default reward, ``loss``) and with uniform sampling, paired by seed on one device.

    python -m benchmarks.studies.currencies.analyze ROOT --out benchmarks/studies/currencies/results
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmarks.lib.jobs import finished_runs
from benchmarks.lib.stats import Summary, paired_by_seed, ratio_by_seed
from benchmarks.lib.tables import markdown
from benchmarks.quality import evaluate
from benchmarks.studies.currencies.evaluate import BUDGETS, COMMON, measures
from benchmarks.studies.currencies.train import SEEDS

LABELS = BUDGETS.split(",")
UNIFORM_EPOCHS = (16, 24, 32)
FOCUS_EPOCHS = 15
#: Specialize counts as matching evolution within this many points of test top-1.
EQUAL_WITHIN = 0.2
REWARD_ARMS = ("auniform16", "afocusloss15", "afocusdistill15")


def finished(root: Path, arm: str) -> list[Path]:
    return finished_runs(root, arm, SEEDS)


def groups(root: Path, arms: list[str]) -> list[str]:
    return [f"{arm}={','.join(str(run) for run in finished(root, arm))}" for arm in arms]


def evaluated(root: Path, arms: list[str], out: Path, name: str, only: str | None = None) -> tuple[dict, str]:
    """Run benchmarks.quality.evaluate over ``arms`` (from the caches) and keep its JSON and tables;
    ``only`` limits the measures to those a table needs (comma-separated)."""
    all_measures = sorted({m for arm in arms for m in measures(arm).split(",")}, key=evaluate.MEASURES.index)
    if only:
        all_measures = [m for m in all_measures if m in only.split(",")]
    report, tables = evaluate.evaluated_report(groups(root, arms), all_measures, COMMON, out / f"{name}.json")
    (out / f"{name}.md").write_text(tables)
    return report, tables


def by_seed(report: dict, group: str, column: str) -> dict[int, float]:
    return {int(seed): row[column] for seed, row in report["runs"][group].items() if column in row}


def crossing(epochs: tuple[int, ...], values: list[float]) -> float:
    """Where ``values`` (uniform minus focus, at ``epochs``) first reaches 0, linearly between the
    measured epochs: below the first if it is already there, ``inf`` if it never is."""
    if values[0] >= 0:
        return float(epochs[0]) if values[0] == 0 else -math.inf
    for (e0, v0), (e1, v1) in zip(zip(epochs, values), zip(epochs[1:], values[1:])):
        if v1 >= 0:
            return e0 + (e1 - e0) * (0 - v0) / (v1 - v0)
    return math.inf


def epochs_text(value: float, epochs: tuple[int, ...]) -> str:
    if value == math.inf:
        return f"> {epochs[-1]}"
    if value == -math.inf:
        return f"< {epochs[0]}"
    return f"{value:.1f}"


def training_cost(root: Path, out: Path) -> str:
    epochs = tuple(e for e in UNIFORM_EPOCHS if finished(root, f"vuniform{e}"))
    missing = [e for e in UNIFORM_EPOCHS if e not in epochs]
    arms = ["vfocus15", *(f"vuniform{e}" for e in epochs)]
    report, tables = evaluated(root, arms, out, "training-cost", only="draws,picks,cloud")
    rows = []
    for column in [f"{label} answer" for label in LABELS] + ["hypervolume"]:
        focus = by_seed(report, "vfocus15", column)
        uniform = [by_seed(report, f"vuniform{e}", column) for e in epochs]
        pairs = [paired_by_seed(u, focus) for u in uniform]
        # The crossing compares epochs on the same seeds: those every arm has.
        common = set(focus).intersection(*uniform)
        on_common = [paired_by_seed({s: u[s] for s in common}, focus) for u in uniform]
        needed = crossing(epochs, [p.mean for p in on_common])
        share = f"{100 * FOCUS_EPOCHS / needed:.0f}%" if math.isfinite(needed) and needed > 0 else "-"
        if len(common) < 2:
            interval = "- (fewer than two seeds common to every arm)"
        else:
            sooner = crossing(epochs, [p.interval[1] for p in on_common])
            later = crossing(epochs, [p.interval[0] for p in on_common])
            interval = f"[{epochs_text(sooner, epochs)}, {epochs_text(later, epochs)}]"
        digits = 4 if column == "hypervolume" else 2
        rows.append([column, *(p.format(digits) for p in pairs), epochs_text(needed, epochs), interval, share,
                     ", ".join(map(str, sorted(common)))])
    header = ["measure", *(f"uniform {e} - focus {FOCUS_EPOCHS}" for e in epochs),
              "uniform meets focus at (epochs)", "interval", "focus's 15 epochs as a share", "crossing's seeds"]
    note = (f"\nNot trained: uniform at {', '.join(map(str, missing))} epochs.\n" if missing else "")
    policy = [[label, paired_by_seed(by_seed(report, "vfocus15", f"{label} picks"),
                                     by_seed(report, "vfocus15", f"{label} draws")).format()] for label in LABELS]
    policy_table = ("\nOn focus's own supernets, the policy's picks minus the best of 32 uniform draws (paired by "
                    "seed):\n\n" + markdown(["budget", "picks - draws"], policy) + "\n")
    return "## 1. Training cost\n\n" + markdown(header, rows) + "\n" + note + policy_table + "\n" + tables


def speedup(evolution_s: dict[int, float], seconds: dict[int, float]) -> str:
    """Evolution's CPU seconds over this answer's, paired by seed: geometric mean [95% t-interval]."""
    ratio, (low, high) = ratio_by_seed(evolution_s, seconds)
    return f"{ratio:.0f}x" + (f" [{low:.0f}, {high:.0f}]" if math.isfinite(low) else "")


def candidates(k: int) -> str:
    return f"specialize, {k} candidate{'s' if k > 1 else ''}"


def search_cost(root: Path, out: Path) -> str:
    report, _ = evaluated(root, ["vfocus15"], out, "search-cost")
    runs = report["runs"]["vfocus15"]
    counts = sorted({int(c.split("k=")[1].split()[0]) for row in runs.values() for c in row if " k=" in c})
    rows = []
    for label in LABELS:
        def column(name: str) -> dict[int, float]:
            return {int(s): row[name] for s, row in runs.items() if name in row}

        evolution, evolution_s = column(f"{label} evolution"), column(f"{label} evolution s")
        entries = [(candidates(k), column(f"{label} k={k}"), column(f"{label} k={k} s")) for k in counts]
        entries += [("data-free answer", column(f"{label} datafree"), column(f"{label} datafree s")),
                    ("best of 32 uniform draws", column(f"{label} draws"), {}),
                    ("evolution, 50 x 20", evolution, evolution_s)]
        matching = next((k for k in counts if Summary.of(list(column(f"{label} k={k}").values())).mean
                         >= Summary.of(list(evolution.values())).mean - EQUAL_WITHIN), None)
        for name, top1, seconds in entries:
            against = paired_by_seed(top1, evolution) if name.startswith(("specialize", "data", "best")) else None
            speed = speedup(evolution_s, seconds) if seconds and not name.startswith("evolution") else "-"
            mark = " (fewest within 0.2 of evolution)" if matching is not None and name == candidates(matching) else ""
            rows.append([label, name + mark, Summary.of(list(top1.values())).format(),
                         against.format() if against else "-",
                         Summary.of(list(seconds.values())).format(3 if max(seconds.values()) < 0.1 else 1)
                         if seconds else "-", speed])
        free = paired_by_seed(column(f"{label} datafree"), column(f"{label} k={counts[-1]}"))
        rows.append([label, f"data-free - {candidates(counts[-1])}", "-", free.format(), "-", "-"])
    header = ["budget", "answer", "test top-1", "minus evolution (paired)", "CPU seconds",
              "faster than evolution (geometric mean over seeds [95% t-interval])"]
    # Specialize as run answers the three budgets in one call; evolution searches each apart.
    call = {int(s): row["picks call s"] for s, row in runs.items() if "picks call s" in row}
    evolution_all = {int(s): sum(row[f"{label} evolution s"] for label in LABELS) for s, row in runs.items()
                     if all(f"{label} evolution s" in row for label in LABELS)}
    whole = (f"\nSpecialize as run (`--budgets {','.join(LABELS)}`, 32 candidates), one call for the three "
             f"budgets: {Summary.of(list(call.values())).format(1)} CPU seconds, against "
             f"{Summary.of(list(evolution_all.values())).format(1)} for evolution's three searches: "
             f"{speedup(evolution_all, call)} less CPU.\n" if call and evolution_all else "")
    return "## 2. Search cost\n\n" + markdown(header, rows) + "\n" + whole


def reward(root: Path, out: Path) -> str:
    report, tables = evaluated(root, list(REWARD_ARMS), out, "reward")
    rows = []
    for column in [f"{label} answer" for label in LABELS] + ["hypervolume"]:
        loss, distill = by_seed(report, "afocusloss15", column), by_seed(report, "afocusdistill15", column)
        rows.append([column, paired_by_seed(loss, distill).format(4 if column == "hypervolume" else 2)])
    return ("## 3. The reward on AutoFormer's space\n\n" + tables + "\n\nloss - distill, paired by seed:\n\n"
            + markdown(["measure", "loss - distill"], rows) + "\n")


def spaces(root: Path, out: Path) -> str:
    shipped = evaluated(root, ["afocusloss15", "vfocus15"], out, "spaces-shipped", only="draws,picks")[1]
    uniform = evaluated(root, ["auniform16", "vuniform16"], out, "spaces-uniform", only="draws")[1]
    return ("## 4. ViTAS's space against AutoFormer's\n\nAs each config ships (focus, 15 epochs, the "
            "default reward `loss`):\n\n" + shipped + "\n\nWith uniform sampling (16 epochs):\n\n"
            + uniform + "\n")


PARTS = {"training": training_cost, "search": search_cost, "reward": reward, "spaces": spaces}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}; all of them write report.md, fewer "
                             "report-<parts>.md")
    args = parser.parse_args(argv)
    asked = args.parts.split(",")
    if unknown := [name for name in asked if name not in PARTS]:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    # The AutoFormer-space parts wait until every reward arm has a finished run.
    names = [name for name in asked
             if name not in ("reward", "spaces") or all(finished(args.root, arm) for arm in REWARD_ARMS)]
    report = "\n".join(PARTS[name](args.root, args.out) for name in names)
    # A partial report gets a name of its own, so it never replaces the combined one.
    name = "report.md" if set(asked) == set(PARTS) else f"report-{'-'.join(asked)}.md"
    (args.out / name).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
