"""The analysis path as a plain service: who may be analysed where (modes, opt-outs), rate limits, download,
prediction and picture in the worker, storing. The cogs call it; it holds no Discord connection, only the
attachments and ids the cogs hand it, so it reads like the library it wraps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from ser_core import AudioError, Limits, Model, Prediction
from ser_core.speaker import SpeakerProfile

from . import logic, views
from .feedback import ClipCache
from .models import ModelManager
from .settings import Settings
from .storage import DEFAULT_MODE, STORAGE_ERRORS, Detection, Storage, now
from .worker import Busy, Closed, Worker

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 30.0
BUSY_TEXT = "I'm busy with other notes right now. Try again in a few seconds."
CLOSING_TEXT = "I'm restarting right now. Send the note again in a minute."
APOLOGY_TEXT = "Sorry, something went wrong on my side while analysing this. The error was logged."
STORAGE_DOWN_TEXT = (
    "My storage is unavailable right now, so I cannot show stored results (the error was logged). "
    "Analysing voice notes still works; new results are not being saved until it is fixed."
)


@dataclass(frozen=True)
class Outcome:
    """The result of one analysis: a prediction, or a sentence for the user saying why not."""

    prediction: Prediction | None = None
    error: str | None = None
    filename: str | None = None
    row_id: int | None = None  # the stored result (feedback buttons need it)
    profile: str | None = None  # "voice profile: ..." when the model supports adaptation, or why not stored
    picture: bytes | None = None  # the PNG of the result (``views.render_note``)
    rerun_of: str | None = None  # a re-run: the version of the model that answered first

    def reply_kwargs(self, *, edit: bool = False) -> dict:
        """Keyword arguments for ``Messageable.send``/``followup.send`` (``edit``: for editing a message)."""
        if self.prediction is None:
            return {"content": views.error_text(self.error or APOLOGY_TEXT)}
        embed = views.result_embed(
            self.prediction, filename=self.filename, profile=self.profile, rerun_of=self.rerun_of
        )
        kwargs: dict = {"embed": embed}
        if self.picture is not None:
            embed.set_image(url=f"attachment://{views.NOTE_PICTURE}")
            file = discord.File(io.BytesIO(self.picture), views.NOTE_PICTURE, description=embed.title)
            kwargs["attachments" if edit else "file"] = [file] if edit else file
        elif edit:
            kwargs["attachments"] = []
        if self.row_id is not None:
            kwargs["view"] = views.feedback_view(self.row_id)
        return kwargs


class Analyses:
    """Everything between "a note arrived" and "here is what to reply", and the storage-down policy."""

    def __init__(
        self,
        *,
        settings: Settings,
        models: ModelManager,
        storage: Storage,
        worker: Worker | None = None,
        rate_limiter: logic.RateLimiter | None = None,
        clip_cache: ClipCache | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.storage = storage
        self.worker = worker or Worker()
        self.rate_limiter = rate_limiter or logic.RateLimiter(capacity=settings.rate_limit)
        self.clip_cache = clip_cache if clip_cache is not None else ClipCache()
        #: Set when shutdown begins: new analyses are refused with ``CLOSING_TEXT``.
        self.closing = False
        self._profile_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        #: Opt-outs, channel modes and server roles last read here that differ from the default: the answers
        #: to fall back on while storage is down (``_remembered``).
        self._last_read: dict[tuple, object] = {}
        #: False from the first failed storage call until a write succeeds again; logged once per outage.
        self.storage_ok = True

    @property
    def limits(self) -> Limits:
        return Limits(max_bytes=self.settings.max_bytes, max_seconds=self.settings.max_seconds)

    # ------------------------------------------------------------------ storage that may fail
    async def stored(self, what: str, call: Callable[[], Awaitable], *, write: bool, default=None):
        """Run one storage call; on a database error return ``default`` instead of raising.

        An outage is logged once (with the traceback), not once per note; the first successful write after it
        logs the recovery. Analyses go on without storage: results are answered, just not saved.
        """
        try:
            result = await call()
        except STORAGE_ERRORS as exc:
            if self.storage_ok:
                self.storage_ok = False
                log.error(
                    "storage failed (%s): analyses continue, results are not saved until it works again",
                    what,
                    exc_info=exc,
                )
            else:
                log.debug("storage still failing (%s): %r", what, exc)
            return default
        if write and not self.storage_ok:
            self.storage_ok = True
            log.warning("storage works again (%s)", what)
        return result

    # ------------------------------------------------------------------ who may be analysed where
    async def channel_mode(self, channel_id: int, guild_id: int | None) -> str:
        """The effective mode of a channel ("auto", "request" or "off"). Storage down: the last mode read for
        that channel in this process (a channel switched off stays off), else "auto", the default."""
        return await self._remembered(
            "reading the channel's mode",
            lambda: self.storage.mode(channel_id, guild_id),
            ("mode", channel_id),
            DEFAULT_MODE,
        )

    async def auto_role(self, guild_id: int) -> int | None:
        """The role a member needs to be analysed automatically in ``guild_id`` (None: everyone). Storage
        down: the last one read here."""
        return await self._remembered(
            "reading the server's role for automatic analysis",
            lambda: self.storage.auto_role(guild_id),
            ("role", guild_id),
            None,
        )

    async def _remembered(self, what: str, call: Callable[[], Awaitable], key: tuple, usual):
        """``stored(call)``, falling back while storage is down on the last answer read for ``key`` in this
        process, else ``usual``. Only answers other than ``usual`` are kept, so the memory stays small."""
        value = await self.stored(what, call, write=False, default=self._last_read.get(key, usual))
        if value == usual:
            self._last_read.pop(key, None)
        else:
            self._last_read[key] = value
        return value

    async def refuse_request(
        self, interaction: discord.Interaction, *, speaker: discord.abc.User
    ) -> str | None:
        """Why an explicit request (menu, ``/emotion analyze``) cannot be served here, or None.

        Refused: a channel whose mode is off, and someone else's note when its speaker opted out.
        """
        in_server = interaction.guild_id is not None and interaction.channel_id is not None
        if in_server and await self.channel_mode(interaction.channel_id, interaction.guild_id) == "off":
            return (
                "Emotion analysis is off in this channel. Someone with Manage Server can change that "
                "with `/emotion mode`."
            )
        if speaker.id != interaction.user.id and await self.opted_out(speaker.id):
            return (
                f"{speaker.display_name} has opted out of emotion analysis, so I won't analyse their notes. "
                "Thanks for understanding."
            )
        return None

    # ------------------------------------------------------------------ the one analysis path
    async def analyze(
        self,
        attachment: discord.Attachment,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        message_id: int | None,
        requester_id: int | None = None,
        private: bool | None = None,
    ) -> Outcome:
        """Pre-check, rate-limit, download, predict and draw (in the worker), store. Never raises for user
        errors.

        ``user_id`` is the speaker (the result is stored under them, so ``/emotion forget`` finds it);
        ``requester_id`` (default: the speaker) is who is rate-limited. ``guild_id`` None: a direct message,
        stored apart from every server. A speaker who opted out is analysed (they asked) but nothing about
        them is stored: no result, no voice profile update, no clip held for consent.
        """
        name = attachment.filename
        if self.closing:
            return Outcome(error=CLOSING_TEXT)
        reason = logic.precheck(
            attachment, max_bytes=self.settings.max_bytes, max_seconds=self.settings.max_seconds
        )
        if reason:
            return Outcome(error=reason, filename=name)
        refused = self._rate_limited(requester_id if requester_id is not None else user_id)
        if refused:
            return refused
        try:
            async with self.worker.reserve():
                try:
                    data = await asyncio.wait_for(attachment.read(), DOWNLOAD_TIMEOUT_S)
                except (discord.HTTPException, asyncio.TimeoutError) as exc:
                    log.warning("download of %s failed: %r", attachment.url, exc)
                    return Outcome(
                        error="I could not download the file from Discord. Try again.", filename=name
                    )
                if len(data) > self.settings.max_bytes:  # the metadata lied or was missing
                    return Outcome(
                        error=logic.precheck_size(len(data), self.settings.max_bytes), filename=name
                    )
                if private is None:  # the caller may have read it already (one round trip less)
                    private = await self.opted_out(user_id)
                model = self.models.model
                async with self._profile_lock(user_id):
                    profile = SpeakerProfile() if private else await self._profile(user_id, model)
                    pred, picture = await self.worker.run(self._predict_and_draw, model, data, profile)
                    note = None
                    if pred.features is not None and not private:
                        profile.update(pred.features)
                        await self.stored(
                            "saving a voice profile",
                            lambda: self.storage.save_profile(user_id, profile.to_dict()),
                            write=True,
                        )
                        if model.supports_adaptation:
                            note = views.profile_note(
                                adapted=pred.speaker_adapted, n=profile.n, needed=model.min_speaker_clips
                            )
                    if private:
                        note = "you opted out: nothing was stored"
                row_id = None
                if not private:
                    detection = Detection(
                        guild_id=guild_id,
                        channel_id=channel_id,
                        user_id=user_id,
                        message_id=message_id,
                        created_at=now(),
                        label=pred.label,
                        confidence=pred.confidence,
                        probabilities=pred.probabilities,
                        duration_s=pred.duration_s,
                        model_version=pred.model_version,
                    )
                    # Not saved (storage down): the reply still comes, without the buttons.
                    row_id = await self.stored(
                        "saving a result", lambda: self.storage.add_detection(detection), write=True
                    )
                    if row_id is not None:
                        self.clip_cache.put(row_id, data, owner=user_id)
                return Outcome(prediction=pred, filename=name, row_id=row_id, profile=note, picture=picture)
        except Exception as exc:
            return _failed(exc, f"analysis of {name} ({attachment.url})", filename=name)

    async def rerun(self, row: Detection, data: bytes, *, requester_id: int) -> Outcome:
        """Analyse a stored result's note again with the live model and replace the stored answer (same row,
        so its buttons keep working). The voice profile is read, not updated: it is the same note."""
        refused = self._rate_limited(requester_id)
        if refused:
            return refused
        assert row.id is not None
        try:
            async with self.worker.reserve():
                model = self.models.model
                profile = await self._profile(row.user_id, model)
                pred, picture = await self.worker.run(self._predict_and_draw, model, data, profile)
                answer = dataclasses.replace(
                    row,
                    label=pred.label,
                    confidence=pred.confidence,
                    probabilities=pred.probabilities,
                    model_version=pred.model_version,
                )
                await self.stored(
                    "saving a re-run", lambda: self.storage.replace_result(row.id, answer), write=True
                )
                return Outcome(prediction=pred, row_id=row.id, picture=picture, rerun_of=row.model_version)
        except Exception as exc:
            return _failed(exc, f"re-run of result {row.id}")

    def _rate_limited(self, key: int) -> Outcome | None:
        wait = self.rate_limiter.hit(key)
        if not wait:
            return None
        return Outcome(
            error=f"You are sending notes faster than I can listen ({self.rate_limiter.capacity} a minute). "
            f"Try again in {math.ceil(wait)} s."
        )

    async def _profile(self, user_id: int, model: Model) -> SpeakerProfile:
        saved = await self.stored(
            "reading a voice profile", lambda: self.storage.get_profile(user_id), write=False
        )
        profile = SpeakerProfile.from_dict(saved or {})
        if profile.n and profile.mean.shape != (model.features.dim,):
            profile = SpeakerProfile()  # built with another feature set: start again
        return profile

    def _predict_and_draw(
        self, model: Model, data: bytes, profile: SpeakerProfile
    ) -> tuple[Prediction, bytes | None]:
        """In the worker: the prediction, and its picture (None if drawing failed: the text still goes)."""
        pred = model.predict(data, limits=self.limits, speaker=profile)
        try:
            picture = views.render_note(pred)
        except Exception:
            log.exception("drawing the picture of a result failed; replying without it")
            picture = None
        return pred, picture

    async def opted_out(self, user_id: int) -> bool:
        """Whether ``user_id`` opted out. With storage down, the last answer read (people seen opting out
        are remembered in this process), else False: an outage must not silence the bot for everyone."""
        return await self._remembered(
            "reading an opt-out", lambda: self.storage.opted_out(user_id), ("opted out", user_id), False
        )

    def _profile_lock(self, user_id: int) -> asyncio.Lock:
        """One lock per speaker: their notes update the profile one at a time (read, predict, write)."""
        lock = self._profile_locks.get(user_id)
        if lock is None:
            lock = self._profile_locks[user_id] = asyncio.Lock()
        return lock


def _failed(exc: Exception, what: str, *, filename: str | None = None) -> Outcome:
    """The reply when ``what`` raised ``exc``: busy, closing or the audio's own sentence for the user; anything
    else is our fault, logged with its traceback and answered with an apology."""
    if isinstance(exc, Busy):
        return Outcome(error=BUSY_TEXT)
    if isinstance(exc, Closed):
        return Outcome(error=CLOSING_TEXT)
    if isinstance(exc, AudioError):
        return Outcome(error=str(exc), filename=filename)
    log.error("%s failed", what, exc_info=exc)
    return Outcome(error=APOLOGY_TEXT, filename=filename)
