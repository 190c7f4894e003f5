"""Which adaptation settings (``ser_core.adapt.AdaptConfig``) to ship, chosen on the corpora that may train.

    python -m bench.studies.adaptation [--grid 2:1,5:1,5:2,10:2]  # tau:w_ref pairs; ~2 minutes each (cached)

For every pair, the default preset's two heads (``fit_adaptive``) are trained and scored with the adaptation
curve (``ser_core.scoring``, accuracy restricted to each corpus's classes) on: RAVDESS's six actor folds (nEMO
always in training), nEMO → RAVDESS and RAVDESS → nEMO. The choice is the pair with the highest mean over those
three and over the adaptations other than ``none``; SAVEE and EmoDB (scored by a model of RAVDESS + nEMO) are
printed beside it and take no part. Then the smallest profile (1–3 notes) whose training-corpora mean is not
below cold is where the adapted head should start answering (``min_evidence``). Writes
``bench/out/adaptation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ser_core import scoring
from ser_core.adapt import AdaptConfig
from ser_core.evaluate import splits
from ser_core.features import DEFAULT_PRESET
from ser_core.parallel import run_folds
from ser_core.train import fit_adaptive
from ser_core.workflow import _corpus_rows, load_features, preset_augment, preset_parts

from ..common import OUT, table

SPECS = ("none", "profile-1", "profile-2", "profile-3", *scoring.SPECS[1:])
TRAINING = ("actors", "nemo→ravdess", "ravdess→nemo")
REPORTED = ("savee", "emodb")


def measure(ds, cfg: AdaptConfig, preset: str = DEFAULT_PRESET) -> dict[str, dict]:
    """The curve of ``cfg`` on each scenario: ``{scenario: scoring.curve(...)}``."""
    features, params = preset_parts(preset)

    def fitted(rows):
        return fit_adaptive(*ds.training_set(rows), features=features, params=params, adapt=cfg)

    def part(rows):
        return ds.X[rows], ds.y[rows], ds.groups[rows]

    out = {}
    both = _corpus_rows(ds, {"ravdess", "nemo"})
    sub = ds.subset(both)
    folds = splits("actors", sub.y, sub.groups)
    models = run_folds(lambda f: fitted(both[f[1]]), folds)
    out["actors"] = scoring.pooled_curve(
        [(m, *part(both[te])) for m, (_, _, te) in zip(models, folds, strict=True)], SPECS, seeds=(0, 1)
    )
    jobs = {
        "nemo→ravdess": ({"nemo"}, "ravdess"),
        "ravdess→nemo": ({"ravdess"}, "nemo"),
        "ravdess+nemo": ({"ravdess", "nemo"}, None),
    }
    trained = dict(
        zip(jobs, run_folds(lambda j: fitted(_corpus_rows(ds, j[0])), list(jobs.values())), strict=True)
    )
    for name, (_, held) in jobs.items():
        for target in [held] if held else REPORTED:
            rows = np.flatnonzero(ds.corpora == target)
            out[name if held else target] = scoring.curve(trained[name], *part(rows), SPECS, seeds=(0, 1))
    return out


def _own(curve: dict, spec: str) -> float | None:
    return (curve.get(spec) or {}).get("accuracy_own_classes")


def choose(results: dict[str, dict]) -> dict:
    """The pair with the highest training-corpora mean, and where its adapted head should start answering."""
    adapted = [s for s in scoring.SPECS if s != "none"]
    score = {
        key: float(
            np.mean(
                [np.mean([_own(r[t], s) for s in adapted if _own(r[t], s) is not None]) for t in TRAINING]
            )
        )
        for key, r in results.items()
    }
    best = max(score, key=score.__getitem__)
    r = results[best]
    cold = np.mean([_own(r[t], "none") for t in TRAINING])
    start = next(
        (n for n in (1, 2, 3) if np.mean([_own(r[t], f"profile-{n}") for t in TRAINING]) >= cold), None
    )
    return {"score": score, "chosen": best, "min_evidence": start, "cold": float(cold)}


def report(results: dict, choice: dict) -> str:
    cols = [*TRAINING, *REPORTED]
    lines = []
    for key, r in results.items():
        rows = [[s, *(_pct(_own(r[c], s)) for c in cols)] for s in SPECS]
        mark = " (chosen)" if key == choice["chosen"] else ""
        lines += [
            f"tau:w_ref {key}{mark}: training-corpora mean over the adaptations {choice['score'][key]:.1%}",
            "",
            table(["adaptation", *cols], rows),
            "",
        ]
    lines.append(
        f"Chosen {choice['chosen']} (cold {choice['cold']:.1%} on the training corpora); the adapted head answers "
        f"from {choice['min_evidence']} note(s). SAVEE and EmoDB took no part."
    )
    return "\n".join(lines)


def _pct(v) -> str | None:
    return None if v is None else f"{v:.1%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="2:1,5:1,5:2,10:2,2:6", help="tau:w_ref pairs, comma-separated")
    args = ap.parse_args()
    root = os.environ.get("SER_CORPORA_DIR")
    if not root:
        raise SystemExit(
            "adaptation: needs the corpora folder: set SER_CORPORA_DIR (ravdess/, nemo/, savee/, emodb/)"
        )
    folders = [Path(root) / c for c in ("ravdess", "nemo", "savee", "emodb")]
    ds = load_features(folders, preset_parts(DEFAULT_PRESET)[0], augment=preset_augment(DEFAULT_PRESET))
    results = {}
    for pair in args.grid.split(","):
        tau, w = (float(v) for v in pair.split(":"))
        results[pair] = measure(ds, AdaptConfig(tau=tau, w_ref=w, min_evidence=1))
        print(f"measured {pair}", flush=True)
    choice = choose(results)
    print(report(results, choice))
    OUT.mkdir(exist_ok=True)
    (OUT / "adaptation.json").write_text(json.dumps({"results": results, "choice": choice}))


if __name__ == "__main__":
    main()
