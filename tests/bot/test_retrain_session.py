"""``Retraining`` on its own: the slot, the refusals, the decision and the install, with a stand-in for the
training process and an in-memory storage (no Discord, no training)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from types import SimpleNamespace

import pytest

from bot.retrain import RETRAIN_ENDED, Candidate, Progress, RetrainError, Retraining, RetrainRefused
from bot.settings import Settings


class SlotStorage:
    """The retrain calls of ``Storage``: the state, the cross-process slot and the published status."""

    def __init__(self) -> None:
        self.state: dict[str, str] = {}
        self.locked = False
        self.elsewhere: dict | None = None  # another process's published run
        self.statuses: list[dict | None] = []

    async def get_state(self, key: str) -> str | None:
        return self.state.get(key)

    async def set_state(self, key: str, value: str) -> None:
        self.state[key] = value

    async def try_lock_retrain(self) -> bool:
        if self.locked:
            return False
        self.locked = True
        return True

    async def unlock_retrain(self) -> None:
        self.locked = False

    async def set_retrain_status(self, status: dict | None) -> None:
        self.statuses.append(status)

    async def retrain_status(self) -> dict | None:
        return self.elsewhere

    async def training_clips(self, folder) -> list[dict]:
        return [
            {"path": "a.ogg", "emotion": "sad", "speaker": "1", "guild": 5},
            {"path": "b.ogg", "emotion": "boredom", "speaker": "1", "guild": 5},  # not one of ours
        ]


class FakeRetrainer:
    """``job.Retrainer`` without a process: ``run`` returns a candidate of the given accuracy, or raises."""

    def __init__(self, models_dir, *, accuracy: float | None = 0.9, error: Exception | None = None) -> None:
        self.models_dir = models_dir
        self.accuracy, self.error = accuracy, error
        self.progress: Progress | None = None
        self.extra: list[dict] | None = None

    @property
    def running(self) -> bool:
        return self.progress is not None

    def begin(self, preset: str) -> Progress:
        self.progress = Progress(preset)
        return self.progress

    def finish(self) -> None:
        self.progress = None

    async def run(self, data, extra) -> Candidate:
        self.extra = list(extra)
        if self.error is not None:
            raise self.error
        path = self.models_dir / "candidate.npz"
        path.write_bytes(b"model")
        return Candidate(path, "new", self.accuracy, 12.0)


class FakeModels:
    def __init__(self) -> None:
        self.model = SimpleNamespace(
            version="old", card={"preset": "rich", "scores": {"actors": {"accuracy": 0.8}}}, features=None
        )
        self.installed: list[str] = []

    async def install(self, path, version):
        self.installed.append(version)
        self.model = SimpleNamespace(version=version, card={}, features=None)
        return self.model


async def stored(what, call, *, write, default=None):
    return await call()


@pytest.fixture
def settings(tmp_path) -> Settings:
    data = tmp_path / "ravdess"
    data.mkdir()
    return Settings(token="t", data_dir=tmp_path / "data", ravdess_dir=data, retrain_cooldown_min=0.0)


def session(settings, tmp_path, **retrainer) -> Retraining:
    return Retraining(
        settings=settings,
        storage=SlotStorage(),  # type: ignore[arg-type]
        models=FakeModels(),  # type: ignore[arg-type]
        stored=stored,
        retrainer=FakeRetrainer(tmp_path, **retrainer),  # type: ignore[arg-type]
    )


async def run(s: Retraining, progress: Progress, *, force: bool = False) -> tuple[str, list[str]]:
    shown: list[str] = []

    async def show(text: str) -> bool:
        return True

    async def result(text: str) -> None:
        shown.append(text)

    text = await s.run(progress, force=force, show_progress=show, show_result=result)
    return text, shown


async def test_a_better_model_is_installed_and_the_slot_freed(settings, tmp_path):
    s = session(settings, tmp_path)
    progress = await s.start(None)
    assert progress.preset == "rich" and s.running and s.storage.locked
    text, shown = await run(s, progress)
    assert text.startswith("✅") and "`new` is now live instead of `old`" in text and shown == [text]
    assert s.models.installed == ["new"]
    assert [c["path"] for c in s.retrainer.extra] == ["a.ogg"]  # only clips of the model's emotions
    assert not s.running and not s.storage.locked and s.storage.statuses[-1] is None
    assert float(s.storage.state[RETRAIN_ENDED]) == pytest.approx(time.time(), abs=5)


async def test_a_worse_model_is_kept_out_unless_forced(settings, tmp_path):
    s = session(settings, tmp_path, accuracy=0.5)
    text, _ = await run(s, await s.start("seed"))
    assert text.startswith("⏹️") and "force:True" in text and s.models.installed == []
    assert not (tmp_path / "candidate.npz").exists()  # the candidate is not left behind
    text, _ = await run(s, await s.start("seed"), force=True)
    assert "(forced)" in text and s.models.installed == ["new"]


async def test_a_failed_run_keeps_the_model_and_frees_the_slot(settings, tmp_path):
    s = session(settings, tmp_path, error=RetrainError("the training process was killed (SIGKILL)"))
    text, shown = await run(s, await s.start(None))
    assert (
        text
        == "❌ Retraining failed: the training process was killed (SIGKILL); the bot keeps using model `old`."
    )
    assert shown == [text] and not s.running and not s.storage.locked


async def test_a_cancelled_run_still_reports_and_frees_the_slot(settings, tmp_path):
    s = session(settings, tmp_path, error=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await run(s, await s.start(None))
    assert not s.running and not s.storage.locked


async def test_refusals(settings, tmp_path):
    s = session(settings, tmp_path)
    await s.start(None)
    with pytest.raises(RetrainRefused, match=r"already in progress \(rich\)"):
        await s.start(None)

    s = session(settings, tmp_path)
    s.storage.elsewhere = {"preset": "seed", "line": "fitting the final model · 1:02 elapsed"}
    with pytest.raises(RetrainRefused, match="in another process \\(seed\\): fitting the final model"):
        await s.start(None)

    s = session(settings, tmp_path)
    s.storage.locked = True  # held elsewhere, with nothing published yet
    with pytest.raises(RetrainRefused, match="another process holds the retraining slot"):
        await s.start(None)
    assert not s.running  # this process's slot is given back too

    s = session(dataclasses.replace(settings, retrain_cooldown_min=15.0), tmp_path)
    s.storage.state[RETRAIN_ENDED] = repr(time.time() - 60)
    with pytest.raises(RetrainRefused, match=r"less than 15 minutes ago .* try again in 14:"):
        await s.start(None)

    s = session(dataclasses.replace(settings, ravdess_dir=None), tmp_path)
    with pytest.raises(RetrainRefused, match="SER_RAVDESS_DIR is not set"):
        await s.start(None)
