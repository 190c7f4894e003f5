"""What `/emotion retrain` costs: the bot's own training job (``python -m bot.train_job``) on RAVDESS, plus nEMO
when ``SER_CORPORA_DIR`` holds it (the shipped recipe's corpora), run twice: with an empty feature cache (cold:
every clip through the encoder) and again with every clip cached. The stages' wall seconds come from the job's
own progress lines; the peak memory is the job process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ser_core.features import DEFAULT_PRESET

from .common import corpora_dir, goal, table

GOAL_COLD_S = 300.0
GOAL_CACHED_S = 60.0
#: The job's stages, in order, as the bot names them (``bot.retrain.STAGE_NAMES``).
STAGES = ("features", "evaluate:actors", "evaluate:corpora", "fit", "calibrate")


def run(data: Path, preset: str = DEFAULT_PRESET) -> dict:
    """Wall seconds per stage and peak RSS of a cold and a cached retrain on ``data`` (+ nEMO if present)."""
    folders = [str(data)]
    root = corpora_dir()
    if root is not None and (root / "nemo").is_dir():
        folders.append(str(root / "nemo"))
    runs = {}
    with tempfile.TemporaryDirectory(prefix="ser-bench-retrain-") as tmp:
        for kind in ("cold", "cached"):  # the same cache folder: the second run finds every clip in it
            runs[kind] = _job(folders, preset, Path(tmp))
    goals = {
        f"/emotion retrain ≤ {GOAL_COLD_S / 60:.0f} min cold": runs["cold"]["total_s"] <= GOAL_COLD_S,
        f"/emotion retrain ≤ {GOAL_CACHED_S:.0f} s with every clip's features cached": runs["cached"][
            "total_s"
        ]
        <= GOAL_CACHED_S,
    }
    return {
        "data": [Path(f).name for f in folders],
        "preset": preset,
        "runs": runs,
        "accuracy": runs["cached"]["accuracy"],
        "goals": goals,
    }


def _job(folders: list[str], preset: str, tmp: Path) -> dict:
    """One ``python -m bot.train_job`` run with its feature cache in ``tmp``: stage seconds, total, peak RSS."""
    job = tmp / "job.json"
    job.write_text(
        json.dumps({"data": folders, "preset": preset, "out": str(tmp / "model.npz"), "version": "bench"}),
        encoding="utf-8",
    )
    env = {**os.environ, "SER_CACHE_DIR": str(tmp / "cache")}
    first: dict[str, float] = {}
    result: dict = {}
    t0 = time.perf_counter()
    log = tmp / "job.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.train_job", str(job)],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                msg = json.loads(line)
                if "stage" in msg:
                    first.setdefault(msg["stage"], time.perf_counter() - t0)
                else:
                    result = msg
        # This job's own resource usage (RUSAGE_CHILDREN would give the largest of all jobs so far).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    total = time.perf_counter() - t0
    if not result.get("ok"):
        tail = log.read_text(errors="replace").strip().splitlines()[-40:] or ["no output"]
        raise RuntimeError(f"the training job failed: {result.get('error', chr(10).join(tail))}")
    # Each stage lasts from its first progress line to the next stage's (the last one: to the end).
    seen = [s for s in STAGES if s in first]
    ends = [first[s] for s in seen[1:]] + [total]
    stages = {s: round(end - first[s], 1) for s, end in zip(seen, ends, strict=True)}
    stages["start-up"] = round(first[seen[0]], 1) if seen else round(total, 1)
    return {
        "total_s": round(total, 1),
        "stages_s": stages,
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # Linux: kB
        "accuracy": result.get("accuracy"),
    }


def report(r: dict) -> str:
    runs = r["runs"]
    names = {
        "start-up": "start-up (imports, reading the folders)",
        "features": "features (encoder, or the cache)",
        "evaluate:actors": "unseen-actor folds (both heads; also the calibration's)",
        "evaluate:corpora": "a model per held-out training corpus",
        "fit": "final fit (both heads)",
        "calibrate": "calibration",
    }
    rows = [[name, *(runs[k]["stages_s"].get(s) for k in ("cold", "cached"))] for s, name in names.items()]
    rows.append(["**total**", runs["cold"]["total_s"], runs["cached"]["total_s"]])
    rows.append(["peak memory of the job, MiB", runs["cold"]["peak_rss_mib"], runs["cached"]["peak_rss_mib"]])
    lines = [
        f"`python -m bot.train_job` as `/emotion retrain` runs it, preset {r['preset']}, on "
        f"{' + '.join(r['data'])}: once with an empty feature cache, once with every clip cached. Wall seconds "
        f"per stage, from the job's progress lines. Unseen-actor accuracy of the new model: "
        f"{r['accuracy']:.1%}.",
        "",
        table(["stage", "cold s", "cached s"], rows),
        "",
    ]
    return "\n".join(lines + [goal(ok, k) for k, ok in r["goals"].items()])
