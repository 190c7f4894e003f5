"""Training cost: features for every clip (and its augmented copies) cold (a fresh cache) and from the cache,
then fitting the model.

Extraction runs in ``n_jobs`` processes (default: both cores); fitting is the default preset's MLP on the
clips plus their copies, as ``ser train`` does.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ser_core.cache import extract_files
from ser_core.datasets import load_dataset
from ser_core.features import DEFAULT_PRESET
from ser_core.train import fit
from ser_core.workflow import preset_augment, preset_parts

from .common import cpu_seconds, goal, table

GOAL_COLD_S = 30.0
GOAL_CACHED_S = 5.0


def run(data: Path, preset: str = DEFAULT_PRESET, n_jobs: int = 2) -> dict:
    """Seconds for cold extraction, cached extraction and one fit on every clip of ``data``."""
    clips = load_dataset(data).clips
    paths, y = [c.path for c in clips], np.array([c.emotion for c in clips])
    cfg, params = preset_parts(preset)
    augment = preset_augment(preset)
    wall, cpu = [time.perf_counter()], [cpu_seconds()]

    def lap() -> None:
        wall.append(time.perf_counter())
        cpu.append(cpu_seconds())

    def extract_all(cache: str) -> np.ndarray:
        return np.vstack(
            [
                extract_files(paths, cfg, cache_dir=Path(cache), n_jobs=n_jobs, progress=False, augment=a)
                for a in (None, *augment)
            ]
        )

    with tempfile.TemporaryDirectory(prefix="ser-bench-cache-") as cache:
        X = extract_all(cache)
        lap()
        extract_all(cache)
        lap()
    fit(X, np.tile(y, 1 + len(augment)), features=cfg, params=params)
    lap()
    steps = ("extract_cold", "extract_cached", "fit")
    s = {k: wall[i + 1] - wall[i] for i, k in enumerate(steps)}
    c = {k: cpu[i + 1] - cpu[i] for i, k in enumerate(steps)}
    for d in (s, c):
        d["retrain_cold"] = d["extract_cold"] + d["fit"]
        d["retrain_cached"] = d["extract_cached"] + d["fit"]
    goals = {
        f"full retrain ≤ {GOAL_COLD_S:.0f} s cold": s["retrain_cold"] <= GOAL_COLD_S,
        f"full retrain ≤ {GOAL_CACHED_S:.0f} s with the cache": s["retrain_cached"] <= GOAL_CACHED_S,
    }
    return {
        "n_clips": len(clips),
        "preset": preset,
        "augment": list(augment),
        "n_jobs": n_jobs,
        "dim": cfg.dim,
        "seconds": s,
        "cpu_seconds": c,
        "classifier": params.to_dict(),
        "goals": goals,
    }


def report(r: dict) -> str:
    s, c, n = r["seconds"], r["cpu_seconds"], r["n_clips"]
    names = {
        "extract_cold": "features, cold (fresh cache)",
        "extract_cached": "features, from the cache",
        "fit": f"fit ({r['preset']} MLP, {r['dim']} features)",
        "retrain_cold": "full retrain, cold",
        "retrain_cached": "full retrain, cached",
    }
    aug = r.get("augment") or []
    nv = n * (1 + len(aug))  # clips and their augmented copies
    rows = [[name, s[k], c[k], nv / s[k] if k.startswith("extract") else None] for k, name in names.items()]
    copies = f" plus one augmented copy each per {', '.join(aug)} ({nv} vectors)" if aug else ""
    lines = [
        f"Training on {n} clips{copies}, {r['n_jobs']} worker processes for features. Wall seconds on a shared "
        "machine; CPU seconds (this process and its workers) do not grow with other load.",
        "",
        table(["step", "wall s", "CPU s", "vectors/s"], rows),
        "",
        f"Classifier: {r.get('classifier', 'not recorded')}",
        "",
    ]
    return "\n".join(lines + [goal(ok, k) for k, ok in r["goals"].items()])
