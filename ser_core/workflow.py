"""Whole jobs on a data folder: evaluate a preset under a protocol; train a model with its card.

These are what ``ser train`` / ``ser evaluate`` (and the bot's retraining) run.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import adapt, scoring
from .augment import parse_augment
from .cache import extract_files
from .calibration import ece, ensemble_probs, fit_temperature, fit_temperature_pooled, reliability_diagram
from .constants import EMOTIONS
from .datasets import Clip, clip_corpus, corpus_info, corpus_name, load_corpora
from .errors import ConfigError, DatasetError
from .evaluate import Scores, cross_validate, metrics, pooled_scores, splits
from .features import FeatureConfig
from .model import Model
from .parallel import run_folds
from .presets import (  # noqa: F401  (PRESET_PARAMS, PRESET_AUGMENT, ENCODER_PARAMS: their old home)
    DEFAULT_PRESET,
    ENCODER_PARAMS,
    PRESET_AUGMENT,
    PRESET_PARAMS,
    get_preset,
    preset_augment,
    preset_parts,
)
from .train import (
    MLPParams,
    canonical_labels,
    fit,
    fit_adaptive,
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Dataset:
    """Clips and their feature vectors ``X`` [shape=(n, d)], labels and speakers [shape=(n,)].

    ``augmented`` maps an augmentation name to the vectors of one augmented copy of every clip
    [shape=(n, d)]; they enter training only through ``training_set``, never a test part.
    """

    clips: list[Clip]
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    description: dict
    augmented: dict[str, np.ndarray] = field(default_factory=dict)
    #: The corpus of each clip [shape=(n,)] (``Clip.corpus``).
    corpora: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))

    @property
    def may_train(self) -> np.ndarray:
        """Whether each clip's corpus may train a model [shape=(n,), bool] (``CorpusInfo.may_train``)."""
        return np.array([corpus_info(c).may_train for c in self.corpora.tolist()], dtype=bool)

    def subset(self, rows: np.ndarray) -> Dataset:
        """The clips ``rows`` (and their augmented copies) as a dataset of their own."""
        corpora = sorted(set(self.corpora[rows].tolist()))
        desc = {
            **self.description,
            "n_clips": int(len(rows)),
            "n_speakers": len(set(self.groups[rows].tolist())),
            "classes": list(canonical_labels(self.y[rows].tolist())),
            "corpora": {c: v for c, v in self.description.get("corpora", {}).items() if c in corpora},
        }
        return Dataset(
            [self.clips[i] for i in rows],
            self.X[rows],
            self.y[rows],
            self.groups[rows],
            desc,
            {k: A[rows] for k, A in self.augmented.items()},
            self.corpora[rows],
        )

    def training_set(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, groups) to train on for the clips ``rows``: the clips plus their augmented copies. Each copy's
        group is ``"<speaker>~<augmentation>"``, so speaker normalisation treats a channel like a new voice."""
        Xs, ys, gs = [self.X[rows]], [self.y[rows]], [self.groups[rows]]
        for name, A in self.augmented.items():
            Xs.append(A[rows])
            ys.append(self.y[rows])
            gs.append(np.char.add(self.groups[rows].astype(str), f"~{name}"))
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(gs)

    def fitter(self, features: FeatureConfig, params: MLPParams):
        """A ``cross_validate`` fit function over row numbers [shape=(n, 1)] of this dataset: trains on the
        training rows' ``training_set`` and predicts the test rows' clean vectors."""

        def fit_rows(rows: np.ndarray, y, groups):
            X, y, g = self.training_set(rows[:, 0])
            model = fit(X, y, features=features, params=params, groups=g)
            return lambda test_rows: model.predict_proba(self.X[test_rows[:, 0]])

        return fit_rows

    @property
    def rows(self) -> np.ndarray:
        """Row numbers [shape=(n, 1)], the ``X`` to give ``cross_validate`` together with ``fitter``."""
        return np.arange(len(self.y))[:, None]


def parse_classes(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"calm,happy,sad"`` → canonical tuple; ``ConfigError`` naming unknown classes."""
    if spec is None or spec == "" or spec == ():
        return None
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown:
        raise ConfigError(
            f"unknown class {', '.join(map(repr, unknown))}; choose from: {', '.join(EMOTIONS)}"
        )
    if len(set(names)) < 2:
        raise ConfigError("--classes needs at least two different emotions")
    return canonical_labels(names)


def fit_preset(preset: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray) -> Model:
    """``preset``'s classifier fitted on ``X`` [shape=(n, d)] (``groups`` [shape=(n,)]: for its weighting)."""
    features, params = preset_parts(preset)
    return fit(X, y, features=features, params=params, groups=groups)


def load_features(
    data: str | Path | Sequence[str | Path],
    features: FeatureConfig,
    *,
    classes: tuple[str, ...] | None = None,
    extra_clips: Sequence[Clip] = (),
    progress: Progress | None = None,
    n_jobs: int | None = None,
    cache: bool = True,
    augment: Sequence[str] = (),
) -> Dataset:
    """Scan ``data`` (one folder, RAVDESS or labelled, or several corpus folders), add ``extra_clips``, extract
    (cached) features, and those of one copy of every clip per ``augment`` name.

    With one folder the groups are its speaker ids; with several they are ``"<corpus>:<speaker>"``, so two
    corpora's speaker "01" stay two people."""
    roots = [data] if isinstance(data, (str, Path)) else list(data)
    report = load_corpora(roots)
    clips = list(report.clips) + list(extra_clips)
    if classes:
        clips = [c for c in clips if c.emotion in classes]
        if not clips:
            raise DatasetError(
                f"no clips of the classes {', '.join(classes)} in {', '.join(map(str, roots))}"
            )
    cb = (lambda done, total: progress("features", done, total)) if progress else False
    X = extract_files([c.path for c in clips], features, cache_dir=cache, n_jobs=n_jobs, progress=cb)
    augmented = {}
    for name in parse_augment(tuple(augment)):
        cb = (lambda done, total, name=name: progress(f"augment:{name}", done, total)) if progress else False
        augmented[name] = extract_files(
            [c.path for c in clips],
            features,
            cache_dir=cache,
            n_jobs=n_jobs,
            progress=cb,
            desc=f"augment:{name}",
            augment=name,
        )
    y = np.array([c.emotion for c in clips])
    groups = np.array([c.group if len(roots) > 1 else c.speaker for c in clips])
    corpora = np.array([c.corpus for c in clips])
    names = list(dict.fromkeys(clip_corpus(r) for r in roots))
    desc = {
        "folder": ", ".join(Path(r).name for r in roots),
        "corpora": {
            n: {
                "n_clips": int((corpora == n).sum()),
                "n_speakers": len({g for g, c in zip(groups, corpora, strict=True) if c == n}),
                **asdict(corpus_info(n)),
            }
            for n in names
        },
        "n_clips": len(clips),
        "n_speakers": len(set(groups.tolist())),
        "n_extra_clips": len(extra_clips),
        "classes": list(canonical_labels(y.tolist())),
        "skipped": len(report.skipped),
        "augmented": list(augmented),
    }
    return Dataset(clips, X, y, groups, desc, augmented, corpora)


def evaluate_dataset(ds: Dataset, protocol: str, preset: str, *, progress: Progress | None = None) -> Scores:
    """Cross-validate ``preset`` on ``ds`` under ``protocol`` (fits only on each training part)."""
    labels = canonical_labels(ds.y.tolist())
    cb = (lambda done, total: progress(f"evaluate:{protocol}", done, total)) if progress else None
    return cross_validate(
        protocol, ds.rows, ds.y, ds.groups, ds.fitter(*preset_parts(preset)), labels, progress=cb
    )


@dataclass
class Transfer:
    """A model trained without corpus ``held``, scored on it: per-network logits [shape=(k, n, c)] over the
    ``classes`` both sides have (the other outputs dropped), the true class indices [shape=(n,)], and the
    held-out rows of the dataset [shape=(n,)]."""

    held: str
    classes: tuple[str, ...]
    logits: np.ndarray
    truth: np.ndarray
    rows: np.ndarray
    #: The adapted head's logits of the same rows, each normalised by a profile drawn from its own speaker's
    #: other clips (``adapted_logits``); None for a model without that head.
    adapted: np.ndarray | None = None

    @classmethod
    def of(cls, model: Model, ds: Dataset, held: str) -> Transfer:
        present = set(ds.y[ds.corpora == held].tolist())
        shared = tuple(lab for lab in model.labels if lab in present)
        rows = np.flatnonzero((ds.corpora == held) & np.isin(ds.y, shared))
        cols = [model.labels.index(lab) for lab in shared]
        truth = np.array([shared.index(v) for v in ds.y[rows]], dtype=int)
        adapted = adapted_logits(model, ds.X[rows], ds.y[rows], ds.groups[rows])
        return cls(
            held,
            shared,
            model.network_logits(ds.X[rows])[:, :, cols],
            truth,
            rows,
            None if adapted is None else adapted[:, :, cols],
        )


def adapted_logits(model: Model, X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0):
    """The adapted head's per-network logits [shape=(k, n, c)] of rows ``X`` of speakers ``groups``, each row
    normalised by a profile drawn from its speaker's other rows (``adapt.training_offsets``: the contexts a
    training row gets; their notes carry the cold head's probabilities, as the bot's do). None without that
    head."""
    if not model.supports_adaptation:
        return None
    cold = model.predict_proba(X)
    offsets = adapt.training_offsets(
        X, np.asarray(y), np.asarray(groups), cold, model.class_means, model.labels, model.adapt, seed=seed
    )
    return model.adapt_head.network_logits(np.asarray(X, dtype=np.float64) - offsets)


#: How much the transfers between training corpora weigh in a temperature against the unseen-speaker folds.
TRANSFER_WEIGHT = 0.5


def corpus_temperature(oof: OutOfFold, transfers: Sequence[Transfer]) -> float:
    """The temperature of a model trained on several corpora, fitted on two kinds of voices it never heard:
    the out-of-fold unseen speakers (``oof``) and, for each training corpus, a model trained on the others
    scoring it (``transfers``), the two kinds weighing the same (``TRANSFER_WEIGHT``).

    A temperature fitted on unseen speakers of the training corpora alone is too confident on another corpus
    (ECE 0.12–0.30 held out); the transfers between training corpora are the nearest thing to a user's voice
    that may be used for fitting. With no transfer (one training corpus) it is the unseen speakers' alone."""
    if not transfers:
        return fit_temperature(oof.logits, oof.truth)
    w = TRANSFER_WEIGHT / len(transfers)
    return fit_temperature_pooled(
        [(oof.logits, oof.truth, 1 - TRANSFER_WEIGHT), *((t.logits, t.truth, w) for t in transfers)]
    )


def _trainable_corpora(ds: Dataset) -> list[str]:
    """The corpora of ``ds`` that may train, in order ("" for clips from outside a corpus)."""
    return [c for c in dict.fromkeys(ds.corpora.tolist()) if corpus_info(c).may_train]


def _corpus_rows(ds: Dataset, corpora: Collection[str]) -> np.ndarray:
    """The rows of ``ds`` from ``corpora`` [shape=(n,)]."""
    return np.flatnonzero(np.isin(ds.corpora, list(corpora)))


def _fit_corpus_sets(ds: Dataset, preset: str, sets: Sequence[frozenset[str]]) -> dict[frozenset[str], Model]:
    """``preset`` fitted (both heads: ``fit_adaptive``) on the clips of each set of corpora, side by side."""
    features, params = preset_parts(preset)
    sets = list(dict.fromkeys(sets))
    models = run_folds(
        lambda S: fit_adaptive(*ds.training_set(_corpus_rows(ds, S)), features=features, params=params), sets
    )
    return dict(zip(sets, models, strict=True))


def _transfer_sets(S: frozenset[str]) -> list[tuple[str, frozenset[str]]]:
    """(held, the rest) for each named corpus of ``S`` whose rest still holds a named corpus."""
    return [(c, S - {c}) for c in sorted(S) if c and any(S - {c, ""})]


def evaluate_corpora(
    ds: Dataset,
    preset: str,
    *,
    test: Sequence[str] | None = None,
    calibrate: bool = True,
    progress: Progress | None = None,
    models: dict[frozenset[str], Model] | None = None,
    folds: dict[frozenset[str], OutOfFold] | None = None,
    adaptation: bool = False,
) -> dict[str, Scores]:
    """Leave-one-corpus-out: for each corpus of ``ds`` (or each of ``test``), train ``preset`` on the *other*
    corpora that may train (``CorpusInfo.may_train``) and score every clip of the held-out corpus whose class
    the training corpora have; the prediction is restricted to those shared classes. With ``calibrate``, each
    held-out model's temperature is ``corpus_temperature`` over its own training corpora only.

    Returns ``{corpus: Scores}``; a corpus with nothing to train on (the others are all evaluation-only) is left
    out. ``Scores.folds[0]`` names the training corpora, the classes scored, and the ECE of the restricted
    probabilities (and, with ``adaptation``, the held-out model's ``scoring.curve`` on the corpus: what it
    does cold and after learning each voice). ``models``, if given, receives every model fitted, by its set of
    training corpora; ``folds`` holds unseen-speaker predictions already made for a set of training corpora
    (``train_model``'s)."""
    names = [c for c in dict.fromkeys(ds.corpora.tolist()) if c]  # "": clips from outside a corpus
    unknown = [t for t in (test or ()) if t not in names]
    if unknown:
        raise ConfigError(f"no corpus {unknown[0]!r} in the data; the data holds {', '.join(names)}")
    trainable = frozenset(_trainable_corpora(ds))
    targets = [t for t in (test or names) if any(trainable - {t, ""})]
    train_sets = {t: trainable - {t} for t in targets}
    needed = list(train_sets.values())
    if calibrate:
        needed += [rest for S in train_sets.values() for _, rest in _transfer_sets(S)]
    if progress:
        progress("evaluate:corpora", 0, len(targets))
    fitted = _fit_corpus_sets(ds, preset, needed)
    if models is not None:
        models.update(fitted)
    out: dict[str, Scores] = {}
    temperatures: dict[frozenset[str], tuple] = {}  # savee and emodb share a training set: calibrate it once
    folds = folds or {}
    for k, held in enumerate(targets):
        S = train_sets[held]
        model = fitted[S]
        train_rows = _corpus_rows(ds, S)
        if calibrate:
            if S not in temperatures:
                oof = folds.get(S) or _oof_logits(ds, preset, train_rows, model.labels)
                transfers = [Transfer.of(fitted[rest], ds, c) for c, rest in _transfer_sets(S)]
                fit_temperatures(model, oof, transfers)
                temperatures[S] = (model.temperature, model.adapt_head, model.unsure_below)
            temperature, head, model.unsure_below = temperatures[S]
            model.temperature = temperature
            if head is not None and model.adapt_head is not None:
                model.adapt_head.temperature = head.temperature
        t = Transfer.of(model, ds, held)
        P = ensemble_probs(t.logits, model.temperature)
        pred = [t.classes[j] for j in P.argmax(axis=1)]
        m = metrics(ds.y[t.rows].tolist(), pred, t.classes)
        trained_on = sorted(set(ds.corpora[train_rows].tolist()))
        fold = {
            "fold": f"{'+'.join(trained_on)} -> {held}",
            "trained_on": trained_on,
            "n_test": int(t.rows.size),
            "n_train": int(train_rows.size),
            "classes": list(t.classes),
            "left_out_classes": sorted(set(ds.y[ds.corpora == held].tolist()) - set(t.classes)),
            "accuracy": round(m["accuracy"], 4),
            "ece": round(ece(P, t.truth), 4),
            "calibrated": calibrate,
            "temperature": round(model.temperature, 3),
        }
        if adaptation:
            held_rows = np.flatnonzero(ds.corpora == held)
            fold["adaptation"] = scoring.curve(
                model, ds.X[held_rows], ds.y[held_rows], ds.groups[held_rows], seeds=(0, 1)
            )
        out[held] = Scores(
            "corpora",
            t.classes,
            m["accuracy"],
            m["macro_f1"],
            m["uar"],
            m["per_class"],
            m["confusion"],
            int(t.rows.size),
            [fold],
        )
        if progress:
            progress("evaluate:corpora", k + 1, len(targets))
    return out


def evaluate_nested(
    data: str | Path,
    candidates: Sequence[str],
    *,
    classes: tuple[str, ...] | None = None,
    progress: Progress | None = None,
    n_jobs: int | None = None,
    cache: bool = True,
) -> Scores:
    """Speaker-independent scores of *choosing* among ``candidates`` without seeing test actors.

    A candidate is a preset name, trained with its own augmentation, or ``preset@aug+aug`` (``compact@none``,
    ``compact@opus+noise``) for a given set. For each outer actor fold, every candidate is cross-validated on
    that fold's training actors only (inner actor folds); the best is refitted on all training actors and
    scores the outer fold. ``Scores.folds`` records which candidate each fold chose and the inner accuracies.
    """
    if len(candidates) < 2:
        raise ConfigError("nested selection needs at least two presets to choose from")

    def parts(c: str) -> tuple[FeatureConfig, MLPParams]:
        return preset_parts(c.partition("@")[0])

    def augment_of(c: str) -> tuple[str, ...]:
        preset, at, aug = c.partition("@")
        return preset_augment(preset, aug.replace("+", ",") if at else None)

    sets = {
        c: load_features(
            data,
            parts(c)[0],
            classes=classes,
            progress=progress,
            n_jobs=n_jobs,
            cache=cache,
            augment=augment_of(c),
        )
        for c in candidates
    }
    first = sets[candidates[0]]
    labels = canonical_labels(first.y.tolist())
    chosen: list[dict] = []

    def select_and_fit(idx, y, groups):
        # ``idx`` holds row numbers: each candidate has its own feature matrices for the same clips.
        inner = {
            c: cross_validate("actors", idx, y, groups, sets[c].fitter(*parts(c)), labels).accuracy
            for c in candidates
        }
        best = max(candidates, key=inner.__getitem__)
        chosen.append({"chosen": best, "inner_accuracy": {c: round(a, 4) for c, a in inner.items()}})
        return sets[best].fitter(*parts(best))(idx, y, groups)

    cb = (lambda done, total: progress("evaluate:nested", done, total)) if progress else None
    # The outer folds one after another: ``chosen`` is filled in fold order (the inner folds run side by side).
    scores = cross_validate(
        "actors", first.rows, first.y, first.groups, select_and_fit, labels, progress=cb, n_jobs=1
    )
    for fold, pick in zip(scores.folds, chosen, strict=True):
        fold.update(pick)
    scores.protocol = "actors-nested"
    return scores


@dataclass
class OutOfFold:
    """Out-of-fold predictions over the actor folds of some rows: per-network logits of the cold head
    [shape=(k, n, c)] and of the adapted head (``adapted_logits``; or None), the true class index
    [shape=(n,)], and the folds ``(name, train_idx, test_idx)`` (indices into those rows) in the order the
    predictions are concatenated."""

    logits: np.ndarray
    adapted_logits: np.ndarray | None
    truth: np.ndarray
    parts: list[tuple[str, np.ndarray, np.ndarray]]
    #: The fold models, in ``parts`` order.
    models: list[Model] = field(default_factory=list)

    def scores(self, y: np.ndarray, labels: Sequence[str]) -> Scores:
        """The ``actors`` protocol's ``Scores`` from these predictions at temperature 1 — what
        ``evaluate_dataset(ds, "actors", preset)`` gives for the same rows, without fitting again."""
        probs = np.split(
            ensemble_probs(self.logits, 1.0), np.cumsum([te.size for _, _, te in self.parts])[:-1]
        )
        return pooled_scores("actors", self.parts, probs, np.asarray(y), labels)


def _oof_logits(
    ds: Dataset,
    preset: str,
    rows: np.ndarray,
    labels: tuple[str, ...],
    *,
    speaker: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> OutOfFold:
    """Out-of-fold logits of ``preset`` over the actor folds of ``rows`` (with ``speaker``, of both heads:
    ``fit_adaptive``); the folds are fitted side by side (``run_folds``)."""
    features, params = preset_parts(preset)
    X, y, g = ds.X[rows], ds.y[rows], ds.groups[rows]
    parts = splits("actors", y, g)

    def one(part: tuple[str, np.ndarray, np.ndarray]):
        _, tr, te = part
        train = ds.training_set(rows[tr])
        model = (
            fit_adaptive(*train, features=features, params=params) if speaker else fit_preset(preset, *train)
        )
        if model.labels != labels:
            raise DatasetError("calibration needs every class in every training fold")
        spk = adapted_logits(model, X[te], y[te], g[te])
        return model.network_logits(X[te]), spk, np.array([labels.index(v) for v in y[te]]), model

    folds = run_folds(one, parts, progress=progress)
    spk = [f[1] for f in folds if f[1] is not None]
    return OutOfFold(
        np.concatenate([f[0] for f in folds], axis=1),
        np.concatenate(spk, axis=1) if len(spk) == len(folds) else None,
        np.concatenate([f[2] for f in folds]),
        parts,
        [f[3] for f in folds],
    )


def calibrate(
    model: Model,
    ds: Dataset,
    preset: str,
    *,
    oof: OutOfFold | None = None,
    transfers: Sequence[Transfer] = (),
) -> dict:
    """Fit the temperatures of ``model`` (trained on all of ``ds``) on out-of-fold predictions of ``ds``
    (``oof``: those predictions if already made, both heads) and on ``transfers`` between its training
    corpora (``corpus_temperature``), the adapted head's on its own predictions of the same voices; and the
    "not sure" threshold on all of them (``unsure_threshold``)."""
    oof = oof or _oof_logits(ds, preset, np.arange(len(ds.y)), model.labels)
    return fit_temperatures(model, oof, transfers)


def fit_temperatures(model: Model, oof: OutOfFold, transfers: Sequence[Transfer] = ()) -> dict:
    """Set ``model``'s temperatures (cold head: ``corpus_temperature``; the adapted head the same way on its
    own predictions of the same voices) and its "not sure" threshold (``unsure_threshold`` over all of them);
    return what the card records of it."""
    si, spk, truth = oof.logits, oof.adapted_logits, oof.truth
    model.temperature = corpus_temperature(oof, transfers)
    out = {
        "temperature": round(model.temperature, 4),
        "fitted_on": ["unseen speakers (out of fold)"] + [f"{t.held} held out" for t in transfers],
        "ece_oof_before": round(ece(ensemble_probs(si, 1.0), truth), 4),
        "ece_oof_after": round(ece(ensemble_probs(si, model.temperature), truth), 4),
    }
    for t in transfers:
        out[f"ece_{t.held}_held_out_after"] = round(
            ece(ensemble_probs(t.logits, model.temperature), t.truth), 4
        )
    judged = [(ensemble_probs(si, model.temperature), truth)]
    judged += [(ensemble_probs(t.logits, model.temperature), t.truth) for t in transfers]
    if model.adapt_head is not None and spk is not None:
        adapted = [t for t in transfers if t.adapted is not None]
        model.adapt_head.temperature = corpus_temperature(
            OutOfFold(spk, None, truth, oof.parts),
            [dataclasses.replace(t, logits=t.adapted) for t in adapted],
        )
        T = model.adapt_head.temperature
        out["adapted_temperature"] = round(T, 4)
        out["ece_oof_adapted"] = round(ece(ensemble_probs(spk, T), truth), 4)
        for t in adapted:
            out[f"ece_{t.held}_held_out_adapted"] = round(ece(ensemble_probs(t.adapted, T), t.truth), 4)
        judged += [(ensemble_probs(spk, T), truth)] + [
            (ensemble_probs(t.adapted, T), t.truth) for t in adapted
        ]
    model.unsure_below = unsure_threshold(judged)
    out["unsure_below"] = round(model.unsure_below, 3)
    return out


def unsure_threshold(
    judged: Sequence[tuple[np.ndarray, np.ndarray]], *, lo: float = 0.2, hi: float = 0.6
) -> float:
    """The top probability below which an answer is more likely wrong than right, from calibrated predictions
    of voices the models never heard (``(probs [shape=(n, c)], true class [shape=(n,)])`` sets, each set
    weighing the same): where a logistic fit of "right" on the top probability crosses one half, within
    [``lo``, ``hi``]. Chosen on training corpora only; the reply then says "not sure" below it."""
    from sklearn.linear_model import LogisticRegression

    conf, hit, weight = [], [], []
    for P, t in judged:
        conf.append(P.max(axis=1))
        hit.append(P.argmax(axis=1) == t)
        weight.append(np.full(len(t), 1.0 / max(1, len(t))))
    c, h, w = np.concatenate(conf), np.concatenate(hit), np.concatenate(weight)
    if h.all() or not h.any():
        return lo
    fit = LogisticRegression(C=1e4).fit(c[:, None], h, sample_weight=w / w.mean())
    a, b = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    if a <= 0:
        return lo
    return float(np.clip(-b / a, lo, hi))


def evaluate_calibration(ds: Dataset, preset: str, *, png: str | None = None) -> dict:
    """ECE before and after temperature scaling on the speaker-independent folds, nested: each outer fold's
    temperature is fitted on out-of-fold predictions of its own training actors only."""
    labels = canonical_labels(ds.y.tolist())
    raw, cal, truth, temps = [], [], [], []
    for _, tr, te in splits("actors", ds.y, ds.groups):
        inner = _oof_logits(ds, preset, tr, labels, speaker=False)
        T = fit_temperature(inner.logits, inner.truth)
        model = fit_preset(preset, *ds.training_set(tr))
        L = model.network_logits(ds.X[te])
        raw.append(ensemble_probs(L, 1.0))
        cal.append(ensemble_probs(L, T))
        truth.append(np.array([labels.index(v) for v in ds.y[te]]))
        temps.append(round(T, 3))
    raw, cal, truth = np.vstack(raw), np.vstack(cal), np.concatenate(truth)
    if png:
        reliability_diagram({"uncalibrated": (raw, truth), "temperature-scaled": (cal, truth)}, png)
    return {
        "ece_before": round(ece(raw, truth), 4),
        "ece_after": round(ece(cal, truth), 4),
        "temperatures": temps,
        "accuracy_before": round(float((raw.argmax(1) == truth).mean()), 4),
        "accuracy_after": round(float((cal.argmax(1) == truth).mean()), 4),
    }


def condition_features(
    ds: Dataset,
    features: FeatureConfig,
    conditions: Sequence[str],
    *,
    progress: Progress | None = None,
    n_jobs: int | None = None,
    cache: bool = True,
) -> dict[str, np.ndarray]:
    """Vectors of every clip under each test-time condition (``ser_core.conditions``): ``{condition: X}``,
    X [shape=(n, d)]. Each clip is processed once, in its speaker-independent fold, with babble noise drawn
    from that fold's training speakers only, seeded by the clip's content and the condition (the same noise
    every run). Vectors are cached like the clean ones, keyed by clip, condition and babble sources."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    from .audio import decode
    from .cache import TRAIN_LIMITS, cached_vector, content_hash, default_cache_dir
    from .conditions import CONDITIONS, apply, babble_bank
    from .features import extract

    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise ConfigError(f"unknown condition {unknown[0]!r}; choose from {', '.join(CONDITIONS)}")
    cache_dir = default_cache_dir() if cache else None
    blobs = [Path(c.path).read_bytes() for c in ds.clips]
    digests = [content_hash(b) for b in blobs]
    signals: dict[int, np.ndarray] = {}

    def signal(i: int) -> np.ndarray:
        if i not in signals:
            signals[i] = decode(blobs[i], sr=features.sr, limits=TRAIN_LIMITS, check_silence=False)
        return signals[i]

    out = {c: (ds.X if c == "clean" else np.zeros_like(ds.X)) for c in conditions}
    parts = splits("actors", ds.y, ds.groups)
    with ThreadPoolExecutor(max(1, n_jobs or 2)) as pool:
        for k, (_, tr, te) in enumerate(parts):
            sources = tr[:: max(1, len(tr) // 60)]
            bank_id = hashlib.sha256("".join(digests[i] for i in sources).encode()).hexdigest()[:8]
            bank = babble_bank([signal(j) for j in sources], ds.groups[sources].tolist(), set(ds.groups[te]))
            for cond in conditions:
                if cond == "clean":
                    continue
                # The Opus round trip draws nothing from the fold; noise does (its babble bank).
                tag = ".discord-c1" if cond == "discord" else f".{cond}-{bank_id}-c1"

                def one(i: int, cond: str = cond, tag: str = tag, bank: list = bank) -> np.ndarray:
                    def compute() -> np.ndarray:
                        rng = np.random.default_rng([int(digests[i][:16], 16), CONDITIONS.index(cond)])
                        return extract(apply(cond, signal(int(i)), features.sr, rng, bank), features)

                    return cached_vector(cache_dir, features, digests[i], tag, compute)

                out[cond][te] = np.stack(list(pool.map(one, te)))
            if progress:
                progress("conditions", k + 1, len(parts))
    return out


def score_conditions(ds: Dataset, conditioned: dict[str, np.ndarray], preset: str) -> dict:
    """Fit ``preset`` on each speaker-independent training part (``ds.training_set``: clean clips plus their
    augmented copies) and score its test clips under each condition of ``conditioned``
    (``condition_features``). Returns ``{condition: {"accuracy", "macro_f1", "uar", "drop_vs_clean"}}``."""
    labels = canonical_labels(ds.y.tolist())
    preds: dict[str, list[str]] = {c: [] for c in conditioned}
    truth: list[str] = []
    for _, tr, te in splits("actors", ds.y, ds.groups):
        model = fit_preset(preset, *ds.training_set(tr))
        truth += ds.y[te].tolist()
        for cond, X in conditioned.items():
            preds[cond] += [labels[j] for j in model.predict_proba(X[te]).argmax(axis=1)]
    out = {}
    for cond in conditioned:
        m = metrics(truth, preds[cond], labels)
        out[cond] = {key: round(m[key], 4) for key in ("accuracy", "macro_f1", "uar")}
    if "clean" in out:
        for cond in conditioned:
            out[cond]["drop_vs_clean"] = round(100 * (out["clean"]["accuracy"] - out[cond]["accuracy"]), 1)
    return out


def evaluate_conditions(
    data: str | Path,
    preset: str,
    conditions: Sequence[str],
    *,
    classes: tuple[str, ...] | None = None,
    augment: str | Sequence[str] | None = None,
    progress: Progress | None = None,
    n_jobs: int | None = None,
) -> dict:
    """Speaker-independent scores with each test-time condition applied to the test clips only; models are
    trained on the training folds with ``preset_augment(preset, augment)``. See ``score_conditions``."""
    features = get_preset(preset)
    ds = load_features(
        data,
        features,
        classes=classes,
        progress=progress,
        n_jobs=n_jobs,
        augment=preset_augment(preset, augment),
    )
    conditioned = condition_features(ds, features, conditions, progress=progress, n_jobs=n_jobs)
    return score_conditions(ds, conditioned, preset)


def train_model(
    data: str | Path | Sequence[str | Path],
    *,
    preset: str = DEFAULT_PRESET,
    classes: tuple[str, ...] | None = None,
    protocols: Sequence[str] = ("actors", "random"),
    test_data: Sequence[str | Path] = (),
    extra_clips: Sequence[Clip] = (),
    progress: Progress | None = None,
    n_jobs: int | None = None,
    cache: bool = True,
    calibrate_model: bool = True,
    calibrate_corpora: bool = True,
    augment: str | Sequence[str] | None = None,
) -> Model:
    """Train ``preset`` on every clip of the corpora ``data`` (plus augmented copies: ``preset_augment(preset,
    augment)``) and fill the model card with ``protocols`` scores.

    ``test_data`` corpora are never trained on: with them (or with several training corpora) the card also gets
    the ``corpora`` protocol (``evaluate_corpora``): each corpus held out in turn (``calibrate_corpora=False``
    skips fitting those held-out models' temperatures: six fits each, and a single-network head's accuracy does
    not depend on it; only their ECE does). A corpus that may not train
    (``CorpusInfo.may_train``) in ``data`` is refused. With ``calibrate_model`` (and the ``actors`` protocol), the
    temperatures are fitted on out-of-fold predictions over the speaker folds (``calibrate``)."""
    roots = [data] if isinstance(data, (str, Path)) else list(data)
    for root in roots:
        info = corpus_info(corpus_name(root))
        if not info.may_train:
            raise DatasetError(
                f"{info.title} is for evaluation only ({info.licence}): give it as test data, "
                "never as training data"
            )
    features, params = preset_parts(preset)
    t0 = time.perf_counter()
    everything = load_features(
        [*roots, *test_data],
        features,
        classes=classes,
        extra_clips=extra_clips,
        progress=progress,
        n_jobs=n_jobs,
        cache=cache,
        augment=preset_augment(preset, augment),
    )
    trained = {clip_corpus(r) for r in roots} | {""}  # "": the extra clips
    ds = everything.subset(_corpus_rows(everything, trained))
    t_features = time.perf_counter() - t0
    labels = canonical_labels(ds.y.tolist())
    calibrating = calibrate_model and "actors" in protocols and ds.description["n_speakers"] >= 3
    scores, oof = {}, None
    for protocol in protocols:
        if protocol == "actors" and calibrating:
            # The calibration needs both heads' out-of-fold logits over the same folds: one set of fits
            # serves the card's score too (the same models ``evaluate_dataset`` would fit).
            cb = (lambda done, total: progress("evaluate:actors", done, total)) if progress else None
            oof = _oof_logits(ds, preset, np.arange(len(ds.y)), labels, progress=cb)
            scores[protocol] = oof.scores(ds.y, labels).to_dict()
            if all(m.supports_adaptation for m in oof.models):
                # The same fold models after learning each test actor's voice (their temperatures are 1:
                # accuracies only; the calibrated model's error on unseen voices is in "calibration").
                curve = scoring.pooled_curve(
                    [
                        (m, ds.X[te], ds.y[te], ds.groups[te])
                        for m, (_, _, te) in zip(oof.models, oof.parts, strict=True)
                    ],
                    seeds=(0,),
                )
                curve.pop("_")
                scores[protocol]["adaptation"] = {
                    k: {m: v[m] for m in ("accuracy", "accuracy_at_80", "scored")} for k, v in curve.items()
                }
        else:
            scores[protocol] = evaluate_dataset(ds, protocol, preset, progress=progress).to_dict()
    held_out_models: dict[frozenset[str], Model] = {}
    if test_data or len(roots) > 1:
        for name, sc in evaluate_corpora(
            everything,
            preset,
            calibrate=calibrate_corpora,
            progress=progress,
            models=held_out_models,
            # the unseen-speaker folds of all the training corpora, made above (the same fits)
            folds={frozenset(_trainable_corpora(ds)): oof} if oof is not None else None,
            adaptation=True,
        ).items():
            scores[f"corpora:{name}"] = sc.to_dict()
    if progress:
        progress("fit", 0, 1)
    t1 = time.perf_counter()
    # A fold's model (trained on most of the same clips) is where the final fit starts: fewer solver steps.
    init = oof.models[0] if oof is not None and oof.models else None
    model = fit_adaptive(*ds.training_set(np.arange(len(ds.y))), features=features, params=params, init=init)
    if progress:
        progress("fit", 1, 1)
    calibration = None
    if calibrating:
        if progress:
            progress("calibrate", 0, 1)
        transfers = [
            Transfer.of(held_out_models[rest], ds, c)
            for c, rest in _transfer_sets(frozenset(_trainable_corpora(ds)))
            if rest in held_out_models
        ]
        calibration = calibrate(model, ds, preset, oof=oof, transfers=transfers)
        if progress:
            progress("calibrate", 1, 1)
    model.card.update(
        {
            "preset": preset,
            "data": {
                **ds.description,
                "test_only": [clip_corpus(r) for r in test_data],
                "name": " + ".join(v["title"] for v in ds.description["corpora"].values()),
                "licence": "; ".join(
                    f"{v['title']}: {v['licence']}" for v in ds.description["corpora"].values()
                ),
            },
            "scores": {
                p: {k: v for k, v in s.items() if k != "folds"} | {"folds": s["folds"]}
                for p, s in scores.items()
            },
            "timing_s": {"features": round(t_features, 1), "fit": round(time.perf_counter() - t1, 1)},
            "calibration": calibration,
            "trained": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
    )
    return model


def card_markdown(model: Model) -> str:
    """The model card as Markdown (shipped beside the model file and shown by ``ser info``)."""
    c = model.card
    f = model.features
    lines = [f"# Model card: `{model.version}`", ""]
    front = f"{f.dim} features at {f.sr} Hz"
    if f.encoder:
        block = "blocks " + "+".join(str(k) if k else "last" for k in f.encoder_layers)
        front += f"; {f.encoder} encoder, {block}, {'+'.join(f.encoder_stats)} over speech frames"
    lines.append(f"- Preset: `{c.get('preset', f.preset)}` ({front})")
    lines.append(f"- Classes: {', '.join(model.labels)}")
    clf = c.get("classifier", {})
    if clf:
        shape = (
            f"C={clf.get('C')}"
            if clf.get("head") == "logreg"
            else f"hidden={clf.get('hidden')} alpha={clf.get('alpha')} ensemble={clf.get('n_ensemble')}"
        )
        lines.append(
            f"- Classifier: {clf.get('type')} {shape}, class weights: {clf.get('balance') or 'none'}"
        )
    data = c.get("data", {})
    if data:
        lines.append(f"- Trained on: {data.get('n_clips')} clips, {data.get('n_speakers')} speakers")
        for name, info in (data.get("corpora") or {}).items():
            lines.append(
                f"  - {info.get('title', name)}: {info.get('n_clips')} clips; licence {info.get('licence')}"
                + (f"; cite {info['citation']}" if info.get("citation") else "")
            )
        if data.get("test_only"):
            lines.append(f"- Measured on, never trained on: {', '.join(data['test_only'])}")
        aug = data.get("augmented")
        lines.append(
            f"- Training augmentation: one copy of every clip per {', '.join(aug)} (`ser_core.augment`)"
            if aug
            else "- Training augmentation: none"
        )
    cal = c.get("calibration")
    if cal:
        held = [f.removesuffix(" held out") for f in cal.get("fitted_on", [])[1:]]
        head = (
            f"adapted head {cal['adapted_temperature']:.2f} (ECE on unseen speakers {cal['ece_oof_adapted']:.3f})"
            if "adapted_temperature" in cal
            else "no adapted head"
        )
        if "unsure_below" in cal:
            head += (
                f'; an answer under {cal["unsure_below"]:.0%} is called "not sure" (below it, answers on voices '
                "the models never heard were wrong more often than right)"
            )
        if held:
            errors = ", ".join(f"{h} held out {cal[f'ece_{h}_held_out_after']:.3f}" for h in held)
            lines.append(
                f"- Confidence: temperature {cal['temperature']:.2f}, fitted on unseen speakers of the training "
                "corpora (out of fold) and on each training corpus scored by a model of the others, both kinds "
                f"weighing the same. Calibration error (ECE) at this temperature: unseen speakers "
                f"{cal['ece_oof_after']:.3f} ({cal['ece_oof_before']:.3f} at temperature 1), {errors}; {head}"
            )
        else:
            lines.append(
                f"- Confidence: temperature {cal['temperature']:.2f} fitted on out-of-fold predictions over the "
                f"speaker folds (expected calibration error {cal['ece_oof_before']:.3f} → "
                f"{cal['ece_oof_after']:.3f}); {head}"
            )
    lines.append(f"- Trained: {c.get('trained', c.get('created', '?'))}")
    if "versions" in c:
        lines.append("- Libraries: " + ", ".join(f"{k} {v}" for k, v in c["versions"].items()))
    summary = score_summary(c)
    if summary["off_corpus"]:
        lines += [
            "",
            "## On voices from corpora it was not trained on (leave one corpus out)",
            "",
            "| held-out corpus | trained on | classes | accuracy | UAR | macro-F1 | calibration error (ECE) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in summary["off_corpus"]:
            ece_cell = "—" if r["ece"] is None else f"{r['ece']:.3f}"
            lines.append(
                f"| {r['corpus']} | {' + '.join(r['trained_on'])} | {r['n_classes']} | {r['accuracy']:.1%} | "
                f"{r['uar']:.1%} | {r['macro_f1']:.1%} | {ece_cell} |"
            )
    if summary["adaptation"]:
        lines += [
            "",
            "## After learning the voice (`ser_core.adapt`)",
            "",
            "Accuracy over all the model's classes (as the bot answers) on the corpora it never heard, each "
            "speaker's first notes used to learn the voice and not scored: `neutral-3` = three reference notes "
            "of the ordinary voice (`/emotion calibrate`), `profile-20` = twenty everyday notes, `skewed` = "
            "twenty of which 70 % neutral or calm.",
            "",
            "| held-out corpus | " + " | ".join(ADAPTATION_COLUMNS) + " |",
            "|---|" + "---|" * len(ADAPTATION_COLUMNS),
        ]
        for corpus, row in summary["adaptation"].items():
            cells = [f"{row[k]:.1%}" if row.get(k) is not None else "—" for k in ADAPTATION_COLUMNS]
            lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    if summary["inside"]:
        lines += [
            "",
            "## Inside the training corpora",
            "",
            "| protocol | accuracy | macro-F1 | UAR |",
            "|---|---|---|---|",
        ]
        for r in summary["inside"]:
            lines.append(
                f"| {r['protocol']} ({r['what']}) | {r['accuracy']:.1%} | {r['macro_f1']:.1%} | {r['uar']:.1%} |"
            )
        pc = (c.get("scores", {}).get("actors") or {}).get("per_class")
        if pc:
            lines += [
                "",
                "Per-class recall, unseen actors: " + ", ".join(f"{k} {v:.0%}" for k, v in pc.items()),
            ]
    if summary["expect"]:
        lines += ["", summary["expect"]]
    return "\n".join(lines) + "\n"


def score_summary(card: dict) -> dict:
    """The card's scores for people: ``off_corpus`` rows (leave one corpus out), ``inside`` rows (actors,
    random), and ``expect``, one plain sentence on what a new voice should expect."""
    scores = card.get("scores") or {}
    off, inside = [], []
    for p, s in scores.items():
        if not isinstance(s, dict) or "accuracy" not in s:
            continue
        row = {k: s.get(k, 0.0) for k in ("accuracy", "uar", "macro_f1")}
        if p.startswith("corpora:"):
            fold = (s.get("folds") or [{}])[0]
            off.append(
                row
                | {
                    "corpus": p.split(":", 1)[1],
                    "trained_on": fold.get("trained_on", []),
                    "n_classes": len(s.get("labels", [])),
                    # Only a held-out model calibrated like the shipped one says how honest its percentages are.
                    "ece": fold.get("ece") if fold.get("calibrated") else None,
                }
            )
        else:
            what = (
                "unseen RAVDESS actors, 6 folds"
                if p == "actors"
                else "stratified 80/20, 5 seeds: the same speakers on both sides"
            )
            inside.append(row | {"protocol": p, "what": what})
    adaptation = {}
    for p, s in scores.items():
        fold = (s.get("folds") or [{}])[0] if isinstance(s, dict) else {}
        curve = fold.get("adaptation") if p.startswith("corpora:") else None
        if curve:
            adaptation[p.split(":", 1)[1]] = {
                k: (curve.get(k) or {}).get("accuracy") for k in ADAPTATION_COLUMNS
            }
    expect = ""
    if off:
        lo, hi = min(r["accuracy"] for r in off), max(r["accuracy"] for r in off)
        expect = (
            f"What to expect on a new voice: {lo:.0%} to {hi:.0%} of notes right, by how far the voice, "
            "language and microphone are from the training corpora (leave-one-corpus-out). The unseen-actor "
            "number is higher because those actors share the corpus's sentences and studio."
        )
        ranges = {
            k: [r[k] for r in adaptation.values() if r.get(k) is not None]
            for k in ("neutral-3", "profile-20")
        }
        if all(ranges.values()):
            expect += (
                f" After three calibration notes: {min(ranges['neutral-3']):.0%} to {max(ranges['neutral-3']):.0%};"
                f" after twenty everyday notes: {min(ranges['profile-20']):.0%} to {max(ranges['profile-20']):.0%}"
                " (answers over all the model's classes)."
            )
    elif inside:
        expect = (
            "The unseen-actor number holds for voices like the corpus's own; other voices, words and "
            "microphones score lower (measure with `ser evaluate --protocol corpora`)."
        )
    return {"off_corpus": off, "inside": inside, "expect": expect, "adaptation": adaptation}


#: The adaptations the card shows (``scoring.SPECS``), in order.
ADAPTATION_COLUMNS = ("none", "neutral-3", "profile-5", "profile-20", "profile-20-skewed")
