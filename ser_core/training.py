"""Train a model with its card: a preset on every clip of the training corpora, scored under the protocols
(``ser_core.experiments``) and calibrated. What ``ser train`` (and the bot's retraining) runs.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import scoring
from .dataset import Progress, load_features
from .datasets import Clip, clip_corpus, corpus_info, corpus_name
from .errors import DatasetError
from .experiments import (
    Transfer,
    _corpus_rows,
    _oof_logits,
    _trainable_corpora,
    _transfer_sets,
    calibrate,
    evaluate_corpora,
    evaluate_dataset,
)
from .model import Model
from .presets import DEFAULT_PRESET, preset_augment, preset_parts
from .train import canonical_labels, fit_adaptive


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
