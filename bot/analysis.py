"""The analysis path as a plain service: who may be analysed where (modes, opt-outs), rate limits, then
download (``download``), prediction and picture in the worker, the voice profile (``profiles``) and storing
(under ``resilience``'s storage-down policy); re-runs, transcripts and forgetting. The cogs call it; it holds no
Discord connection, only the attachments and ids the cogs hand it, so it reads like the library it wraps.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import io
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from ser_core import AudioError, Limits, Model, ModelError, Prediction, Transcript, transcribe
from ser_core.adapt import VoiceProfile
from ser_core.transcript import lower_thread_priority

from . import logic, views
from .download import DownloadRefused, Downloads, safe_url
from .feedback import ClipCache
from .models import ModelManager
from .profiles import ENROL_MINUTES, Profiles, enrolment
from .resilience import HELD, ResilientStorage
from .settings import Settings
from .storage import DEFAULT_MODE, Detection, TranscriptSettings, now
from .worker import Busy, Closed, Worker

log = logging.getLogger(__name__)

BUSY_TEXT = "I'm busy with other notes right now. Try again in a few seconds."
OFF_TEXT = "Emotion analysis is off in this channel. Someone with Manage Server can change that with `/emotion mode`."
FORGOTTEN_NOTE = "you asked me to forget you meanwhile: nothing was stored"
CLOSING_TEXT = "I'm restarting right now. Send the note again in a minute."
APOLOGY_TEXT = "Sorry, something went wrong on my side while analysing this. The error was logged."
TRANSCRIPT_BUSY_TEXT = "I'm transcribing other notes right now. Try again in a minute."
TRANSCRIPT_UNAVAILABLE_TEXT = "Transcripts are not available on this bot right now (the error was logged)."
TRANSCRIPT_OPTED_OUT_TEXT = "The author of this note has opted out, so I won't transcribe it."
#: Transcripts at once (one runs, the rest wait): past that, "busy" at once instead of a queue without end.
#: A transcript costs several times an emotion's CPU, so they have a worker of their own: the emotion
#: path's workers never wait for one.
TRANSCRIPT_QUEUE = 3
#: How long a transcript waits at most for the notes being analysed to be answered before it starts.
TRANSCRIPT_YIELD_S = 10.0
#: Predictions of recent results kept to draw their picture again with the transcript's words (by row id).
RECENT_PREDICTIONS = 64
NOT_HERE_TEXT = "This result belongs to another channel, so I won't re-run it here."
AUDIO_GONE_TEXT = (
    "I no longer have this note's audio (I hold notes in memory only for a few minutes). "
    "Right-click the note → Apps → **Detect emotion** to analyse it again."
)


@dataclass(frozen=True)
class Outcome:
    """The result of one analysis: a prediction, or a sentence for the user saying why not."""

    prediction: Prediction | None = None
    error: str | None = None
    filename: str | None = None
    row_id: int | None = None  # the stored result (feedback buttons need it)
    profile: str | None = None  # "adaptation: ..." when the model supports adaptation, or why not stored
    #: A sentence instead of a result (a neutral reference note was recorded: it is not judged).
    notice: str | None = None
    picture: bytes | None = None  # the PNG of the result (``views.render_note``)
    rerun_of: str | None = None  # a re-run: the version of the model that answered first
    #: The note's bytes, for a transcript after the reply (never shown, never stored).
    audio: bytes | None = dataclasses.field(default=None, repr=False)

    def reply_kwargs(self, *, edit: bool = False) -> dict:
        """Keyword arguments for ``Messageable.send``/``followup.send`` (``edit``: for editing a message)."""
        if self.notice is not None:
            return {"content": self.notice}
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


@dataclass(frozen=True)
class Place:
    """Where a request was made: who asked, in which server (None: a direct message) and channel, and the
    channel whose mode applies there (a thread's parent; None without a channel)."""

    requester_id: int
    guild_id: int | None
    channel_id: int | None
    mode_channel: int | None

    @classmethod
    def of(cls, interaction: discord.Interaction) -> Place:
        """The place of an interaction (a press, a command)."""
        channel_id = interaction.channel_id
        mode_channel = logic.mode_channel_id(interaction.channel, channel_id) if channel_id else None
        return cls(interaction.user.id, interaction.guild_id, channel_id, mode_channel)


@dataclass(frozen=True)
class TranscriptOutcome:
    """A transcript (and the result's picture drawn again with its words, when the prediction was still
    held), or a sentence for the user saying why not."""

    transcript: Transcript | None = None
    picture: bytes | None = None
    error: str | None = None


class Analyses:
    """Everything between "a note arrived" and "here is what to reply"."""

    def __init__(
        self,
        *,
        settings: Settings,
        models: ModelManager,
        resilient: ResilientStorage,
        downloads: Downloads,
        profiles: Profiles,
        worker: Worker | None = None,
        rate_limiter: logic.RateLimiter | None = None,
        clip_cache: ClipCache | None = None,
        charts: Worker | None = None,
        command_limiter: logic.RateLimiter | None = None,
        transcripts: Worker | None = None,
        transcriber: Callable[[bytes, str | None], Transcript] | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.worker = worker or Worker()
        #: Storage calls under the storage-down policy; ``storage`` itself for those that should fail.
        self.resilient = resilient
        self.storage = resilient.storage
        self.downloads = downloads
        self.profiles = profiles
        #: Charts have a worker and a bound of their own: a flood of ``/emotion stats`` never starves notes.
        self.charts = charts or Worker(workers=1, max_pending=4)
        #: Transcripts too: one at a time, a small queue (``TRANSCRIPT_QUEUE``), never beside the notes' work.
        self.transcripts = transcripts or Worker(workers=1, max_pending=TRANSCRIPT_QUEUE)
        self._transcriber = transcriber or self._whisper
        #: Row id → (prediction, speaker) of recent results, to draw their picture again with a transcript.
        self._predictions: collections.OrderedDict[int, tuple[Prediction, int]] = collections.OrderedDict()
        self.rate_limiter = rate_limiter or logic.RateLimiter(capacity=settings.rate_limit)
        #: Commands that queue work but are not notes (``/emotion stats``): their own budget per person.
        self.command_limiter = command_limiter or logic.RateLimiter(capacity=5, per=60.0)
        self.clip_cache = clip_cache if clip_cache is not None else ClipCache()
        #: Set when shutdown begins: new analyses are refused with ``CLOSING_TEXT``.
        self.closing = False

    @property
    def limits(self) -> Limits:
        return Limits(max_bytes=self.settings.max_bytes, max_seconds=self.settings.max_seconds)

    async def close(self) -> None:
        """Try once more to save results held in memory, stop the workers (in-flight jobs get 2 s), and close
        the downloads."""
        await self.resilient.close()
        await self.worker.close(timeout=2.0)
        await self.charts.close(timeout=2.0)
        await self.transcripts.close(timeout=2.0)
        await self.downloads.close()

    # ------------------------------------------------------------------ who may be analysed where
    async def channel_mode(self, channel_id: int, guild_id: int | None) -> str:
        """The effective mode of a channel ("auto", "request" or "off"). Storage down: the last mode read for
        that channel in this process (a channel switched off stays off), else "auto", the default."""
        return await self.resilient.remembered(
            "reading the channel's mode",
            lambda: self.storage.mode(channel_id, guild_id),
            ("mode", channel_id),
            DEFAULT_MODE,
        )

    async def auto_role(self, guild_id: int) -> int | None:
        """The role a member needs to be analysed automatically in ``guild_id`` (None: everyone). Storage
        down: the last one read here."""
        return await self.resilient.remembered(
            "reading the server's role for automatic analysis",
            lambda: self.storage.auto_role(guild_id),
            ("role", guild_id),
            None,
        )

    async def refuse_request(self, place: Place, *, speaker_id: int, speaker_name: str) -> str | None:
        """Why an explicit request (menu, ``/emotion analyze``) cannot be served at ``place``, or None.

        Refused: a channel whose mode is off (a thread follows its parent), and someone else's note when its
        speaker opted out.
        """
        if await self.is_off(place):
            return OFF_TEXT
        if speaker_id != place.requester_id and await self.opted_out(speaker_id):
            name = discord.utils.escape_markdown(speaker_name)
            return (
                f"{name} has opted out of emotion analysis, so I won't analyse their notes. "
                "Thanks for understanding."
            )
        return None

    async def is_off(self, place: Place) -> bool:
        """Whether ``place``'s channel (a thread: its parent's) is in mode off; never in a direct message."""
        if place.guild_id is None or place.mode_channel is None:
            return False
        return await self.channel_mode(place.mode_channel, place.guild_id) == "off"

    def command_refused(self, user_id: int) -> str | None:
        """The sentence for a person over their budget of work-queuing commands, or None."""
        wait = self.command_limiter.hit(user_id)
        if not wait:
            return None
        return f"You asked for that several times in a row. Try again in {math.ceil(wait)} s."

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
        started = now()  # a /emotion forget from now on wins: nothing of this note is stored
        try:
            async with self.worker.reserve():
                data = await self.downloads.fetch(attachment)
                if private is None:  # the caller may have read it already (one round trip less)
                    private = await self.opted_out(user_id)
                model = self.models.model
                async with self.profiles.lock(user_id):
                    saved = {} if private else await self.profiles.saved(user_id)
                    profile = VoiceProfile.from_dict(saved)
                    enrol = enrolment(saved, now())
                    if enrol and model.supports_adaptation:
                        return await self._reference(model, data, profile, enrol, started, user_id, name)
                    pred, picture = await self.worker.run(self._predict_and_draw, model, data, profile)
                    if private:
                        return Outcome(
                            prediction=pred,
                            filename=name,
                            profile="you opted out: nothing was stored",
                            picture=picture,
                            audio=data,
                        )
                    row_id, note = await self._store(
                        pred, model, saved, profile, data, started, user_id, guild_id, channel_id, message_id
                    )
                self._remember(row_id, pred, user_id)
                return Outcome(
                    prediction=pred, filename=name, row_id=row_id, profile=note, picture=picture, audio=data
                )
        except Exception as exc:
            return _failed(exc, f"analysis of {name} ({safe_url(str(attachment.url))})", filename=name)

    async def _reference(
        self,
        model: Model,
        data: bytes,
        profile: VoiceProfile,
        enrol: dict,
        started: float,
        user_id: int,
        name: str | None,
    ) -> Outcome:
        """A note sent while ``/emotion calibrate`` waits for references: folded in as one (never judged,
        never stored but as sums in the profile); the reply says how many are in and what comes next."""
        pred = await self.worker.run(lambda: model.predict(data, limits=self.limits))
        if pred.features is None:
            return Outcome(error=APOLOGY_TEXT, filename=name)
        left = await self.profiles.add_reference(user_id, profile, enrol, pred.features, started)
        if left is None:
            return Outcome(
                error="I could not store that reference note; try `/emotion calibrate` again later."
            )
        return Outcome(notice=views.reference_text(profile.k, left))

    async def _store(
        self,
        pred: Prediction,
        model: Model,
        saved: dict,
        profile: VoiceProfile,
        data: bytes,
        started: float,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        message_id: int | None,
    ) -> tuple[int | None, str | None]:
        """Fold the note into the voice profile and store the result, unless the speaker was forgotten since
        ``started``; (the row id or None, the footer's note). Called under the speaker's profile lock."""
        note = None
        if pred.features is not None and pred.cold is not None:
            kept = await self.profiles.add_note(
                user_id, saved, profile, pred.features, pred.cold, model.labels, started
            )
            if not kept:
                return None, FORGOTTEN_NOTE
            if model.supports_adaptation:
                note = views.adaptation_note(pred.adaptation)
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
        row_id = await self.resilient.save_result(detection, since=started)
        if row_id is HELD:  # storage down: the reply still comes, without the buttons meanwhile
            return None, note
        if row_id is None:
            return None, FORGOTTEN_NOTE
        self.clip_cache.put(row_id, data, owner=user_id)
        return row_id, note

    async def refuse_rerun(
        self,
        row: Detection,
        place: Place,
        *,
        opted_out_text: str = "The author of this note has opted out of emotion analysis, so I won't analyse "
        "it again.",
    ) -> str | None:
        """Why 🔁 (or 📝) on ``row`` cannot be served at ``place``, or None: a press in another server or
        channel than the result's (a custom id is the client's to forge), a channel in mode off (a thread
        follows its parent), or someone else's note when its author opted out."""
        if row.guild_id != place.guild_id or row.channel_id != place.channel_id:
            return NOT_HERE_TEXT
        if await self.is_off(place):
            return OFF_TEXT
        if place.requester_id != row.user_id and await self.opted_out(row.user_id):
            return opted_out_text
        return None

    # ------------------------------------------------------------------ transcripts
    async def transcript_settings(self, channel_id: int | None, guild_id: int | None) -> TranscriptSettings:
        """Whether transcripts are automatic in a channel (a thread: pass its parent) and the server's pinned
        language. In a direct message, or with storage down: off, detected."""
        if guild_id is None or channel_id is None:
            return TranscriptSettings()
        return await self.resilient.stored(
            "reading the transcript settings",
            lambda: self.storage.transcript_settings(channel_id, guild_id),
            write=False,
            default=TranscriptSettings(),
        )

    async def transcribe(
        self,
        data: bytes,
        *,
        language: str | None,
        row_id: int | None = None,
        prediction: Prediction | None = None,
    ) -> TranscriptOutcome:
        """What the note ``data`` says, in the transcripts' worker (the caller holds a slot of
        ``self.transcripts``), and the result's picture drawn again with the words when its prediction is at
        hand (``prediction``, or still held for ``row_id``). Shown, never stored."""
        held = self._predictions.get(row_id) if row_id is not None else None
        pred = prediction or (held[0] if held else None)
        # Notes first: while any is being analysed, a transcript waits (up to TRANSCRIPT_YIELD_S), so a burst
        # of notes is answered as fast as without transcripts.
        loop = asyncio.get_running_loop()
        until = loop.time() + TRANSCRIPT_YIELD_S
        while self.worker.pending and loop.time() < until:
            await asyncio.sleep(0.05)
        try:
            return await self.transcripts.run(self._transcribe_and_draw, data, language, pred)
        except AudioError as exc:
            return TranscriptOutcome(error=str(exc))
        except ModelError as exc:
            log.error("transcripts are unavailable: %s", exc)
            return TranscriptOutcome(error=TRANSCRIPT_UNAVAILABLE_TEXT)
        except Exception:
            log.exception("a transcript failed")
            return TranscriptOutcome(error=APOLOGY_TEXT)

    def _transcribe_and_draw(
        self, data: bytes, language: str | None, pred: Prediction | None
    ) -> TranscriptOutcome:
        # The transcripts' own thread, and the ffmpeg it starts to decode, yield the cores to the notes' work
        # (the model's threads already do: ``transcript.load``)
        lower_thread_priority()
        said = self._transcriber(data, language)
        picture = None
        if pred is not None and pred.timeline and said.words:
            try:
                picture = views.render_note(pred, said)
            except Exception:
                log.exception("drawing the picture with the transcript failed; editing the text in only")
        return TranscriptOutcome(transcript=said, picture=picture)

    def _whisper(self, data: bytes, language: str | None) -> Transcript:
        return transcribe(data, language=language, limits=self.limits)

    def forget_held(self, user_id: int) -> None:
        """Drop what is held in memory of ``user_id``'s notes: their audio and their predictions."""
        self.clip_cache.forget_owner(user_id)
        for row_id in [k for k, (_, owner) in self._predictions.items() if owner == user_id]:
            del self._predictions[row_id]

    def _remember(self, row_id: int | None, pred: Prediction, user_id: int) -> None:
        if row_id is None:
            return
        self._predictions[row_id] = (pred, user_id)
        self._predictions.move_to_end(row_id)
        while len(self._predictions) > RECENT_PREDICTIONS:
            self._predictions.popitem(last=False)

    async def rerun(
        self, row: Detection, place: Place, *, fetch: Callable[[], Awaitable[bytes | None]]
    ) -> Outcome:
        """Analyse a stored result's note again with the live model and replace the stored answer (same row,
        so its buttons keep working). The voice profile is read, not updated: it is the same note.

        Refused as ``refuse_rerun`` says, and over the rate limit, before any download. The audio is the one
        held in memory, else ``fetch()`` (None: gone). An author who opted out is answered, nothing stored.
        """
        refusal = await self.refuse_rerun(row, place)
        if refusal:
            return Outcome(error=refusal)
        private = await self.opted_out(row.user_id)
        refused = self._rate_limited(place.requester_id)
        if refused:
            return refused
        assert row.id is not None
        try:
            async with self.worker.reserve():
                data = self.clip_cache.get(row.id) or await fetch()
                if data is None:
                    return Outcome(error=AUDIO_GONE_TEXT)
                model = self.models.model
                profile = VoiceProfile.from_dict({} if private else await self.profiles.saved(row.user_id))
                pred, picture = await self.worker.run(self._predict_and_draw, model, data, profile)
                if not private:
                    answer = dataclasses.replace(
                        row,
                        label=pred.label,
                        confidence=pred.confidence,
                        probabilities=pred.probabilities,
                        model_version=pred.model_version,
                    )
                    await self.resilient.stored(
                        "saving a re-run", lambda: self.storage.replace_result(row.id, answer), write=True
                    )
                self._remember(row.id, pred, row.user_id)
                return Outcome(prediction=pred, row_id=row.id, picture=picture, rerun_of=row.model_version)
        except Exception as exc:
            return _failed(exc, f"re-run of result {row.id}")

    async def forget(self, user_id: int) -> tuple[int, int]:
        """``/emotion forget``: every stored result, kept clip (and the features the training cache derived
        from it) and the voice profile of ``user_id``, and the notes held in memory; a note being analysed
        now is not stored after this (``add_detection``'s ``since``). Returns (results, clips) deleted."""
        from ser_core import cache

        digests = await self.storage.kept_clip_digests(user_id)
        # No waiting for that person's note in flight: the storage's forget mark makes its stores skip.
        n, files = await self.storage.forget_user(user_id)
        self.forget_held(user_id)
        gone = await asyncio.get_running_loop().run_in_executor(None, cache.forget, digests)
        if gone:
            log.info("forget: removed %d cached feature vectors of kept clips", gone)
        return n, files

    def _rate_limited(self, key: int) -> Outcome | None:
        wait = self.rate_limiter.hit(key)
        if not wait:
            return None
        return Outcome(
            error=f"You are sending notes faster than I can listen ({self.rate_limiter.capacity} a minute). "
            f"Try again in {math.ceil(wait)} s."
        )

    async def add_reference(self, attachment, *, user_id: int) -> Outcome:
        """``/emotion calibrate file:``: that file is one neutral reference note (pre-checked, rate-limited,
        downloaded and analysed like any note; never judged, never stored but as sums)."""
        reason = logic.precheck(
            attachment, max_bytes=self.settings.max_bytes, max_seconds=self.settings.max_seconds
        )
        if reason:
            return Outcome(error=reason)
        refused = self._rate_limited(user_id)
        if refused:
            return refused
        started = now()
        try:
            async with self.worker.reserve():
                data = await self.downloads.fetch(attachment)
                model = self.models.model
                async with self.profiles.lock(user_id):
                    saved = await self.profiles.saved(user_id)
                    enrol = enrolment(saved, started) or {"left": 1, "until": started + ENROL_MINUTES * 60}
                    profile = VoiceProfile.from_dict(saved)
                    return await self._reference(model, data, profile, enrol, started, user_id, None)
        except Exception as exc:
            return _failed(exc, f"reference note ({safe_url(str(attachment.url))})")

    def _predict_and_draw(
        self, model: Model, data: bytes, profile: VoiceProfile
    ) -> tuple[Prediction, bytes | None]:
        """In the worker: the prediction, and its picture (None if drawing failed: the text still goes)."""
        pred = model.predict(data, limits=self.limits, profile=profile)
        try:
            picture = views.render_note(pred)
        except Exception:
            log.exception("drawing the picture of a result failed; replying without it")
            picture = None
        return pred, picture

    async def opted_out(self, user_id: int) -> bool:
        """Whether ``user_id`` opted out. With storage down, the last answer read (people seen opting out
        are remembered in this process), else False: an outage must not silence the bot for everyone."""
        return await self.resilient.remembered(
            "reading an opt-out", lambda: self.storage.opted_out(user_id), ("opted out", user_id), False
        )


def _failed(exc: Exception, what: str, *, filename: str | None = None) -> Outcome:
    """The reply when ``what`` raised ``exc``: busy, closing or the audio's own sentence for the user; anything
    else is our fault, logged with its traceback and answered with an apology."""
    if isinstance(exc, Busy):
        return Outcome(error=BUSY_TEXT)
    if isinstance(exc, Closed):
        return Outcome(error=CLOSING_TEXT)
    if isinstance(exc, AudioError | DownloadRefused):
        return Outcome(error=str(exc), filename=filename)
    log.error("%s failed", what, exc_info=exc)
    return Outcome(error=APOLOGY_TEXT, filename=filename)
