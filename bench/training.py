"""Training cost: features for every clip cold (a fresh cache) and from the cache, then fitting the model.

Extraction runs in ``n_jobs`` processes (default: both cores); fitting is the default preset's MLP.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ser_core.cache import extract_files
from ser_core.datasets import load_dataset
from ser_core.train import fit
from ser_core.workflow import preset_parts

from .common import goal, table

GOAL_COLD_S = 30.0
GOAL_CACHED_S = 5.0


def run(data: Path, preset: str = "rich", n_jobs: int = 2) -> dict:
    """Seconds for cold extraction, cached extraction and one fit on every clip of ``data``."""
    clips = load_dataset(data).clips
    paths, y = [c.path for c in clips], np.array([c.emotion for c in clips])
    cfg, params = preset_parts(preset)
    with tempfile.TemporaryDirectory(prefix="ser-bench-cache-") as cache:
        t0 = time.perf_counter()
        X = extract_files(paths, cfg, cache_dir=Path(cache), n_jobs=n_jobs, progress=False)
        t1 = time.perf_counter()
        extract_files(paths, cfg, cache_dir=Path(cache), n_jobs=n_jobs, progress=False)
        t2 = time.perf_counter()
    fit(X, y, features=cfg, params=params)
    t3 = time.perf_counter()
    s = {"extract_cold": t1 - t0, "extract_cached": t2 - t1, "fit": t3 - t2}
    s["retrain_cold"] = s["extract_cold"] + s["fit"]
    s["retrain_cached"] = s["extract_cached"] + s["fit"]
    goals = {f"full retrain ≤ {GOAL_COLD_S:.0f} s cold": s["retrain_cold"] <= GOAL_COLD_S,
             f"full retrain ≤ {GOAL_CACHED_S:.0f} s with the cache": s["retrain_cached"] <= GOAL_CACHED_S}  # fmt: skip
    return {"n_clips": len(clips), "preset": preset, "n_jobs": n_jobs, "dim": cfg.dim, "seconds": s, "goals": goals}


def report(r: dict) -> str:
    s, n = r["seconds"], r["n_clips"]
    rows = [
        ["features, cold (fresh cache)", s["extract_cold"], n / s["extract_cold"]],
        ["features, from the cache", s["extract_cached"], n / s["extract_cached"]],
        [f"fit ({r['preset']} MLP, {r['dim']} features)", s["fit"], None],
        ["full retrain, cold", s["retrain_cold"], None],
        ["full retrain, cached", s["retrain_cached"], None],
    ]
    lines = [f"Training on {n} clips, {r['n_jobs']} worker processes for features.", "",
             table(["step", "seconds", "clips/s"], rows), ""]  # fmt: skip
    return "\n".join(lines + [goal(ok, k) for k, ok in r["goals"].items()])
