"""Pareto fronts of (MACs, top-1) points and the hypervolume they dominate.

Pure numpy, no torch: fewer MACs is better, higher accuracy is better. A point is
on the front when no other point has fewer-or-equal MACs *and* higher-or-equal
accuracy (and differs from it); of exact duplicates only the first is kept, so the
front is a strict staircase: MACs and accuracy both increase along it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _as_points(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, 2)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"expected points of shape (N, 2) as (macs, top1), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("points must be finite numbers")
    return array


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Indices of the non-dominated ``(macs, top1)`` points, in increasing MACs.

    ``points`` is anything shaped ``(N, 2)``, in any order. A point is dominated when
    another one has fewer-or-equal MACs and higher-or-equal accuracy; among exact
    duplicates the one with the lowest index is kept. Along the returned indices both
    MACs and accuracy strictly increase, so ``points[front]`` traces the step function
    "best accuracy reachable with at most x MACs". An empty input gives an empty array.
    """
    array = _as_points(points)
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    index = np.arange(len(array))
    # Sort by MACs ascending, then accuracy descending, then index (lexsort: last key first).
    order = np.lexsort((index, -array[:, 1], array[:, 0]))
    front = []
    best = -np.inf
    for i in order:
        if array[i, 1] > best:  # strictly better than every point with fewer-or-equal MACs
            front.append(int(i))
            best = array[i, 1]
    return np.asarray(front, dtype=np.int64)


def hypervolume(points: Sequence[Sequence[float]] | np.ndarray, macs_range: tuple[float, float]) -> float:
    """Area dominated by ``(macs, top1)`` points in the normalised plane, in ``[0, 1]``.

    MACs map to ``(macs - lo) / (hi - lo)`` for ``macs_range = (lo, hi)`` (the space's
    smallest and largest subnet) and top-1 percent to ``top1 / 100``; both are clipped
    to ``[0, 1]``. The reference point is ``(1, 0)``: the result is the area of the
    union of the rectangles ``[x_i, 1] x [0, y_i]``, so a single point of the smallest
    subnet at 100 % scores 1 and the largest subnet alone scores 0. Dominated points
    add nothing; only the Pareto front counts. When ``lo == hi`` (a space of one
    size) every point within it sits at ``x = 0``.
    """
    lo, hi = float(macs_range[0]), float(macs_range[1])
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ValueError(f"macs_range must be finite (low, high) with low <= high, got {macs_range}")
    array = _as_points(points)
    if len(array) == 0:
        return 0.0
    if hi > lo:
        x = np.clip((array[:, 0] - lo) / (hi - lo), 0.0, 1.0)
    else:
        x = np.where(array[:, 0] <= hi, 0.0, 1.0)
    y = np.clip(array[:, 1] / 100.0, 0.0, 1.0)
    normalised = np.stack([x, y], axis=1)
    front = normalised[pareto_front(normalised)]  # x and y strictly increasing
    widths = np.diff(np.append(front[:, 0], 1.0))
    return float(np.sum(widths * front[:, 1]))
