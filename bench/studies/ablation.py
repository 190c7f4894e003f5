"""Feature/classifier ablation on the speaker-independent folds (how the default preset was chosen).

    python -m bench.studies.ablation --data $SER_RAVDESS_DIR [--variants mean+std,rich,...]

Frame features are computed once per clip and kept in ``bench/out/frames.npz``; each variant then only
recomputes clip statistics and refits. Every number is speaker-independent (six actor folds); nothing
is tuned on test actors: the variants are fixed in advance and all are reported.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from ser_core.audio import decode
from ser_core.cache import TRAIN_LIMITS
from ser_core.datasets import scan_ravdess
from ser_core.evaluate import cross_validate
from ser_core.features import clip_stats, frame_features, pitch_stats, pitch_track
from ser_core.presets import get_preset
from ser_core.train import MLPParams, fit

from ..common import OUT


def _frames(path: str):
    cfg = get_preset("rich")
    y = decode(path, sr=cfg.sr, limits=TRAIN_LIMITS, check_silence=False)
    F = frame_features(y, cfg)
    f0, voicing = pitch_track(y, cfg)
    p = pitch_stats(f0)
    p[-1] = voicing.mean()
    return F, p


def load_frames(data: str):
    OUT.mkdir(exist_ok=True)
    cache = OUT / "frames.npz"
    clips = scan_ravdess(data).clips
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        offsets, frames = z["offsets"], z["frames"]  # each z[...] access re-reads the file: read once
        Fs = [frames[:, offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
        return clips, Fs, z["pitch"]
    t0 = time.time()
    with ProcessPoolExecutor(2) as pool:
        res = list(pool.map(_frames, [str(c.path) for c in clips], chunksize=16))
    print(f"frame features: {time.time() - t0:.0f} s")
    Fs = [r[0] for r in res]
    pitch = np.stack([r[1] for r in res])
    offsets = np.concatenate([[0], np.cumsum([F.shape[1] for F in Fs])])
    np.savez(cache, frames=np.hstack(Fs), offsets=offsets, pitch=pitch)
    return clips, Fs, pitch


def run(X, y, groups, params: MLPParams, cfg):
    labels = tuple(
        sorted(
            set(y), key=["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"].index
        )
    )

    def fitter(Xtr, ytr, gtr):
        m = fit(Xtr, ytr, features=cfg, params=params)
        return m.predict_proba

    return cross_validate("actors", X, y, groups, fitter, labels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--variants", default="mean+std,rich")
    args = ap.parse_args()
    clips, Fs, pitch = load_frames(args.data)
    y = np.array([c.emotion for c in clips])
    groups = np.array([c.speaker for c in clips])
    base = get_preset("rich")
    results = {}
    for variant in args.variants.split(","):
        name, _, extra = variant.partition(":")
        stats = {
            "mean+std": ("mean", "std"),
            "rich": base.stats,
            "rich+minmax": (*base.stats, "min", "max"),
            "rich+kurt": (*base.stats, "kurt"),
            "quartiles": ("mean", "std", "p10", "p25", "p50", "p75", "p90", "skew", "slope"),
        }[name]
        kw = dict(json.loads(extra)) if extra else {}
        params = MLPParams(**{k: tuple(v) if k == "hidden" else v for k, v in kw.items()})
        X = np.stack([clip_stats(F, stats) for F in Fs])
        X = np.hstack([X, pitch])
        from dataclasses import replace

        cfg = replace(base, stats=stats)
        t0 = time.time()
        s = run(X, y, groups, params, cfg)
        results[variant] = {
            "accuracy": s.accuracy,
            "uar": s.uar,
            "dim": X.shape[1],
            "seconds": time.time() - t0,
        }
        print(
            f"{variant:40s} dim={X.shape[1]:5d} acc={s.accuracy:.3f} uar={s.uar:.3f} "
            f"folds={[f['accuracy'] for f in s.folds]} {time.time() - t0:.0f}s",
            flush=True,
        )
    (OUT / "ablation.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
