"""Learning a voice: how far one speaker's features sit from the population's, from what the bot has heard.

A voice shifts every feature vector by an amount that has little to do with emotion (pitch range, timbre, the
microphone). The shift ``delta`` [shape=(d,)] is estimated from two kinds of notes, and the adapted head of a
model classifies ``x - delta``:

- **neutral reference notes** (``/emotion calibrate``): their class is known, so each gives
  ``x - mu[neutral]`` (``mu`` [shape=(c, d)]: the training population's class means);
- **everyday notes**, unlabelled: each gives ``x - q @ mu``, its residual after the class mean the model
  believes in (``q`` [shape=(c,)]: the cold head's probabilities). Subtracting the believed class's mean, not
  the population's overall mean, keeps a voice whose notes are mostly neutral from looking "sad" to itself.

    delta = (w_ref * sum(x_ref - mu[neutral]) + sum(x_i - q_i @ mu)) / (w_ref * k + n + tau)

``tau`` shrinks the estimate toward the population (0) until enough notes are heard; ``w_ref`` weighs a
reference note against an everyday one. Only sums are kept (``VoiceProfile``): no audio, no single note.
The head is trained on rows normalised the same way, each with a context drawn as at run time
(``training_offsets``), so it sees estimates as noisy as a real profile's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Contexts a training row is normalised with: (neutral references, everyday notes) pairs, drawn uniformly.
#: From one note to far more than a bot usually hears, so the head meets every stage of a profile.
CONTEXTS: tuple[tuple[int, int], ...] = (
    (1, 0),
    (3, 0),
    (0, 1),
    (0, 3),
    (0, 5),
    (0, 10),
    (0, 20),
    (0, 40),
    (3, 5),
    (3, 20),
)


@dataclass(frozen=True)
class AdaptConfig:
    """How a model turns a profile into an offset: shrinkage ``tau`` (in notes), the weight ``w_ref`` of a
    reference note, and the evidence (``w_ref * k + n``) from which the adapted head answers.

    Chosen on the corpora that may train only (``python -m bench.studies.adaptation``: unseen RAVDESS actors,
    nEMO → RAVDESS, RAVDESS → nEMO, mean over the adaptations of ``scoring.SPECS`` but cold): tau 2 and w_ref 1
    58.37 %, tau 5 / w_ref 1 58.36, tau 5 / w_ref 2 58.30, tau 10 / w_ref 2 58.05 (cold 56.46); SAVEE and EmoDB
    took no part. One everyday note is slightly worse than cold there (56.3 %), two are better (58.0 %), so the
    adapted head answers from an evidence of 2."""

    tau: float = 2.0
    w_ref: float = 1.0
    min_evidence: float = 2.0

    def to_dict(self) -> dict:
        return {"tau": self.tau, "w_ref": self.w_ref, "min_evidence": self.min_evidence}

    @classmethod
    def from_dict(cls, d: dict) -> AdaptConfig:
        return cls(float(d["tau"]), float(d["w_ref"]), float(d.get("min_evidence", 1.0)))


@dataclass
class VoiceProfile:
    """What is known of one voice: ``k`` neutral reference notes (their vectors' sum ``ref_sum``) and ``n``
    everyday notes (their vectors' sum ``note_sum`` [shape=(d,)] and their class probabilities' sum
    ``note_q`` [shape=(c,)] over ``labels``)."""

    k: int = 0
    ref_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n: int = 0
    note_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    note_q: np.ndarray = field(default_factory=lambda: np.zeros(0))
    labels: tuple[str, ...] = ()

    @property
    def dim(self) -> int | None:
        for a in (self.ref_sum, self.note_sum):
            if a.size:
                return int(a.size)
        return None

    @property
    def empty(self) -> bool:
        return self.k == 0 and self.n == 0

    def _fits(self, v: np.ndarray) -> None:
        if self.dim is not None and self.dim != v.size:  # built with another feature set: start again
            self.__init__()  # type: ignore[misc]

    def add_reference(self, x: np.ndarray) -> VoiceProfile:
        """Fold one neutral reference note's vector [shape=(d,)] in; returns self."""
        x = np.asarray(x, dtype=np.float64).ravel()
        self._fits(x)
        self.ref_sum = (self.ref_sum if self.k else np.zeros_like(x)) + x
        self.k += 1
        return self

    def add_note(self, x: np.ndarray, q: np.ndarray, labels: Sequence[str]) -> VoiceProfile:
        """Fold one everyday note in: its vector [shape=(d,)] and the cold head's probabilities [shape=(c,)]
        over ``labels``; returns self. Notes of a model with other classes start the notes part again."""
        x = np.asarray(x, dtype=np.float64).ravel()
        q = np.asarray(q, dtype=np.float64).ravel()
        self._fits(x)
        if self.n == 0 or tuple(labels) != self.labels or self.note_q.size != q.size:
            self.n, self.note_sum, self.note_q, self.labels = (
                0,
                np.zeros_like(x),
                np.zeros_like(q),
                tuple(labels),
            )
        self.note_sum = self.note_sum + x
        self.note_q = self.note_q + q
        self.n += 1
        return self

    def clear_references(self) -> VoiceProfile:
        self.k, self.ref_sum = 0, np.zeros(0)
        return self

    def to_dict(self) -> dict:
        return {
            "v": 2,
            "k": self.k,
            "ref_sum": self.ref_sum.tolist(),
            "n": self.n,
            "note_sum": self.note_sum.tolist(),
            "note_q": self.note_q.tolist(),
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, d: dict) -> VoiceProfile:
        """A stored profile; an older or damaged one is dropped (an empty profile), never trusted."""
        try:
            if d.get("v") != 2:
                return cls()
            p = cls(
                int(d["k"]),
                np.asarray(d["ref_sum"], dtype=np.float64),
                int(d["n"]),
                np.asarray(d["note_sum"], dtype=np.float64),
                np.asarray(d["note_q"], dtype=np.float64),
                tuple(str(x) for x in d["labels"]),
            )
        except (KeyError, TypeError, ValueError):
            return cls()
        arrays = (p.ref_sum, p.note_sum, p.note_q)
        ok = p.k >= 0 and p.n >= 0 and all(np.isfinite(a).all() for a in arrays)
        ok = ok and (p.k == 0 or p.ref_sum.ndim == 1) and (p.n == 0 or p.note_q.size == len(p.labels))
        if ok and p.k and p.n:
            ok = p.ref_sum.size == p.note_sum.size
        return p if ok else cls()


def class_means(X: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """The mean vector of each class of ``labels`` in rows ``X`` [shape=(n, d)] → [shape=(c, d)] (zeros for a
    class with no row)."""
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros((len(labels), X.shape[1]))
    for i, lab in enumerate(labels):
        rows = np.asarray(y) == lab
        if rows.any():
            out[i] = X[rows].mean(axis=0)
    return out


def offset(
    profile: VoiceProfile,
    means: np.ndarray,
    labels: Sequence[str],
    cfg: AdaptConfig,
) -> np.ndarray | None:
    """The voice's shift [shape=(d,)] (module docstring), or None below ``cfg.min_evidence`` or when the
    profile does not fit the model (another feature set)."""
    labels = tuple(labels)
    d = means.shape[1]
    if profile.dim is not None and profile.dim != d:
        return None
    num, weight = np.zeros(d), 0.0
    if profile.k and "neutral" in labels:
        num += cfg.w_ref * (profile.ref_sum - profile.k * means[labels.index("neutral")])
        weight += cfg.w_ref * profile.k
    if profile.n:
        # The probabilities were given over the classes of the model of the time: map them onto these.
        q = np.zeros(len(labels))
        for j, lab in enumerate(profile.labels):
            if lab in labels:
                q[labels.index(lab)] = profile.note_q[j]
        q *= profile.n / max(q.sum(), 1e-12)
        num += profile.note_sum - q @ means
        weight += profile.n
    if weight < cfg.min_evidence or weight == 0:
        return None
    return num / (weight + cfg.tau)


def describe(profile: VoiceProfile, *, adapted: bool) -> str:
    """What answered, for a reply's footer: ``none``, ``neutral reference 3``, ``profile 12 notes``, both."""
    if not adapted:
        return "none"
    parts = []
    if profile.k:
        parts.append(f"neutral reference {profile.k}")
    if profile.n:
        parts.append(f"profile {profile.n} note{'s' if profile.n != 1 else ''}")
    return " + ".join(parts) or "none"


def training_offsets(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    Q: np.ndarray,
    means: np.ndarray,
    labels: Sequence[str],
    cfg: AdaptConfig,
    *,
    seed: int = 0,
    contexts: Sequence[tuple[int, int]] = CONTEXTS,
) -> np.ndarray:
    """One offset per training row [shape=(n, d)], each from a context drawn as a profile would hold it: a
    ``(k, m)`` of ``contexts``, ``k`` neutral clips and ``m`` other clips of the row's own group (never the
    row itself), the latter with their cold probabilities ``Q`` [shape=(n, c)]. A group with fewer clips
    gives what it has; a row whose group has none to give gets offset 0 (the raw vector)."""
    labels = tuple(labels)
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros_like(X)
    neutral = np.asarray(y) == "neutral" if "neutral" in labels else np.zeros(len(y), dtype=bool)
    residual = X - Q @ means
    ref_residual = X - means[labels.index("neutral")] if "neutral" in labels else None
    sums, weights = np.zeros_like(X), np.zeros(len(X))
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        for i in rows:
            k, m = contexts[rng.integers(len(contexts))]
            others = rows[rows != i]
            refs = others[neutral[others]]
            refs = rng.choice(refs, min(k, refs.size), replace=False) if k and refs.size else refs[:0]
            pool = np.setdiff1d(others, refs)
            notes = rng.choice(pool, min(m, pool.size), replace=False) if m and pool.size else pool[:0]
            weight = cfg.w_ref * refs.size + notes.size
            if weight == 0:
                continue
            num = residual[notes].sum(axis=0)
            if refs.size and ref_residual is not None:
                num = num + cfg.w_ref * ref_residual[refs].sum(axis=0)
            sums[i], weights[i] = num, weight
    drawn = weights > 0
    out[drawn] = sums[drawn] / (weights[drawn, None] + cfg.tau)
    return out
