"""Accuracy on RAVDESS alone: both protocols for the `seed`, `rich`, `compact`, `compact-trim` (the default before
the encoder) and the default preset, each trained on RAVDESS only with its own augmentation.

``actors`` is speaker-independent (six actor-disjoint folds); ``random`` is the classic stratified 80/20 split
over five seeds, where the same actors are on both sides. Confusion matrices go to ``bench/out/``.
"""

from __future__ import annotations

from pathlib import Path

from ser_core.evaluate import plot_confusion
from ser_core.features import DEFAULT_PRESET, get_preset
from ser_core.workflow import evaluate_dataset, load_features, preset_augment, preset_parts

from .common import OUT, goal, table

PROTOCOLS = ("actors", "random")
#: What each preset should reach (accuracy): goals for the default, the known level of the classic recipe.
TARGETS = {
    (DEFAULT_PRESET, "actors"): 0.65,
    (DEFAULT_PRESET, "random"): 0.85,
    ("seed", "actors"): 0.36,
    ("seed", "random"): 0.68,
}


def run(
    data: Path,
    presets: tuple[str, ...] = ("seed", "rich", "compact", "compact-trim", DEFAULT_PRESET),
    n_jobs: int = 2,
    out: Path = OUT,
) -> dict:
    """Scores (``Scores.to_dict``) per preset and protocol; PNGs ``confusion-<preset>-<protocol>.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict] = {}
    for preset in presets:
        ds = load_features(
            data,
            get_preset(preset),
            n_jobs=n_jobs,
            cache=True,
            progress=_quiet,
            augment=preset_augment(preset),
        )
        for protocol in PROTOCOLS:
            s = evaluate_dataset(ds, protocol, preset)
            plot_confusion(
                s,
                str(out / f"confusion-{preset}-{protocol}.png"),
                title=f"{preset}, {protocol}: accuracy {s.accuracy:.1%}, UAR {s.uar:.1%}",
            )
            scores[f"{preset}/{protocol}"] = s.to_dict()
    goals = {
        f"default ({preset}) {protocol} accuracy ≥ {v:.0%}": scores[f"{preset}/{protocol}"]["accuracy"] >= v
        for (preset, protocol), v in TARGETS.items()
        if preset == DEFAULT_PRESET and f"{preset}/{protocol}" in scores
    }
    return {
        "data": Path(data).name,
        "n_files": next(iter(scores.values()))["n_files"],
        "scores": scores,
        "classifiers": {p: preset_parts(p)[1].to_dict() for p in presets},
        "augment": {p: list(preset_augment(p)) for p in presets},
        "goals": goals,
    }


def _quiet(stage: str, done: int, total: int) -> None:
    """No progress bar: the benchmark's output is read in logs."""


def report(r: dict) -> str:
    scores = r["scores"]
    rows = []
    for key, s in scores.items():
        preset, protocol = key.split("/")
        target = TARGETS.get((preset, protocol))
        kind = "goal ≥" if preset == DEFAULT_PRESET else "expected ≈"
        rows.append(
            [
                preset,
                protocol,
                f"{s['accuracy']:.1%}",
                f"{s['macro_f1']:.1%}",
                f"{s['uar']:.1%}",
                f"{kind} {target:.0%}" if target else None,
            ]
        )
    labels = next(iter(scores.values()))["labels"]
    recall = table(
        ["preset / protocol", *labels],
        [[k, *(f"{s['per_class'][lab]:.0%}" for lab in labels)] for k, s in scores.items()],
    )
    lines = [
        f"Accuracy on {r['data']} ({r['n_files']} clips); actors = speaker-independent 6 folds, "
        "random = stratified 80/20 over 5 seeds.",
        "",
        table(["preset", "protocol", "accuracy", "macro-F1", "UAR", "target"], rows),
        "",
        "Per-class recall:",
        "",
        recall,
        "",
        "Confusion matrices: bench/out/confusion-<preset>-<protocol>.png",
        "",
        *(f"Classifier of {p}: {c}" for p, c in r.get("classifiers", {}).items()),
        *(
            f"Training augmentation of {p}: one copy of every training clip per {', '.join(a)}"
            for p, a in r.get("augment", {}).items()
            if a
        ),
    ]
    lines += [goal(ok, k) for k, ok in r["goals"].items()]
    return "\n".join(lines)
