"""A retrain session, from the request to the live model: the one slot (this process's, and every process's
through the storage), the cooldown, the kept clips, the run (``job.Retrainer``), the decision and the install.

Nothing here talks to Discord. The cog asks ``start`` for the slot (``RetrainRefused`` says why not, in one
sentence for the user), then hands ``run`` two callables: one shows a progress line, one the result.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ser_core import EMOTIONS, ModelError

from .job import Progress, Retrainer, RetrainError, format_elapsed

if TYPE_CHECKING:
    from ..models import ModelManager
    from ..settings import Settings
    from ..storage import Storage

log = logging.getLogger(__name__)

#: The new model must not be worse than the live one by more than this (accuracy, 0..1) to be swapped in.
MAX_DROP = 0.01
#: ``Storage.get_state`` key: when the last retraining run ended (unix time).
RETRAIN_ENDED = "retrain_ended"
BUSY_ELSEWHERE = (
    "A retraining run is already in progress in another process ({preset}): {line}. Wait for it to finish."
)


class RetrainRefused(Exception):
    """A retraining run that cannot start now; the message is one sentence for the user."""


def live_accuracy(card: dict) -> float | None:
    """``card["scores"]["actors"]["accuracy"]`` if the card has one."""
    try:
        value = card["scores"]["actors"]["accuracy"]
    except (KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def decide(new: float | None, live: float | None, *, force: bool = False) -> tuple[bool, str]:
    """Whether to swap in a model scoring ``new`` for one scoring ``live``, and why (a sentence part)."""
    if force:
        return True, "forced"
    if live is None:
        return True, "the live model has no speaker-independent score to compare with"
    if new is None:
        return False, "the new model has no speaker-independent score"
    if new >= live - MAX_DROP:
        return True, f"{new:.1%} vs {live:.1%} for the live model"
    return False, f"{new:.1%} is more than 1 point below the live model's {live:.1%}"


def cap_kept_clips(clips: Sequence[dict], *, per_user: int, per_server: int) -> tuple[list[dict], int]:
    """The kept clips a retrain may use: the newest ``per_user`` of each person and ``per_server`` of each
    server (direct messages count as one), so no one voice or community steers the model all servers share.
    ``clips`` oldest first (as ``Storage.training_clips``); returns (the clips kept, oldest first; how many
    were left out)."""
    users: dict[str, int] = {}
    servers: dict[object, int] = {}
    kept = []
    for c in reversed(clips):
        user, server = str(c["speaker"]), c.get("guild")
        if users.get(user, 0) >= per_user or servers.get(server, 0) >= per_server:
            continue
        users[user] = users.get(user, 0) + 1
        servers[server] = servers.get(server, 0) + 1
        kept.append(c)
    kept.reverse()
    return kept, len(clips) - len(kept)


def cooldown_left(last_ended: float | None, cooldown_s: float, now: float) -> float:
    """Seconds until another retrain may start after one that ended at ``last_ended`` (unix time)."""
    if last_ended is None or cooldown_s <= 0:
        return 0.0
    return max(0.0, last_ended + cooldown_s - now)


def progress_message(progress: Progress) -> str:
    """``🔄 Retraining (`rich`): extracting features: 40 % · 0:12 elapsed``."""
    return f"🔄 Retraining (`{progress.preset}`): {progress.line()}"


def busy_here(progress: Progress) -> str:
    return f"A retraining run is already in progress ({progress.preset}): {progress.line()}. Wait for it to finish."


class Retraining:
    """At most one retraining run across every process sharing the storage, from ``start`` to the install.

    ``stored`` is the storage-down policy (``ResilientStorage.stored``): a failing storage call is logged once
    and answered with its default, so an outage cannot leave the slot taken.
    """

    #: Seconds between updates of the progress (the message, and the status other processes read).
    PROGRESS_EVERY_S = 2.0

    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        models: ModelManager,
        stored: Callable[..., Awaitable],
        retrainer: Retrainer,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.models = models
        self.stored = stored
        self.retrainer = retrainer

    @property
    def running(self) -> bool:
        return self.retrainer.running

    async def start(self, preset: str | None) -> Progress:
        """Claim the slot for a run of ``preset`` (default: the live model's). ``RetrainRefused`` when a run
        is in progress here or elsewhere, the last one ended too recently, or there is no data to train on."""
        retrainer, storage, settings = self.retrainer, self.storage, self.settings
        if retrainer.progress is not None:
            raise RetrainRefused(busy_here(retrainer.progress))
        elsewhere = await self.stored("reading the retraining status", storage.retrain_status, write=False)
        if elsewhere:
            raise RetrainRefused(BUSY_ELSEWHERE.format(**elsewhere))
        ended = await self.stored(
            "reading the last retraining", lambda: storage.get_state(RETRAIN_ENDED), write=False
        )
        wait = cooldown_left(_float(ended), settings.retrain_cooldown_min * 60, time.time())
        if wait:
            raise RetrainRefused(
                f"The last retraining run ended less than {settings.retrain_cooldown_min:g} minutes ago "
                f"(SER_RETRAIN_COOLDOWN_MIN); try again in {format_elapsed(math.ceil(wait))}."
            )
        data = settings.ravdess_dir
        if data is None or not data.is_dir():
            what = "SER_RAVDESS_DIR is not set" if data is None else f"SER_RAVDESS_DIR={data} is not a folder"
            raise RetrainRefused(
                f"I cannot retrain: {what}. Point it at the RAVDESS folder (or a folder with labels.csv) "
                "and restart the bot."
            )
        model = self.models.model
        chosen = preset or str(model.card.get("preset") or model.features.preset or "rich")
        if retrainer.progress is not None:  # another request claimed it while this one read the storage
            raise RetrainRefused(busy_here(retrainer.progress))
        progress = retrainer.begin(chosen)  # this process's slot, before the next await
        try:
            # ... and the one slot of every process sharing the storage (an advisory lock in PostgreSQL)
            locked = await self.stored("claiming the retraining slot", storage.try_lock_retrain, write=False)
        except BaseException:
            await self.abandon()
            raise
        if not locked:
            retrainer.finish()
            elsewhere = await self.stored(
                "reading the retraining status", storage.retrain_status, write=False
            )
            raise RetrainRefused(
                BUSY_ELSEWHERE.format(**elsewhere)
                if elsewhere
                else "I cannot retrain right now: another process holds the retraining slot, or the "
                "database is unreachable. Try again in a minute."
            )
        return progress

    async def abandon(self) -> None:
        """Give the slot back without a run (the request could not even be answered)."""
        self.retrainer.finish()
        await self._release()

    async def run(
        self,
        progress: Progress,
        *,
        force: bool,
        show_progress: Callable[[str], Awaitable[bool]],
        show_result: Callable[[str], Awaitable[None]],
    ) -> str:
        """Train (after ``start``), decide and install. Every ``PROGRESS_EVERY_S`` the progress is published
        for other processes (a retrain request there shows it) and shown with ``show_progress`` (False: stop).
        Whatever happens, the slot is freed and ``show_result`` gets the sentence for the user, also returned.
        ``force``: install even a worse model."""
        old = self.models.model
        ticker = asyncio.create_task(self._tick(progress, show_progress))
        text = f"❌ Retraining stopped; the bot keeps using model `{old.version}`."
        clips_dir = self.retrainer.models_dir / f".clips-{time.time_ns()}"
        try:
            text = await self._train_and_install(clips_dir, force)
        except RetrainError as exc:
            text = f"❌ Retraining failed: {exc}; the bot keeps using model `{self.models.model.version}`."
        except ModelError as exc:
            text = (
                f"❌ Retraining failed: the new model does not load ({exc}); the bot keeps using "
                f"`{self.models.model.version}`."
            )
        except asyncio.CancelledError:
            text = (
                "❌ Retraining was stopped because the bot is shutting down; it keeps model "
                f"`{self.models.model.version}`."
            )
            raise
        except Exception:
            log.exception("retraining failed")
            text = (
                "❌ Retraining failed because of an error on my side (logged); the bot keeps using "
                f"`{self.models.model.version}`."
            )
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, clips_dir, True)
            await self.stored(
                "recording the end of a retraining run",
                lambda: self.storage.set_state(RETRAIN_ENDED, repr(time.time())),
                write=True,
            )
            await self.abandon()
            await show_result(text)
        log.info("retraining: %s", text)
        return text

    async def _train_and_install(self, clips_dir: Path, force: bool) -> str:
        """The run itself: train on the data set and the kept clips, then install the candidate if
        ``decide`` says so (else delete it); the sentence for the user."""
        settings, old = self.settings, self.models.model
        extra, left_out = await self.kept_clips(clips_dir)
        cand = await self.retrainer.run(settings.training_data, extra)
        ok, why = decide(cand.accuracy, live_accuracy(old.card), force=force)
        took = format_elapsed(cand.seconds)
        if not ok:
            cand.path.unlink(missing_ok=True)
            return (
                f"⏹️ Retrained in {took}, but kept model `{old.version}`: {why}; run "
                f"`/emotion retrain force:True` to use the new one anyway."
            )
        new = await self.models.install(cand.path, cand.version)
        capped = (
            f" ({left_out} more left out: at most {settings.clips_per_user} a person and "
            f"{settings.clips_per_server} a server)"
            if left_out
            else ""
        )
        return (
            f"✅ Retrained in {took} on {len(extra)} kept clip(s){capped} plus the data set: model "
            f"`{new.version}` is now live instead of `{old.version}` ({why}); `/emotion rollback` "
            "restores the previous one."
        )

    async def kept_clips(self, folder: Path) -> tuple[list[dict], int]:
        """Consented feedback clips as training clips (files in ``folder`` if the storage keeps them
        elsewhere; the user id is the speaker), capped per person and per server (``cap_kept_clips``); and how
        many the caps left out."""
        clips = [c for c in await self.storage.training_clips(folder) if c["emotion"] in EMOTIONS]
        settings = self.settings
        return cap_kept_clips(clips, per_user=settings.clips_per_user, per_server=settings.clips_per_server)

    async def rollback(self) -> str:
        """Serve the previous model again; the sentence saying so, or why not."""
        old = self.models.model.version
        try:
            new = await self.models.rollback()
        except ModelError as exc:
            return f"I cannot roll back: {exc}; the bot keeps using model `{old}`."
        return f"↩️ Rolled back: model `{new.version}` is live again instead of `{old}`."

    async def _tick(self, progress: Progress, show: Callable[[str], Awaitable[bool]]) -> None:
        storage = self.storage
        while True:
            status = {"preset": progress.preset, "line": progress.line()}
            await self.stored(
                "publishing retraining progress", lambda s=status: storage.set_retrain_status(s), write=True
            )
            await asyncio.sleep(self.PROGRESS_EVERY_S)
            if not await show(progress_message(progress)):
                return

    async def _release(self) -> None:
        """Clear the published status and release every process's slot."""
        storage = self.storage
        await self.stored(
            "clearing the retraining status", lambda: storage.set_retrain_status(None), write=True
        )
        await self.stored("releasing the retraining slot", storage.unlock_retrain, write=True)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
