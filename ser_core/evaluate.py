"""Evaluation protocols and metrics.

- ``actors``: speaker-independent. Six actor-disjoint folds (``constants.ACTOR_FOLDS``); each fold's actors
  are tested by a model trained on the other eighteen. The number users should expect on their own voice.
- ``random``: the classic recipe's stratified 80/20 split, over five seeds. The same actor (often the same
  sentence, second take) lands on both sides, so this number is optimistic; it is reported for comparison.

Models are fitted on training folds only; nothing here looks at test labels before scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from .constants import ACTOR_FOLDS
from .datasets import group_corpus
from .errors import ConfigError, DatasetError
from .parallel import run_folds

PROTOCOLS = ("actors", "random")
RANDOM_SEEDS = (0, 1, 2, 3, 4)

#: fit(X_train, y_train, groups_train) -> predict_proba function over X_test; classes in ``labels`` order.
FitFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]


@dataclass
class Scores:
    """Metrics of one protocol over all its test predictions (pooled across folds)."""

    protocol: str
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    uar: float
    per_class: dict[str, float]
    confusion: np.ndarray
    n_files: int
    folds: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "uar": round(self.uar, 4),
            "per_class": {k: round(v, 4) for k, v in self.per_class.items()},
            "labels": list(self.labels),
            "confusion": self.confusion.tolist(),
            "n_files": self.n_files,
            "folds": self.folds,
        }


def metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, unweighted average recall, per-class recall and the confusion matrix
    (rows = true class, columns = predicted, in ``labels`` order)."""
    idx = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        cm[idx[t], idx[p]] += 1
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm).astype(float)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0
    )
    present = support > 0
    return {
        "accuracy": float(tp.sum() / max(1, cm.sum())),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {lab: float(recall[i]) for i, lab in enumerate(labels)},
        "confusion": cm,
    }


def splits(protocol: str, y: np.ndarray, groups: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, train_idx, test_idx) for each fold of ``protocol``."""
    n = len(y)
    if protocol == "actors":
        out = []
        # Several corpora: groups are "<corpus>:<speaker>". The folds are over one corpus's speakers (RAVDESS
        # when present, else the first); every clip of the other corpora is always on the training side.
        corpus_of = np.array([group_corpus(g) for g in groups.tolist()])
        names = list(dict.fromkeys(corpus_of.tolist()))
        home = "ravdess" if "ravdess" in names else names[0]
        local = {g.partition(":")[2] if ":" in g else g: g for g in groups[corpus_of == home].tolist()}
        ravdess = {a for fold in ACTOR_FOLDS for a in fold}
        if set(local) <= ravdess:
            folds = [{local[a] for a in f if a in local} for f in ACTOR_FOLDS]
        else:  # another corpus: six folds of whole speakers, round-robin in sorted order
            speakers = sorted(local.values())
            if len(speakers) < 2:
                raise DatasetError("the speaker-independent protocol needs clips from at least two speakers")
            k = min(6, len(speakers))
            folds = [set(speakers[i::k]) for i in range(k)]
        for fold in folds:
            test = np.flatnonzero(np.isin(groups, list(fold)))
            if test.size == 0:
                continue
            train = np.setdiff1d(np.arange(n), test)
            out.append(("+".join(sorted(fold)), train, test))
        return out
    if protocol == "random":
        out = []
        for seed in RANDOM_SEEDS:
            train, test = train_test_split(np.arange(n), test_size=0.2, stratify=y, random_state=seed)
            out.append((f"seed{seed}", np.sort(train), np.sort(test)))
        return out
    raise ConfigError(f"unknown protocol {protocol!r}; choose one of: {', '.join(PROTOCOLS)}")


def cross_validate(
    protocol: str,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    fit: FitFn,
    labels: Sequence[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    return_probs: bool = False,
    n_jobs: int | None = None,
):
    """Run ``protocol``: fit on each training part, predict its test part, pool the predictions. The folds are
    fitted side by side (``run_folds``, ``n_jobs`` threads).

    Returns ``Scores`` (and with ``return_probs`` also (probs [n, k], true-index [n]) in test order).
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    parts = splits(protocol, y, groups)
    if protocol == "actors":
        overlap = [p for p in parts if set(groups[p[1]]) & set(groups[p[2]])]
        assert not overlap, "speaker-independent folds must not share speakers"
    probs = run_folds(
        lambda part: fit(X[part[1]], y[part[1]], groups[part[1]])(X[part[2]]),
        parts,
        n_jobs=n_jobs,
        progress=progress,
    )
    return pooled_scores(protocol, parts, probs, y, labels, return_probs=return_probs)


def pooled_scores(
    protocol: str,
    parts: Sequence[tuple[str, np.ndarray, np.ndarray]],
    probs: Sequence[np.ndarray],
    y: np.ndarray,
    labels: Sequence[str],
    *,
    return_probs: bool = False,
):
    """``Scores`` of the test parts of ``parts`` (name, train_idx, test_idx) from each part's predicted
    probabilities [shape=(n_test, k)], classes in ``labels`` order."""
    y = np.asarray(y)
    y_true: list[str] = []
    y_pred: list[str] = []
    all_probs, all_true = [], []
    fold_rows = []
    for (name, _, te), P in zip(parts, probs, strict=True):
        pred = [labels[j] for j in P.argmax(axis=1)]
        y_true += y[te].tolist()
        y_pred += pred
        all_probs.append(P)
        all_true.append(np.array([labels.index(t) for t in y[te]]))
        fold_rows.append(
            {
                "fold": name,
                "n_test": int(te.size),
                "accuracy": round(float(np.mean(np.array(pred) == y[te])), 4),
            }
        )
    m = metrics(y_true, y_pred, labels)
    scores = Scores(
        protocol,
        tuple(labels),
        m["accuracy"],
        m["macro_f1"],
        m["uar"],
        m["per_class"],
        m["confusion"],
        len(y),
        fold_rows,
    )
    if return_probs:
        return scores, (np.vstack(all_probs), np.concatenate(all_true))
    return scores


def plot_confusion(scores: Scores, path: str, title: str | None = None) -> None:
    """Write the confusion matrix (row-normalised recall, counts in cells) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = scores.confusion.astype(float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    k = len(scores.labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * k, 0.8 + 0.7 * k), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), scores.labels, rotation=45, ha="right")
    ax.set_yticks(range(k), scores.labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                int(cm[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title or f"{scores.protocol}: accuracy {scores.accuracy:.1%}, UAR {scores.uar:.1%}")
    fig.colorbar(im, ax=ax, fraction=0.046, label="recall")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
