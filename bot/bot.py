"""The Bot subclass: owns the model, settings, storage, the bounded worker and the rate limiter."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import math
import sqlite3
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from ser_core import AudioError, Limits, Model, ModelError, Prediction, load_model
from ser_core.speaker import SpeakerProfile

from . import logic, views
from .feedback import ClipCache
from .modelstore import ModelStore
from .retrain import Retrainer
from .settings import Settings
from .storage import DEFAULT_MODE, Detection, Storage, now
from .worker import Busy, Closed, Worker

log = logging.getLogger(__name__)

INITIAL_EXTENSIONS: tuple[str, ...] = (
    "bot.cogs.listen",
    "bot.cogs.emotion",
    "bot.cogs.feedback",
)

DOWNLOAD_TIMEOUT_S = 30.0
BUSY_TEXT = "I'm busy with other notes right now. Try again in a few seconds."
CLOSING_TEXT = "I'm restarting right now. Send the note again in a minute."
APOLOGY_TEXT = "Sorry, something went wrong on my side while analysing this. The error was logged."
STORAGE_DOWN_TEXT = (
    "My storage is unavailable right now, so I cannot show stored results (the error was logged). "
    "Analysing voice notes still works; new results are not being saved until it is fixed."
)
#: What a database that is read-only, full, locked, corrupt or gone raises.
STORAGE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, OSError)


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


class EmotionBot(commands.Bot):
    def __init__(
        self,
        *,
        settings: Settings,
        model: Model,
        storage: Storage,
        worker: Worker | None = None,
        rate_limiter: logic.RateLimiter | None = None,
        message_content: bool = True,
        guild_ready_timeout: float = 2.0,
        model_path: Path | None = None,
        clip_cache: ClipCache | None = None,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            tree_cls=_Tree,
            guild_ready_timeout=guild_ready_timeout,
        )
        self.settings = settings
        #: The live model. Swapped (one reference assignment) by ``install_model``; an analysis holds the
        #: reference it started with, so a swap never mixes two models in one reply.
        self.model = model
        #: The live model's file (for the pointer's "previous"); None: unknown (the shipped model).
        self.model_path = model_path if model_path is not None else settings.model_path
        self.models = ModelStore(settings.data_dir)
        self.clip_cache = clip_cache if clip_cache is not None else ClipCache()
        self._profile_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._swap_lock = asyncio.Lock()
        self.retrainer = Retrainer(models_dir=self.models.dir)
        self.storage = storage
        self.worker = worker or Worker()
        self.rate_limiter = rate_limiter or logic.RateLimiter(capacity=settings.rate_limit)
        self._closing = False
        self._jobs: set[asyncio.Task] = set()
        #: Users seen opted out (the answer to fall back on while storage is down).
        self._opted_out: set[int] = set()
        #: False from the first failed storage call until a write succeeds again; logged once per outage.
        self.storage_ok = True

    @property
    def limits(self) -> Limits:
        return Limits(max_bytes=self.settings.max_bytes, max_seconds=self.settings.max_seconds)

    @property
    def listening_to_content(self) -> bool:
        return self._connection._intents.message_content

    async def setup_hook(self) -> None:
        # Leftovers of a training run cut short by a crash or kill of the bot (never the live model).
        removed = await asyncio.get_running_loop().run_in_executor(None, self.models.clean_stale)
        if removed:
            log.info("removed %d leftover file(s) of an interrupted retraining run", removed)
        try:  # so the first user's note does not pay for librosa's JIT compilation
            await asyncio.get_running_loop().run_in_executor(None, self.model.warm_up)
        except Exception:
            log.exception("model warm-up failed; the first analysis will be slower")
        for extension in INITIAL_EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("Failed to load extension %s.", extension)
        try:
            if self.settings.dev_guild_id:
                guild = discord.Object(self.settings.dev_guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d commands to guild %s", len(synced), guild.id)
            else:
                synced = await self.tree.sync()
                log.info("synced %d global commands (they can take a while to appear)", len(synced))
        except discord.HTTPException:
            log.exception("could not sync application commands; existing ones stay registered")

    async def on_ready(self) -> None:
        log.info(
            "ready as %s (id %s) in %d server(s)", self.user, getattr(self.user, "id", "?"), len(self.guilds)
        )

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: handlers take no new work."""
        return not self._closing

    @contextlib.asynccontextmanager
    async def job(self) -> AsyncIterator[None]:
        """Track the current task (analysis + reply) so shutdown can finish or cancel it."""
        task = asyncio.current_task()
        if task is not None:
            self._jobs.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._jobs.discard(task)

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
        """The effective mode of a channel ("auto", "request" or "off"). Storage down: "auto", the default,
        so notes are still answered."""
        return await self.stored(
            "reading the channel's mode",
            lambda: self.storage.mode(channel_id, guild_id),
            write=False,
            default=DEFAULT_MODE,
        )

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
    async def answer_interaction(
        self, interaction: discord.Interaction, attachment: discord.Attachment, **who: int | None
    ) -> None:
        """Defer ``interaction`` (analysis can outlast Discord's 3 s), analyse ``attachment`` and follow up.
        ``who`` is ``analyze``'s keyword arguments (user, guild, channel, message, requester ids)."""
        await interaction.response.defer(thinking=True)
        async with self.job():
            outcome = await self.analyze(attachment, **who)
            await interaction.followup.send(**outcome.reply_kwargs())

    async def analyze(
        self,
        attachment: discord.Attachment,
        *,
        user_id: int,
        guild_id: int | None,
        channel_id: int | None,
        message_id: int | None,
        requester_id: int | None = None,
    ) -> Outcome:
        """Pre-check, rate-limit, download, predict and draw (in the worker), store. Never raises for user
        errors.

        ``user_id`` is the speaker (the result is stored under them, so ``/emotion forget`` finds it);
        ``requester_id`` (default: the speaker) is who is rate-limited. ``guild_id`` None: a direct message,
        stored apart from every server. A speaker who opted out is analysed (they asked) but nothing about
        them is stored: no result, no voice profile update, no clip held for consent.
        """
        name = attachment.filename
        if self._closing:
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
                private = await self.opted_out(user_id)
                model = self.model
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
        except Busy:
            return Outcome(error=BUSY_TEXT)
        except Closed:
            return Outcome(error=CLOSING_TEXT)
        except AudioError as exc:
            return Outcome(error=str(exc), filename=name)
        except Exception:
            log.exception("analysis of %s (%s) failed", name, attachment.url)
            return Outcome(error=APOLOGY_TEXT, filename=name)

    async def rerun(self, row: Detection, data: bytes, *, requester_id: int) -> Outcome:
        """Analyse a stored result's note again with the live model and replace the stored answer (same row,
        so its buttons keep working). The voice profile is read, not updated: it is the same note."""
        refused = self._rate_limited(requester_id)
        if refused:
            return refused
        assert row.id is not None
        try:
            async with self.worker.reserve():
                model = self.model
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
        except Busy:
            return Outcome(error=BUSY_TEXT)
        except Closed:
            return Outcome(error=CLOSING_TEXT)
        except AudioError as exc:
            return Outcome(error=str(exc))
        except Exception:
            log.exception("re-run of result %s failed", row.id)
            return Outcome(error=APOLOGY_TEXT)

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
        out = await self.stored(
            "reading an opt-out",
            lambda: self.storage.opted_out(user_id),
            write=False,
            default=user_id in self._opted_out,
        )
        (self._opted_out.add if out else self._opted_out.discard)(user_id)
        return out

    def _profile_lock(self, user_id: int) -> asyncio.Lock:
        """One lock per speaker: their notes update the profile one at a time (read, predict, write)."""
        lock = self._profile_locks.get(user_id)
        if lock is None:
            lock = self._profile_locks[user_id] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------------ swapping models
    async def install_model(self, path: Path, *, previous: Path | None) -> Model:
        """Load ``path``, point ``current.json`` at it (atomically), then swap the live model.

        Raises ``ModelError`` (nothing changed) if the file does not load.
        """
        async with self._swap_lock:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(None, load_model, path)
            await loop.run_in_executor(None, lambda: self.models.write(path, previous))
            self.model, self.model_path = model, Path(path)
            log.info("now serving model %s from %s", model.version, path)
            return model

    async def rollback_model(self) -> Model:
        """Serve the previous model again (the pointer then names the current one as previous).

        Raises ``ModelError`` with a sentence for the user when there is nothing to roll back to.
        """
        pointer = await asyncio.get_running_loop().run_in_executor(None, self.models.read)
        if pointer is None or pointer.previous is None:
            raise ModelError("there is no previous model to roll back to")
        return await self.install_model(pointer.previous, previous=self.model_path)

    # ------------------------------------------------------------------ running and stopping
    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Log in and connect; without the Message Content intent, keep going with slash commands only."""
        await self.login(token)
        while True:
            try:
                await self.connect(reconnect=reconnect)
                return
            except discord.PrivilegedIntentsRequired:
                if not self._connection._intents.message_content:
                    raise
                log.error(
                    "Discord refused the Message Content intent: automatic analysis of voice messages is OFF. "
                    "Enable it in the Developer Portal → your application → Bot → Privileged Gateway Intents → "
                    "Message Content Intent, then restart. Slash commands and the context menu still work."
                )
                # The gateway reads the intents from the connection state at each IDENTIFY.
                self._connection._intents.message_content = False

    async def close(self) -> None:
        if self._closing:
            return await super().close()
        self._closing = True
        log.info("shutting down: no new analyses; finishing the %d in flight", len(self._jobs))
        jobs = {t for t in self._jobs if t is not asyncio.current_task()}
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=10.0)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d analyses still running after 10 s", len(pending))
                await asyncio.wait(pending, timeout=2.0)
        retrainer = getattr(self, "retrainer", None)
        if retrainer is not None:
            await retrainer.cancel()
        await self.worker.close(timeout=2.0)
        await super().close()
        await self.storage.close()
        log.info("shut down cleanly")


class _Tree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", None)
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You cannot use this command here."
        elif isinstance(original, STORAGE_ERRORS) and isinstance(interaction.client, EmotionBot):
            # Logged once per outage by ``stored``, like the analyses' storage calls.
            await interaction.client.stored(
                f"/{getattr(interaction.command, 'qualified_name', '?')}", _raiser(original), write=True
            )
            text = STORAGE_DOWN_TEXT
        else:
            log.error(
                "command %s failed", getattr(interaction.command, "qualified_name", "?"), exc_info=error
            )
            text = APOLOGY_TEXT
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not report an error to the user")


def _raiser(exc: BaseException) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        raise exc

    return call
