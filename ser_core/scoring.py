"""What a model does on labelled voices, cold and after it has learned each voice: the adaptation curve.

For every speaker of a labelled set, each adaptation (``SPECS``) draws, with a seeded generator, the notes the
bot would have heard first: ``neutral-k`` takes k of the speaker's neutral clips as reference notes,
``profile-n`` folds n of the speaker's clips in as everyday notes (in random order, each with the cold head's
probabilities, as the bot does), ``profile-20-skewed`` makes 70 % of those 20 neutral or calm where the
speaker has them (how people talk), and ``neutral-3+profile-20`` both. Those notes are not scored; the
speaker's other clips are. A speaker without enough clips for an adaptation is left out of it and counted.

Used by ``ser score`` (the shipped model on anyone's folder) and ``python -m bench corpora``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .adapt import VoiceProfile
from .calibration import ece as expected_calibration_error
from .evaluate import metrics

SPECS: tuple[str, ...] = (
    "none",
    "neutral-1",
    "neutral-3",
    "profile-5",
    "profile-10",
    "profile-20",
    "profile-20-skewed",
    "neutral-3+profile-20",
)
SKEW = 0.7  # the share of neutral or calm notes in a skewed stream
COVERAGE = 0.8


@dataclass(frozen=True)
class Spec:
    """An adaptation: ``k`` neutral references, ``n`` everyday notes, ``skewed`` stream."""

    name: str
    k: int = 0
    n: int = 0
    skewed: bool = False

    @classmethod
    def parse(cls, name: str) -> Spec:
        k = n = 0
        skewed = False
        for part in name.split("+"):
            kind, _, rest = part.partition("-")
            if kind == "none" and name == "none":
                continue
            count, _, tail = rest.partition("-")
            if kind == "neutral" and count.isdigit() and not tail:
                k = int(count)
            elif kind == "profile" and count.isdigit() and tail in ("", "skewed"):
                n, skewed = int(count), tail == "skewed"
            else:
                raise ValueError(f"unknown adaptation {name!r}; choose from {', '.join(SPECS)}")
        return cls(name, k, n, skewed)

    def draw(self, idx: np.ndarray, y: np.ndarray, rng: np.random.Generator):
        """(reference rows, note rows, scored rows) of one speaker's rows ``idx``, or None if it lacks them."""
        none = idx[:0]
        neutral = idx[y[idx] == "neutral"]
        if self.k > neutral.size:
            return None
        refs = rng.choice(neutral, self.k, replace=False) if self.k else none
        rest = np.setdiff1d(idx, refs)
        notes = none
        if self.n:
            if rest.size < self.n + 1:  # at least one clip left to score
                return None
            if self.skewed:
                calm = rest[np.isin(y[rest], ["neutral", "calm"])]
                a = min(calm.size, int(round(SKEW * self.n)))
                other = np.setdiff1d(rest, calm)
                if other.size < self.n - a + 1:
                    return None
                notes = np.concatenate(
                    [rng.choice(calm, a, replace=False), rng.choice(other, self.n - a, replace=False)]
                )
                rng.shuffle(notes)
            else:
                notes = rng.choice(rest, self.n, replace=False)
        return refs, notes, np.setdiff1d(rest, notes)


def adapted_probabilities(model, X: np.ndarray, cold: np.ndarray, refs, notes, scored) -> np.ndarray:
    """The model's probabilities for rows ``scored`` of ``X`` after the profile of ``refs`` and ``notes``
    (``cold`` [shape=(n, c)]: the cold head's probabilities of every row, which the notes are folded in with)."""
    profile = VoiceProfile()
    for i in refs:
        profile.add_reference(X[i])
    for i in notes:
        profile.add_note(X[i], cold[i], model.labels)
    delta = model.voice_offset(profile)
    if delta is None:
        return cold[scored]
    return model.adapted_proba(X[scored], delta)


def curve(
    model,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    specs: Sequence[str] = SPECS,
    *,
    seeds: Sequence[int] = (0, 1, 2),
) -> dict[str, dict]:
    """Scores of ``model`` on rows ``X`` [shape=(n, d)] with labels ``y`` and speakers ``groups`` under each
    adaptation of ``specs`` (module docstring), pooled over the ``seeds`` draws: ``pooled_curve`` of one part."""
    return pooled_curve([(model, X, y, groups)], specs, seeds=seeds)


def pooled_curve(
    parts: Sequence[tuple], specs: Sequence[str] = SPECS, *, seeds: Sequence[int] = (0, 1, 2)
) -> dict[str, dict]:
    """``curve`` over several ``(model, X, y, groups)`` parts pooled (cross-validation folds, each scored by
    its own model). Clips of a class a part's model does not know are left out (``_["unknown_class"]``).

    Per adaptation: ``accuracy`` of the answer over all the model's classes (as the bot answers),
    ``accuracy_own_classes`` with the answer restricted to the classes the set has, ``uar`` of that
    restricted answer, ``ece`` of the bot's answer, ``accuracy_at_80`` (its 80 % most confident answers),
    ``scored`` clips and ``speakers_left_out`` (too few clips for it); fractions 0–1."""
    pooled: dict[str, list] = {name: [[], [], 0] for name in specs}
    unknown, classes, labels = 0, set(), None
    for model, X, y, groups in parts:
        labels = tuple(model.labels)
        y = np.asarray(y).astype(str)
        groups = np.asarray(groups).astype(str)
        known = np.isin(y, labels)
        unknown += int((~known).sum())
        X, y, groups = np.asarray(X)[known], y[known], groups[known]
        classes |= set(y.tolist())
        cold = model.predict_proba(X)
        for name in specs:
            spec = Spec.parse(name)
            for seed in seeds:
                rng = np.random.default_rng(seed)
                for speaker in sorted(set(groups.tolist())):
                    drawn = spec.draw(np.flatnonzero(groups == speaker), y, rng)
                    if drawn is None:
                        pooled[name][2] += 1
                        continue
                    refs, notes, scored = drawn
                    pooled[name][0].append(adapted_probabilities(model, X, cold, refs, notes, scored))
                    pooled[name][1].append(y[scored])
    own = [labels.index(lab) for lab in labels if lab in classes] if labels else []
    out = {
        name: _scores(P, t, labels, own) | {"speakers_left_out": left // max(1, len(seeds))}
        for name, (P, t, left) in pooled.items()
    }
    out["_"] = {"unknown_class": unknown, "classes": [labels[i] for i in own]}
    return out


def _scores(probs: list, truth: list, labels: tuple[str, ...], own: list[int]) -> dict:
    if not probs:
        return {k: None for k in ("accuracy", "accuracy_own_classes", "uar", "ece", "accuracy_at_80")} | {
            "scored": 0
        }
    P, t = np.vstack(probs), np.concatenate(truth)
    names = np.array(labels)
    answer = names[P.argmax(axis=1)]
    restricted = names[np.array(own)[P[:, own].argmax(axis=1)]]
    hit = answer == t
    conf = P.max(axis=1)
    top = np.argsort(-conf, kind="stable")[: max(1, int(round(COVERAGE * len(t))))]
    truth_idx = np.array([labels.index(v) for v in t])
    return {
        "accuracy": round(float(hit.mean()), 4),
        "accuracy_own_classes": round(float((restricted == t).mean()), 4),
        "uar": round(metrics(t.tolist(), restricted.tolist(), [labels[i] for i in own])["uar"], 4),
        "ece": round(expected_calibration_error(P, truth_idx), 4),
        "accuracy_at_80": round(float(hit[top].mean()), 4),
        "scored": int(len(t)),
    }
