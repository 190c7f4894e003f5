"""Calibrated confidence: temperature scaling, expected calibration error, reliability diagrams.

A network trained to zero training loss is over-confident on voices it never heard ("calm 100 %"). One
temperature ``T`` divides every network's logits before the softmax; it is fitted by minimising the negative
log-likelihood of out-of-fold predictions on training speakers, so test speakers are never used. One
network's argmax never changes; the ensemble averages the networks' softmaxes *after* scaling, so where they
disagree the top class can move (shipped recipe, nested: 57.0 % → 56.7 % accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

T_MIN, T_MAX = 0.05, 20.0


def ensemble_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Mean softmax of per-network logits [shape=(k, n, c)] at ``temperature`` → [shape=(n, c)]."""
    z = logits / temperature
    z = z - z.max(axis=2, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=2, keepdims=True)).mean(axis=0)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the NLL of true class indices ``y`` [shape=(n,)] under ``ensemble_probs``."""
    return fit_temperature_pooled([(logits, y, 1.0)])


def fit_temperature_pooled(sets: Sequence[tuple[np.ndarray, np.ndarray, float]]) -> float:
    """One temperature for several sets of predictions ``(logits [shape=(k, n, c)] or [shape=(n, c)], true
    class indices [shape=(n,)], weight)``: it minimises the weighted sum of each set's mean NLL, so a set's
    say does not grow with its size. The sets may have different classes (``c``)."""
    prepared = []
    for logits, y, w in sets:
        logits = np.asarray(logits, dtype=np.float64)
        prepared.append((logits[None] if logits.ndim == 2 else logits, np.asarray(y, dtype=int), float(w)))
    total = sum(w for *_, w in prepared)

    def nll(log_t: float) -> float:
        t = float(np.exp(log_t))
        out = 0.0
        for logits, y, w in prepared:
            p = ensemble_probs(logits, t)[np.arange(y.size), y]
            out += w * float(-np.log(np.clip(p, 1e-12, 1)).mean())
        return out / total

    res = minimize_scalar(nll, bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded")
    return float(np.exp(res.x))


def ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: |accuracy − confidence| of the top class, weighted over ``n_bins`` bins."""
    conf = probs.max(axis=1)
    hit = probs.argmax(axis=1) == np.asarray(y)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(total)


def reliability_diagram(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str, n_bins: int = 10
) -> None:
    """PNG of accuracy against confidence for each ``name: (probs, y)``, with the diagonal."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], "k:", label="perfect")
    for name, (probs, y) in curves.items():
        conf = probs.max(axis=1)
        hit = probs.argmax(axis=1) == np.asarray(y)
        bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
        xs, ys = [], []
        for b in range(n_bins):
            m = bins == b
            if m.sum() >= 5:
                xs.append(conf[m].mean())
                ys.append(hit[m].mean())
        ax.plot(xs, ys, "o-", label=f"{name} (ECE {ece(probs, y):.3f})")
    ax.set_xlabel("confidence of the top class")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title("Reliability, speaker-independent folds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
