"""Quality measures of probability predictions y ~ p."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

Array = NDArray[np.float64]


def auc(y: Array, p: Array) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: Array, p: Array) -> float:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def ece(y: Array, p: Array, bins: int = 10) -> float:
    """Expected calibration error over equal-count bins of p: sum_b (n_b / N) |mean p - mean y|."""
    order = np.argsort(p, kind="stable")
    total = 0.0
    for part in np.array_split(order, bins):
        if part.size:
            total += part.size * abs(float(p[part].mean()) - float(y[part].mean()))
    return total / float(p.shape[0])
