"""What each set of augmented training copies buys on voices from elsewhere, measured the way the default was chosen.

    python -m bench.studies.copies [--preset whisper-mid] [--variants none,noise,noise+pitch,...]

For each variant (a ``+``-joined set of ``ser_core.augment`` names, one copy of every training clip per name, or
``none``) the preset is trained and scored like ``bench corpora``: unseen RAVDESS actors (the other corpora always
in training) and every corpus held out, scored by a model of the other corpora that may train. **choice** is the
mean of the columns from corpora that may train (unseen actors, and each of them held out): the only numbers a
choice may look at. Evaluation-only corpora (SAVEE, EmoDB) are printed beside it, never part of it. Each copy is
encoded once and shared by every variant that uses it. Writes ``bench/out/copies.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ser_core.augment import parse_augment
from ser_core.datasets import corpus_info
from ser_core.features import DEFAULT_PRESET
from ser_core.workflow import evaluate_corpora, evaluate_dataset, load_features, preset_parts

from ..common import OUT, corpora_dir, table
from ..corpora import CORPORA

VARIANTS = ("none", "noise", "pitch", "noise+speed", "noise+pitch", "noise+speed+pitch")


def run(folders: list[Path], preset: str = DEFAULT_PRESET, variants=VARIANTS, n_jobs: int = 2) -> dict:
    """``{"variants": {variant: {"actors", <corpus>…, "choice"}}, "choice_columns": [...], "seconds": {...}}``,
    accuracies in [0, 1]."""
    names = list(dict.fromkeys(n for v in variants for n in parse_augment(v.replace("+", ","))))
    t0 = time.perf_counter()
    full = load_features(folders, preset_parts(preset)[0], n_jobs=n_jobs, augment=names)
    seconds = {"features": round(time.perf_counter() - t0, 1)}
    out = {}
    for v in variants:
        t = time.perf_counter()
        # The same clips with only this variant's copies (no arrays copied).
        ds = replace(full, augmented={n: full.augmented[n] for n in parse_augment(v.replace("+", ","))})
        # A logistic head's argmax does not depend on its temperature: accuracy needs no calibration fits.
        row = {c: s.accuracy for c, s in evaluate_corpora(ds, preset, calibrate=False).items()}
        row["actors"] = evaluate_dataset(ds.subset(np.flatnonzero(ds.may_train)), "actors", preset).accuracy
        out[v] = row
        seconds[v] = round(time.perf_counter() - t, 1)
        print(f"  {v}: " + ", ".join(f"{k} {a:.1%}" for k, a in row.items()), flush=True)
    cols = ["actors", *(c for c in next(iter(out.values())) if c != "actors" and corpus_info(c).may_train)]
    for row in out.values():
        row["choice"] = float(np.mean([row[c] for c in cols]))
    return {"preset": preset, "variants": out, "choice_columns": cols, "seconds": seconds}


def report(r: dict) -> str:
    rows = r["variants"]
    cols = r["choice_columns"]
    others = [c for c in next(iter(rows.values())) if c not in cols and c != "choice"]
    head = [
        "training copies",
        *(_title(c) for c in cols),
        "**choice**",
        *(f"{c} (report only)" for c in others),
    ]
    body = [
        [
            v.replace("+", " + "),
            *(f"{row[c]:.1%}" for c in cols),
            f"**{row['choice']:.1%}**",
            *(f"{row[c]:.1%}" for c in others),
        ]
        for v, row in rows.items()
    ]
    return f"{r['preset']}: choice = mean of {', '.join(map(_title, cols))}.\n\n" + table(head, body)


def _title(col: str) -> str:
    return "unseen actors" if col == "actors" else f"{col} held out"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.studies.copies", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, help="folder holding ravdess/, nemo/, savee/, emodb/ (SER_CORPORA_DIR)"
    )
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    root = args.data or corpora_dir()
    if root is None:
        raise SystemExit("copies: needs the corpora: set SER_CORPORA_DIR or pass --data")
    folders = [root / c for c in CORPORA if (root / c).is_dir()]
    r = run(folders, args.preset, tuple(args.variants.split(",")), args.jobs)
    print(report(r))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "copies.json").write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
