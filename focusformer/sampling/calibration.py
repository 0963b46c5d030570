"""ViTAS's identity calibration: the identity-layer probability that puts uniform samples in a budget band.

For a budget ``B``, start at probability 0 and raise it in steps of ``step`` until the mean
MACs of ``samples`` uniform archs (each layer an identity with that probability, every
other decision uniform) is at most ``B``. The mean falls as the probability rises, so it is
then in ViTAS's band ``[0.9 B, B]`` unless one step jumps over the band (coarse spaces): the
first probability whose mean is at most ``B`` is kept either way, and its mean reported. If
even probability 1 leaves the mean above ``B`` (the stems alone cost more), 1 is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spaces import SearchSpace


@dataclass(frozen=True)
class IdentityCalibration:
    budget: float
    identity_prob: float
    mean_macs: float  # of the samples drawn at ``identity_prob``


def calibrate_identity(space: SearchSpace, budget: float, seed: int = 0, samples: int = 1000,
                       step: float = 0.01) -> IdentityCalibration:
    """The smallest probability on the ``step`` grid whose sample mean is at most ``budget``.

    Every probability is judged on the same random numbers (``seed``), so the mean falls
    monotonically as the probability rises and bisection over the grid finds what ViTAS's
    upward scan finds, in about 7 evaluations instead of up to 100.
    """
    macs = space.cost_model("macs")

    def mean_at(k: int) -> float:
        rng = np.random.default_rng(seed)
        prob = min(k * step, 1.0)
        codes = np.stack([space.encode(space.sample(rng, identity_prob=prob)) for _ in range(samples)])
        return float(macs.count(codes).mean())

    low, high = 0, int(round(1.0 / step))
    means = {high: mean_at(high)}
    if means[high] > budget:
        return IdentityCalibration(budget, 1.0, means[high])
    while low < high:  # invariant: mean_at(high) <= budget
        middle = (low + high) // 2
        means[middle] = mean_at(middle)
        if means[middle] <= budget:
            high = middle
        else:
            low = middle + 1
    return IdentityCalibration(budget, min(high * step, 1.0), means[high])
