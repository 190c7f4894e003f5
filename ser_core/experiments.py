"""Experiments on a ``Dataset``: a preset under a protocol, leave one corpus out (the transfers between corpora),
nested preset selection, out-of-fold logits, calibration runs (temperatures, the "not sure" threshold) and
test-time conditions (Discord's Opus, noise, gain).

``ser evaluate`` runs them; ``ser_core.training`` reuses the out-of-fold logits, transfers and calibration for
the card of the model it trains.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import adapt, scoring
from .calibration import ece, ensemble_probs, fit_temperature, fit_temperature_pooled, reliability_diagram
from .dataset import Dataset, Progress, load_features
from .datasets import corpus_info
from .errors import ConfigError, DatasetError
from .evaluate import Scores, cross_validate, metrics, pooled_scores, splits
from .features import FeatureConfig
from .model import Model
from .parallel import run_folds
from .presets import fit_preset, get_preset, preset_augment, preset_parts
from .train import MLPParams, canonical_labels, fit_adaptive


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
