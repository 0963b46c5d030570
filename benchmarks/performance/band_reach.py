"""Benchmark: how often draws aimed at a budget's band land in it.

The sampler (the focus policy and attentive sampling's candidates in training, specialize's
candidates and rungs) aims each draw at the band ``[(1 - band) x budget, budget]``: at every
decision it keeps the choices whose exact cost bounds still reach the band, and falls back to
those within the budget when none does. Bounds reaching the band do not promise a completion inside it: on spaces with
identity layers, where dropping a layer jumps the cost by more than the band is wide, a draw can
be led past it and end below, still within the budget. This prints, per space and budget, the
share of draws below the band and whether every draw is within the budget, for uniform draws (the
masks alone, as specialize's ``--draws uniform`` and its exploration make them; a trained policy
draws under the same masks).

The ``target:`` line prints the largest share below the band where the band is reachable (some
arch of the space costs within it, found exactly from the cost table); the goal is none. Nothing is asserted; this only prints (and, with ``--json
PATH``, saves the figures). A budget above a space's largest subnet is drawn at the largest's
cost, as the sampler does.

Run, from the repository root::

    python -m benchmarks.performance.band_reach
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from benchmarks.lib.machine import print_header
from benchmarks.lib.output import report_of, save_report
from benchmarks.lib.tables import markdown
from focusformer.budget import parse_budgets
from focusformer.config import load_config
from focusformer.errors import ConfigError
from focusformer.sampling.sampler import ArchSampler
from focusformer.spaces.costs import LayeredCost

SPACES = "fashion-mnist,vitas-fashion-mnist,psvit-1d-fashion-mnist,psvit-2d-fashion-mnist"


def band_reachable(cost: LayeredCost, low: float, high: float) -> bool:
    """Whether some arch costs within ``[low, high]``: per network choice, the sums its layers'
    allowed options reach (a cost is base + one option's cost per layer), kept below ``high``
    (costs are not negative)."""
    for g in np.flatnonzero(~np.isnan(cost.base)):
        limit = high - cost.base[g]
        sums = np.zeros(1)
        for layer in range(cost.allowed.shape[0]):
            options = np.unique(cost.layer[layer, g][cost.allowed[layer, g]])
            sums = np.unique((sums[:, None] + options[None, :]).ravel())
            sums = sums[sums <= limit]
        if ((sums >= low - cost.base[g]) & (sums <= limit)).any():
            return True
    return False


def measure(name: str, budget_values: list[float], draws: int, seed: int) -> list[dict]:
    config = load_config(name)
    sampler = ArchSampler(config.space, band=config.target_band)
    cost = config.space.cost_model("macs")
    largest = cost.max_cost
    rows = []
    for asked in budget_values:
        budget = min(asked, largest)
        out = sampler.sample(torch.full((draws,), budget), generator=torch.Generator().manual_seed(seed), uniform=True)
        macs = out.macs.double()
        low = (1.0 - sampler.band) * budget
        rows.append({"space": name, "budget": asked, "drawn_at": budget, "band_low": low, "draws": draws,
                     "below_band": float((macs < low).double().mean()),
                     "in_band": float(((macs >= low) & (macs <= budget)).double().mean()),
                     "lowest_over_budget": float(macs.min() / budget),
                     "within_budget": bool((macs <= budget).all()),
                     "band_reachable": band_reachable(cost, low, budget)})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spaces", default=SPACES, help="comma-separated shipped configs (default: %(default)s)")
    parser.add_argument("--budgets", default="8M,15M,25M", help="MAC budgets (default: %(default)s)")
    parser.add_argument("--draws", type=int, default=4000, help="draws per space and budget (default: 4000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also save the figures as JSON")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    header = print_header("benchmarks.performance.band_reach", argv)
    print()
    try:
        values = [b.value for b in parse_budgets(args.budgets)]
        results = [row for name in args.spaces.split(",") for row in measure(name, values, args.draws, args.seed)]
    except ConfigError as error:
        parser.error(str(error))
    print(markdown(["space", "budget", "drawn at", "band reachable", "below the band", "in the band",
                    "lowest / budget", "all within budget"],
                   [[r["space"], f"{r['budget']:,.0f}", f"{r['drawn_at']:,.0f}", "yes" if r["band_reachable"] else "no",
                     f"{r['below_band']:.1%}", f"{r['in_band']:.1%}", f"{r['lowest_over_budget']:.2f}",
                     "yes" if r["within_budget"] else "NO"] for r in results]))
    reachable = [r for r in results if r["band_reachable"]]
    worst = max(reachable, key=lambda r: r["below_band"], default=None)
    target = {"goal": 0.0, "largest_below_band": worst["below_band"] if worst else None,
              "at": [worst["space"], worst["budget"]] if worst else None,
              "all_within_budget": all(r["within_budget"] for r in results)}
    where = f" ({worst['space']} at {worst['budget']:,.0f})" if worst else ""
    print(f"target: no draw below a reachable band: largest share {target['largest_below_band'] or 0:.1%}{where}; "
          f"every draw within its budget: {'yes' if target['all_within_budget'] else 'NO'}")
    return save_report(report_of(header, argv, args, target, results=results), args.json)


if __name__ == "__main__":
    main()
