"""One retraining run in its own process: ``python -m bot.train_job JOB.json``.

The bot starts this as a subprocess, so a crash or running out of memory here cannot take the bot down.
The job file holds {"data" (one folder or a list of corpus folders), "preset", "out", "version", "extra": [{"path", "emotion", "speaker"}]}. Progress
goes to stdout as JSON lines ``{"stage", "done", "total"}``; the last line is ``{"ok": true, "path",
"version", "accuracy"}`` or ``{"ok": false, "error": "<one sentence for the user>"}`` (exit code 1).
Nothing here imports discord.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run(job: dict) -> dict:
    from ser_core import SerError
    from ser_core.datasets import Clip
    from ser_core.presets import DEFAULT_PRESET
    from ser_core.training import train_model

    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done in (0, total) or now - last[0] >= 0.5:  # the bot shows at most one update every ~2 s
            last[0] = now
            emit({"stage": stage, "done": int(done), "total": int(total)})

    extra = [
        Clip(path=Path(c["path"]), emotion=str(c["emotion"]), speaker=str(c["speaker"]))
        for c in job.get("extra", [])
    ]
    try:
        model = train_model(
            job["data"],
            preset=job.get("preset", DEFAULT_PRESET),
            protocols=("actors",),
            extra_clips=extra,
            progress=progress,
            n_jobs=2,
            calibrate_corpora=False,
        )
    except SerError as exc:
        return {"ok": False, "error": str(exc)}
    model.card["version"] = job["version"]
    out = Path(job["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    accuracy = ((model.card.get("scores") or {}).get("actors") or {}).get("accuracy")
    return {"ok": True, "path": str(out), "version": model.version, "accuracy": accuracy}


def _die_with_parent() -> None:
    """On Linux, ask for SIGTERM when the bot dies, so a killed bot leaves no training running."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(AttributeError, OSError):
        os.nice(5)  # the bot's own replies come first
    _die_with_parent()
    try:
        job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    except (IndexError, OSError, ValueError) as exc:
        emit({"ok": False, "error": f"the training job could not be read ({exc})"})
        return 1
    result = run(job)
    emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
