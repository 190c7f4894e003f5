"""What each training augmentation buys, on clean and on Discord-like test clips.

    python -m bench.studies.augmentation [--preset compact] [--variants none,opus,...,opus+noise]

For each variant (a ``+``-joined set of ``ser_core.augment`` names, or ``none``), the preset is trained on
the six speaker-independent training parts, each clip of those parts joined by one augmented copy per name,
and scored on the untouched test actors under the test-time conditions ``clean``, ``discord`` and
``noisy20`` (``ser_core.conditions``; the conditioned test vectors are computed once and shared by all
variants). Prints a table and writes ``bench/out/augmentation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from ser_core.augment import AUGMENTATIONS
from ser_core.features import DEFAULT_PRESET, get_preset
from ser_core.workflow import condition_features, load_features, score_conditions

from ..common import OUT

CONDITIONS = ("clean", "discord", "noisy20")
SIX = "opus+pitch+speed+noise+gain+reverb"  # every single augmentation the issue lists, one copy each
VARIANTS = ("none", *AUGMENTATIONS, SIX, "+".join(AUGMENTATIONS))


def run(data: str, preset: str, variants: tuple[str, ...], n_jobs: int = 2) -> dict:
    """``{"variants": {variant: {condition: scores}}, "seconds": {...}}``."""
    names = sorted({n for v in variants if v != "none" for n in v.split("+")}, key=AUGMENTATIONS.index)
    t0 = time.perf_counter()
    ds = load_features(data, get_preset(preset), n_jobs=n_jobs, augment=names)
    t_features = time.perf_counter() - t0
    conditioned = condition_features(ds, get_preset(preset), CONDITIONS, n_jobs=n_jobs)
    t_conditions = time.perf_counter() - t0 - t_features
    everything = ds.augmented
    out = {}
    for v in variants:
        chosen = () if v == "none" else tuple(v.split("+"))
        ds.augmented = {n: everything[n] for n in chosen}
        out[v] = score_conditions(ds, conditioned, preset)
        print(f"  {v}: " + ", ".join(f"{c} {r['accuracy']:.1%}" for c, r in out[v].items()), flush=True)
    return {
        "preset": preset,
        "variants": out,
        "seconds": {"features": round(t_features, 1), "conditions": round(t_conditions, 1)},
    }


def table(res: dict) -> str:
    base = res["variants"].get("none")
    lines = [
        "| training augmentation | " + " | ".join(CONDITIONS) + " | discord drop | noisy20 drop |",
        "|---|" + "---|" * (len(CONDITIONS) + 2),
    ]
    for v, r in res["variants"].items():
        cells = []
        for c in CONDITIONS:
            delta = (
                f" ({100 * (r[c]['accuracy'] - base[c]['accuracy']):+.1f})" if base and v != "none" else ""
            )
            cells.append(f"{r[c]['accuracy']:.1%}{delta}")
        lines.append(
            f"| {v.replace('+', ' + ')} | "
            + " | ".join(cells)
            + f" | {r['discord']['drop_vs_clean']:.1f} | {r['noisy20']['drop_vs_clean']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SER_RAVDESS_DIR"))
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("augmentation: needs the RAVDESS folder: set SER_RAVDESS_DIR or pass --data")
    res = run(args.data, args.preset, tuple(args.variants.split(",")), args.jobs)
    print(table(res))
    OUT.mkdir(exist_ok=True)
    (OUT / "augmentation.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
