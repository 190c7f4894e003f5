"""The bot under a burst: the real bot process (``bench.botproc``, i.e. ``python -m bot``'s ``run``) against the
loopback fake Discord (``bot.testing.fakediscord``) in this process.

Phases, each from a distinct user per note (so that the per-person rate limit, ``SER_RATE_LIMIT``, stays on as
deployed and never refuses one): 20 single notes one at a time, 30 notes at once, then ``sustained`` notes one every 0.3 s.
Reply latency runs from just before the fake dispatches MESSAGE_CREATE to the fake receiving the reply
(both ``time.perf_counter``, CLOCK_MONOTONIC, comparable across processes on Linux).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bot.testing.fakediscord import FakeDiscord

from .clips import CASES, SHORT_S, VOICE_NOTE, make_clips
from .common import BENCH, bench_model, goal, percentile, ravdess_dir, stop_process, table

GOAL_SINGLE_P95_MS = 150.0
GOAL_LAG_MS = 100.0
WARMUP = 2  # notes before measuring: the first ones pay for lazy imports and caches


async def _send(fake: FakeDiscord, note: bytes) -> tuple[int, float]:
    """Post the voice note from a new user; (message id, send time)."""
    author = fake.user(fake.new_id(), "listener")
    t = time.perf_counter()
    msg = await fake.send_message(attachments=[fake.voice_attachment(note, SHORT_S)], author=author)
    return int(msg["id"]), t


async def _collect(fake: FakeDiscord, sent: dict[int, float], timeout: float) -> dict:
    """Wait up to ``timeout`` s after the last send for every reply; latencies (ms) and counts."""
    deadline = time.perf_counter() + timeout
    while True:
        replies = {r.reply_to: r for r in fake.records if r.kind == "message" and r.reply_to in sent}
        if len(replies) == len(sent) or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.02)
    lat = [(r.at - sent[i]) * 1000 for i, r in replies.items()]
    errors = [r.content for r in replies.values() if not r.embeds]
    end = max((r.at for r in replies.values()), default=time.perf_counter())
    return {
        "n": len(sent),
        "answered": len(replies),
        "predictions": len(replies) - len(errors),
        "errors": sorted(set(errors))[:3],
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "max_ms": max(lat, default=None),
        "start": min(sent.values()),
        "end": end,
        "notes_per_s": len(replies) / (end - min(sent.values())),
    }


async def _phases(
    fake: FakeDiscord, note: bytes, single: int, burst: int, sustained: int, interval: float, warmup: int
) -> dict:
    for _ in range(warmup):
        i, t = await _send(fake, note)
        await _collect(fake, {i: t}, 60)
    out = {}
    sent: dict[int, float] = {}
    for _ in range(single):
        i, t = await _send(fake, note)
        sent[i] = t
        await _collect(fake, {i: t}, 30)
    out["single"] = await _collect(fake, sent, 0)
    await asyncio.sleep(0.5)
    sends = [await _send(fake, note) for _ in range(burst)]  # back to back: one gateway frame each
    out["burst"] = await _collect(fake, dict(sends), 60)
    await asyncio.sleep(0.5)
    sent, t0 = {}, time.perf_counter()
    for k in range(sustained):
        await asyncio.sleep(max(0.0, t0 + k * interval - time.perf_counter()))
        i, t = await _send(fake, note)
        sent[i] = t
    out["sustained"] = await _collect(fake, sent, 60)
    return out


async def _run(
    model_path: str | None, single: int, burst: int, sustained: int, interval: float, warmup: int
) -> dict:
    model, desc = bench_model(model_path)
    with tempfile.TemporaryDirectory(prefix="ser-bench-bot-") as tmp:
        tmp = Path(tmp)
        model_file = tmp / "model.npz"
        model.save(model_file)
        clips, source = make_clips(tmp, ravdess_dir(), {VOICE_NOTE: CASES[VOICE_NOTE]})
        note = clips[VOICE_NOTE].read_bytes()
        stats_file, log_file = tmp / "stats.json", tmp / "bot.log"
        async with FakeDiscord() as fake:
            env = {k: v for k, v in os.environ.items() if not (k.startswith("SER_") or k == "DISCORD_TOKEN")}
            env.update(
                fake.env(),
                DISCORD_TOKEN="bench-token",
                SER_DATA_DIR=str(tmp / "data"),
                SER_MODEL_PATH=str(model_file),
                PYTHONPATH=str(BENCH.parent),
            )
            with log_file.open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.botproc", str(stats_file), cwd=tmp, env=env, stderr=log
                )
                try:
                    await fake.wait_ready(60)
                    phases = await _phases(fake, note, single, burst, sustained, interval, warmup)
                finally:
                    await stop_process(proc)
        if not stats_file.is_file():
            raise RuntimeError(
                f"the bot process wrote no stats; its log ends:\n{log_file.read_text()[-2000:]}"
            )
        stats = json.loads(stats_file.read_text())
    first = min(p["start"] for p in phases.values())
    for p in phases.values():  # loop lag inside each phase's window, then drop the raw clock values
        p["max_lag_ms"] = max((ms for t, ms in stats["lag"] if p["start"] <= t <= p["end"]), default=None)
        del p["start"], p["end"]
    max_lag = max(p["max_lag_ms"] or 0.0 for p in phases.values())
    startup_lag = max((ms for t, ms in stats["lag"] if t < first), default=None)
    ok_all = all(p["predictions"] == p["n"] for p in phases.values())
    goals = {
        "every note answered with a prediction": ok_all,
        f"single-note p95 ≤ {GOAL_SINGLE_P95_MS:.0f} ms": (phases["single"]["p95_ms"] or 1e9)
        <= GOAL_SINGLE_P95_MS,
        f"event-loop lag never above {GOAL_LAG_MS:.0f} ms": max_lag <= GOAL_LAG_MS,
    }
    return {
        "model": desc,
        "audio": source,
        "note_bytes": len(note),
        "interval_s": interval,
        "phases": phases,
        "max_lag_ms": max_lag,
        "startup_lag_ms": startup_lag,
        "warmup": warmup,
        "peak_rss_mib": stats["maxrss_kib"] / 1024,
        "goals": goals,
    }


def run(
    model_path: str | None = None,
    single: int = 20,
    burst: int = 30,
    sustained: int = 200,
    interval: float = 0.3,
    warmup: int = WARMUP,
) -> dict:
    """Start the bot process and the fake, run the phases, stop the bot with SIGTERM; the results."""
    return asyncio.run(_run(model_path, single, burst, sustained, interval, warmup))


def report(r: dict) -> str:
    phases = {k: r["phases"][k] for k in ("single", "burst", "sustained") if k in r["phases"]}
    names = {
        "single": "single notes, one at a time",
        "burst": "notes dispatched at once",
        "sustained": f"notes, one every {r['interval_s']} s",
    }
    rows = [
        [
            f"{p['n']} {names[k]}",
            f"{p['answered']}/{p['n']}",
            p["predictions"],
            p["p50_ms"],
            p["p95_ms"],
            p["max_ms"],
            p["notes_per_s"],
            p["max_lag_ms"],
        ]
        for k, p in phases.items()
    ]
    lines = [
        f"The bot process against the loopback fake Discord; {r['note_bytes']}-byte 3.4 s OGG/Opus voice note "
        f"({r['audio']}); model: {r['model']}; a new user per note.",
        "",
        table(
            [
                "phase",
                "answered",
                "with a prediction",
                "p50 ms",
                "p95 ms",
                "max ms",
                "notes/s",
                "max loop lag ms",
            ],
            rows,
        ),
        "",
        f"Peak memory of the bot process (ru_maxrss): {r['peak_rss_mib']:.0f} MiB; "
        f"maximum event-loop lag during the phases: {r['max_lag_ms']:.1f} ms "
        f"(during start-up, connection and the {r.get('warmup', WARMUP)} warm-up notes: {r['startup_lag_ms']:.1f} ms).",
        "",
    ]
    for p in phases.values():
        lines += [f"- error reply: {e!r}" for e in p["errors"]]
    return "\n".join(lines + [goal(ok, k) for k, ok in r["goals"].items()])
