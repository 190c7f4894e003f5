"""Per-speaker adaptation, simulated on the speaker-independent folds.

    python -m bench.adaptation [--preset rich] [--seed 0]

For each of the six actor folds a model (with its speaker-normalised head) is trained on the other 20
actors (and their augmented copies, as the preset trains). Each test actor is then a new user whose 60 clips arrive one by one in a fixed shuffled order.
Note i is predicted with the profile of notes 0..i-1. Reported per threshold k: accuracy over the notes
that arrive after at least k earlier notes, with the speaker-independent path and with adaptation, on the
same notes; and with oracle statistics (all of the actor's clips).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ser_core.constants import ACTOR_FOLDS
from ser_core.features import DEFAULT_PRESET
from ser_core.speaker import SpeakerProfile
from ser_core.train import fit_adaptive
from ser_core.workflow import load_features, preset_augment, preset_parts

KS = (1, 3, 5, 10, 20)
OUT = Path(__file__).parent / "out"


def simulate(ds, preset: str, seed: int = 0) -> dict:
    """Run the simulation; returns {"k": {k: {"n", "si", "adapted"}}, "oracle", "si_all", "seconds"}."""
    features, params = preset_parts(preset)
    rng = np.random.default_rng(seed)
    hits = {k: {"n": 0, "si": 0, "adapted": 0} for k in KS}
    oracle_hits = si_hits = total = 0
    t0 = time.perf_counter()
    for fold in ACTOR_FOLDS:
        test = np.isin(ds.groups, fold)
        model = fit_adaptive(
            *ds.training_set(np.flatnonzero(~test)), features=features, params=params, min_speaker_clips=1
        )
        labels = np.array(model.labels)
        for actor in fold:
            idx = np.flatnonzero(ds.groups == actor)
            idx = idx[rng.permutation(idx.size)]
            X, y = ds.X[idx], ds.y[idx]
            si = labels[model.predict_proba(X).argmax(1)]
            oracle = SpeakerProfile.of(X)
            orc = labels[model.speaker_head.predict_proba(oracle.normalize(X, model.pop_var)).argmax(1)]
            profile = SpeakerProfile()
            adapted = []
            for i in range(len(idx)):
                if profile.n:
                    z = profile.normalize(X[i : i + 1], model.pop_var)
                    adapted.append(labels[model.speaker_head.predict_proba(z).argmax(1)][0])
                else:
                    adapted.append(si[i])
                profile.update(X[i])
            adapted = np.array(adapted)
            for k in KS:
                sel = np.arange(len(idx)) >= k
                hits[k]["n"] += int(sel.sum())
                hits[k]["si"] += int((si[sel] == y[sel]).sum())
                hits[k]["adapted"] += int((adapted[sel] == y[sel]).sum())
            oracle_hits += int((orc == y).sum())
            si_hits += int((si == y).sum())
            total += len(idx)
    return {
        "k": {
            k: {"n": h["n"], "si": h["si"] / h["n"], "adapted": h["adapted"] / h["n"]}
            for k, h in hits.items()
        },
        "si_all": si_hits / total,
        "oracle": oracle_hits / total,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def table(res: dict) -> str:
    lines = ["| notes already sent (k) | speaker-independent | adapted | gain |", "|---|---|---|---|"]
    for k, r in res["k"].items():
        lines.append(
            f"| {k} | {r['si']:.1%} | {r['adapted']:.1%} | {100 * (r['adapted'] - r['si']):+.1f} pts |"
        )
    lines.append(
        f"| oracle (all the speaker's clips) | {res['si_all']:.1%} | {res['oracle']:.1%} | "
        f"{100 * (res['oracle'] - res['si_all']):+.1f} pts |"
    )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SER_RAVDESS_DIR"))
    ap.add_argument("--preset", default=DEFAULT_PRESET)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("adaptation: needs the RAVDESS folder: set SER_RAVDESS_DIR or pass --data")
    ds = load_features(args.data, preset_parts(args.preset)[0], augment=preset_augment(args.preset))
    res = simulate(ds, args.preset, args.seed)
    print(table(res))
    OUT.mkdir(exist_ok=True)
    (OUT / "adaptation.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
