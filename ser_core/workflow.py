"""The old home of the whole jobs on a data folder, kept so that ``from ser_core.workflow import ...`` still works.

They live in modules of one job each now:

- ``ser_core.presets``: the presets (feature settings, classifier head, default augmentations);
- ``ser_core.dataset``: ``Dataset``, ``load_features``, ``parse_classes``;
- ``ser_core.experiments``: a preset under a protocol, leave one corpus out, nested selection, out-of-fold
  logits, calibration runs, test-time conditions;
- ``ser_core.training``: ``train_model`` (a model with its card);
- ``ser_core.card``: the card's Markdown and ``score_summary``.
"""

from __future__ import annotations

from .card import ADAPTATION_COLUMNS, card_markdown, score_summary
from .dataset import Dataset, Progress, load_features, parse_classes
from .experiments import (
    TRANSFER_WEIGHT,
    OutOfFold,
    Transfer,
    _corpus_rows,
    _fit_corpus_sets,
    _oof_logits,
    _trainable_corpora,
    _transfer_sets,
    adapted_logits,
    calibrate,
    condition_features,
    corpus_temperature,
    evaluate_calibration,
    evaluate_conditions,
    evaluate_corpora,
    evaluate_dataset,
    evaluate_nested,
    fit_temperatures,
    score_conditions,
    unsure_threshold,
)
from .presets import (
    DEFAULT_PRESET,
    ENCODER_PARAMS,
    PRESET_AUGMENT,
    PRESET_PARAMS,
    fit_preset,
    get_preset,
    preset_augment,
    preset_parts,
)
from .training import train_model

__all__ = [
    "ADAPTATION_COLUMNS",
    "DEFAULT_PRESET",
    "ENCODER_PARAMS",
    "PRESET_AUGMENT",
    "PRESET_PARAMS",
    "TRANSFER_WEIGHT",
    "Dataset",
    "OutOfFold",
    "Progress",
    "Transfer",
    "_corpus_rows",
    "_fit_corpus_sets",
    "_oof_logits",
    "_trainable_corpora",
    "_transfer_sets",
    "adapted_logits",
    "calibrate",
    "card_markdown",
    "condition_features",
    "corpus_temperature",
    "evaluate_calibration",
    "evaluate_conditions",
    "evaluate_corpora",
    "evaluate_dataset",
    "evaluate_nested",
    "fit_preset",
    "fit_temperatures",
    "get_preset",
    "load_features",
    "parse_classes",
    "preset_augment",
    "preset_parts",
    "score_conditions",
    "score_summary",
    "train_model",
    "unsure_threshold",
]
