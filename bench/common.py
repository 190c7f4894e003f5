"""Shared by every part: interleaved timing, Markdown tables, the machine, results.json, the model under test."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import resource
import signal
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser_core.persist import atomic_write

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
RESULTS = BENCH / "results.json"


def interleaved(methods: dict[str, Callable[[], object]], reps: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time (ms) of each method, run round-robin: every repetition runs each method once, in an
    order rotated per repetition, so load from other processes hits all columns alike. ``warmup`` untimed
    rounds first (imports, caches, numba)."""
    names = list(methods)
    for _ in range(warmup):
        for n in names:
            methods[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            t0 = time.perf_counter()
            methods[n]()
            times[n].append((time.perf_counter() - t0) * 1000)
    return {n: statistics.median(t) for n, t in times.items()}


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) of ``values``, None when empty."""
    return float(np.percentile(values, q)) if values else None


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table; floats get 3 significant digits, None shows as an em dash."""

    def cell(v: object) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def goal(ok: bool | None, text: str) -> str:
    """One plain line saying whether a goal is met."""
    return f"- goal {text}: " + ("not measured" if ok is None else "MET" if ok else "NOT met")


def machine() -> dict:
    """Cores, memory (GiB), CPU model (from /proc/cpuinfo), Python, the date (UTC) and the 1-min load average."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "unknown"
    )
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg()[0],
    }


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (e.g. a finished process pool)."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )


def load_results(path: Path = RESULTS) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def rewrite_between(path: Path, begin: str, end: str, body: str, *, missing: str = "") -> None:
    """Replace the text between the markers ``begin`` and ``end`` in ``path`` with ``body``; where the markers
    are not there yet, append ``missing`` (a heading, say) and them first. The rest of the file is kept."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    if begin not in text:
        text += f"\n{missing}{begin}\n{end}\n"
    text = re.sub(
        re.escape(begin) + ".*?" + re.escape(end), lambda _: f"{begin}\n{body}{end}", text, flags=re.S
    )
    path.write_text(text)


async def stop_process(proc, timeout: float = 60.0) -> None:
    """SIGTERM an asyncio subprocess (the bot under test) and wait; SIGKILL it after ``timeout`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()


def _plain(o):
    """numpy scalars and arrays as JSON's own types (a part's numbers are often numpy's: ``np.mean(a) >= b``
    is a ``numpy.bool``, which ``json`` refuses, and an hour's run was lost to it once)."""
    if isinstance(o, np.generic | np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def save_part(part: str, data: dict, path: Path = RESULTS) -> dict:
    """Merge one part's results into ``path`` (other parts keep their last results); return the whole."""
    results = load_results(path)
    results[part] = {**data, "machine": machine()}
    atomic_write(path, (json.dumps(results, indent=1, default=_plain) + "\n").encode("utf-8"))
    return results


def ravdess_dir() -> Path | None:
    d = os.environ.get("SER_RAVDESS_DIR")
    return Path(d) if d and Path(d).is_dir() else None


def corpora_dir() -> Path | None:
    """``SER_CORPORA_DIR`` when it holds at least ravdess/ and one more corpus."""
    d = os.environ.get("SER_CORPORA_DIR")
    if not d or not (Path(d) / "ravdess").is_dir():
        return None
    return Path(d) if any((Path(d) / c).is_dir() for c in ("nemo", "savee", "emodb")) else None


def bench_model(path: str | None = None):
    """(model, description): ``path`` or the shipped model; until that exists, a model of the shipped size
    fitted on random vectors (same features and network shape, so the same cost per clip)."""
    from ser_core import EMOTIONS, ModelError, load_model
    from ser_core.presets import DEFAULT_PRESET
    from ser_core.train import fit
    from ser_core.workflow import preset_parts

    try:
        model = load_model(path)
        return model, f"{path or 'shipped default'} ({model.version})"
    except ModelError:
        if path:
            raise
    cfg, params = preset_parts(DEFAULT_PRESET)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, cfg.dim))
    y = [EMOTIONS[i % len(EMOTIONS)] for i in range(160)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit(X, y, features=cfg, params=dataclasses.replace(params, max_iter=5))
    return (
        model,
        "stand-in: the default preset and network shape fitted on random vectors (no shipped model yet)",
    )
