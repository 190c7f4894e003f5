"""One training run in a child process: both ends of it.

The bot side (``Retrainer``) starts ``python -m bot.train_job JOB.json`` and follows its progress; the child
side (``main``, ``run``) trains and reports. The child process isolates the bot from a crash or an
out-of-memory kill during training. The job file holds {"data" (one folder or a list of corpus folders),
"preset", "out", "version", "extra": [{"path", "emotion", "speaker"}]}. Progress goes to stdout as JSON lines
``{"stage", "done", "total"}``, read with asyncio (no thread, no blocking); the last line is ``{"ok": true,
"path", "version", "accuracy"}`` or ``{"ok": false, "error": "<one sentence for the user>"}`` (exit code 1).
One run at a time. Nothing here imports discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
STAGE_NAMES = {
    "features": "extracting features",
    "evaluate:actors": "cross-validating on unseen speakers",
    "evaluate:corpora": "measuring on held-out corpora",
    "evaluate:random": "cross-validating on a random split",
    "calibrate": "calibrating confidence",
    "fit": "fitting the final model",
    "start": "starting",
}


class RetrainError(Exception):
    """Training failed; the message is one sentence for the user."""


@dataclass
class Progress:
    preset: str
    stage: str = "start"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        """``extracting features: 40 % · 0:12 elapsed``."""
        kind, _, name = self.stage.partition(":")
        stage = STAGE_NAMES.get(self.stage) or (
            f"augmenting training clips ({name})" if kind == "augment" else self.stage
        )
        pct = f": {100 * self.done // self.total} %" if self.total else ""
        return f"{stage}{pct} · {format_elapsed(self.elapsed)} elapsed"


@dataclass(frozen=True)
class Candidate:
    path: Path
    version: str
    accuracy: float | None
    seconds: float


def format_elapsed(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


#: What the training process may see of the bot's environment: where Python and the caches are, the locale
#: and the thread settings, and nothing else: not the token, not SER_DATABASE_URL or PGPASSWORD, no cloud keys.
TRAINING_ENV_KEYS = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    "TZ",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "SER_CACHE_DIR",
    "SER_FIT_JOBS",
    "SER_FFMPEG",
    "NUMBA_CACHE_DIR",
    "XDG_CACHE_HOME",
)


def training_env(environ) -> dict[str, str]:
    """The training child's environment: ``TRAINING_ENV_KEYS`` and ``LC_*`` of ``environ``, one thread per BLAS
    and OpenMP pool, this checkout first on the import path."""
    env = {k: v for k, v in environ.items() if k in TRAINING_ENV_KEYS or k.startswith("LC_")}
    env.update(
        {
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")])),
        }
    )
    return env


def new_version() -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


class Retrainer:
    """Runs at most one training process at a time."""

    def __init__(
        self, *, models_dir: Path, python: str = sys.executable, timeout_s: float = 3 * 3600
    ) -> None:
        self.models_dir = Path(models_dir)
        self.python = python
        self.timeout_s = timeout_s
        self.progress: Progress | None = None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.progress is not None

    def begin(self, preset: str) -> Progress:
        """Claim the single slot (synchronously, so two requests cannot both start); RuntimeError if taken."""
        if self.progress is not None:
            raise RuntimeError("a retraining run is already in progress")
        self.progress = Progress(preset)
        return self.progress

    async def run(self, data: Path | Sequence[Path], extra: Sequence[dict]) -> Candidate:
        """Train in a child process (after ``begin``); return the candidate or raise ``RetrainError``."""
        progress = self.progress
        if progress is None:
            raise RuntimeError("call begin() first")
        version = new_version()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        out = self.models_dir / f"candidate-{version}.npz"
        job_file = self.models_dir / f".job-{version}.json"
        folders = [data] if isinstance(data, str | Path) else list(data)
        job = {
            "data": [str(d) for d in folders],
            "preset": progress.preset,
            "out": str(out),
            "version": version,
            "extra": list(extra),
        }
        job_file.write_text(json.dumps(job), encoding="utf-8")
        env = training_env(os.environ)
        try:
            self.process = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "bot.train_job",
                str(job_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
            result = await asyncio.wait_for(self._follow(self.process, progress), self.timeout_s)
        except asyncio.TimeoutError:
            await self._kill()
            raise RetrainError(
                f"training took longer than {format_elapsed(self.timeout_s)} and was stopped"
            ) from None
        except OSError as exc:
            out.unlink(missing_ok=True)
            raise RetrainError(f"the training process could not start ({exc})") from None
        except BaseException:
            out.unlink(missing_ok=True)  # a half-finished run leaves no candidate behind
            raise
        finally:
            job_file.unlink(missing_ok=True)
            self.process = None
        return Candidate(
            Path(result["path"]), str(result["version"]), result.get("accuracy"), progress.elapsed
        )

    def finish(self) -> None:
        self.progress = None

    async def _follow(self, proc: asyncio.subprocess.Process, progress: Progress) -> dict:
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        final: dict | None = None
        try:
            async for raw in proc.stdout:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue  # a stray print from a library
                if "ok" in msg:
                    final = msg
                elif "stage" in msg:
                    progress.stage, progress.done, progress.total = msg["stage"], msg["done"], msg["total"]
            code = await proc.wait()
            stderr = await stderr_task
        except asyncio.CancelledError:
            stderr_task.cancel()
            await self._kill()
            raise
        if final is not None and not final.get("ok"):
            raise RetrainError(str(final.get("error") or "training failed"))
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            raise RetrainError(f"the training process was killed ({name}), perhaps for lack of memory")
        if code != 0 or final is None:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
            log.error("training process exited with %s: %s", code, stderr.decode(errors="replace")[-4000:])
            raise RetrainError(
                f"the training process crashed (exit code {code}{': ' + tail[0][:200] if tail else ''})"
            )
        return final

    async def _kill(self) -> None:
        """Kill the training process and every process it started (its feature workers): the child leads
        its own process group (``start_new_session``), so one signal reaches them all."""
        proc = self.process
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # even after the leader exited, its workers may be left
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)

    async def cancel(self) -> None:
        """Stop a running training process (bot shutdown)."""
        await self._kill()


# ---------------------------------------------------------------------------------- the child process
def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def run_job(job: dict) -> dict:
    """Train as ``job`` says and save the model (in the child process); the last line to report."""
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
    """The child process: ``python -m bot.train_job JOB.json``."""
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
    result = run_job(job)
    emit(result)
    return 0 if result["ok"] else 1
