"""The Bot: framework concerns only (intents, shards, extensions, command sync, jobs, start and stop).

What it serves comes in through its constructor (``app.build_bot`` assembles it) and the cogs reach it as
attributes: ``storage``, ``resilient`` (storage calls under the storage-down policy), ``models`` (the
``ModelManager``), ``profiles`` (voice profiles), ``analyses`` and ``retraining``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from .analysis import APOLOGY_TEXT, Analyses
from .models import ModelManager
from .modelstore import ModelStore
from .profiles import Profiles
from .resilience import STORAGE_DOWN_TEXT, ResilientStorage
from .retrain import Retraining
from .settings import Settings
from .storage import STORAGE_ERRORS

log = logging.getLogger(__name__)

MESSAGE_CONTENT_OFF = (
    "Discord refused the Message Content intent: automatic analysis of voice messages is OFF. "
    "Enable it in the Developer Portal → your application → Bot → Privileged Gateway Intents → "
    "Message Content Intent, then restart. Slash commands and the context menu still work."
)

INITIAL_EXTENSIONS: tuple[str, ...] = (
    "bot.cogs.listen",
    "bot.cogs.emotion",
    "bot.cogs.feedback",
)


#: What the bot needs in a channel: see it, read the note and its history (for 🔁 after 15 minutes), reply in
#: channels and threads with an embed and its picture. Nothing else (no voice, no moderation).
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    read_message_history=True,
    send_messages=True,
    send_messages_in_threads=True,
    embed_links=True,
    attach_files=True,
)


def invite_url(application_id: int) -> str:
    """The link that adds the bot to a server with exactly ``INVITE_PERMISSIONS`` and its slash commands."""
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class EmotionBot(commands.AutoShardedBot):
    def __init__(
        self,
        *,
        settings: Settings,
        models: ModelManager,
        resilient: ResilientStorage,
        profiles: Profiles,
        analyses: Analyses,
        retraining: Retraining,
        message_content: bool = True,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        _quiet_voice_warnings()
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            chunk_guilds_at_startup=False,
            tree_cls=_Tree,
            guild_ready_timeout=guild_ready_timeout,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shard_ids) if settings.shard_ids else None,
        )
        self.settings = settings
        self.models = models
        self.resilient = resilient
        self.storage = resilient.storage
        self.profiles = profiles
        self.analyses = analyses
        self.retraining = retraining
        self._jobs: set[asyncio.Task] = set()

    @property
    def syncs_commands(self) -> bool:
        """Exactly one process syncs application commands: the one running shard 0 (or all shards)."""
        return not self.settings.shard_ids or 0 in self.settings.shard_ids

    @property
    def listening_to_content(self) -> bool:
        return self._connection._intents.message_content

    async def setup_hook(self) -> None:
        # Leftovers of a training run cut short by a crash or kill of the bot (never the live model).
        removed = await asyncio.get_running_loop().run_in_executor(
            None, ModelStore(self.settings.data_dir).clean_stale
        )
        if removed:
            log.info("removed %d leftover file(s) of an interrupted retraining run", removed)
        # So the first user's note does not pay for librosa's JIT compilation and the encoder's loading; in
        # the background, because setup_hook runs before the gateway connection: a cold numba cache on a busy
        # machine took over 15 s, and the bot was not connected meanwhile (a note then waits, or compiles).
        self._warm_up = asyncio.create_task(self._warm(), name="ser-warm-up")
        for extension in INITIAL_EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("Failed to load extension %s.", extension)
        await self.models.watch()  # adopt what other processes publish (PostgreSQL; nothing for SQLite)
        if not self.syncs_commands:
            log.info("shards %s: another process (shard 0) syncs the application commands", self.shard_ids)
            return
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

    async def _warm(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.models.model.warm_up)
        except Exception:
            log.exception("model warm-up failed; the first analysis will be slower")

    async def on_ready(self) -> None:
        log.info(
            "ready as %s (id %s) in %d server(s) on shard(s) %s of %s; add it to a server: %s",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
            self.shard_ids or "all",
            self.shard_count,
            invite_url(self.application_id or getattr(self.user, "id", 0)),
        )

    @property
    def accepting(self) -> bool:
        """False once shutdown has begun: handlers take no new work."""
        return not self.analyses.closing

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

    # ------------------------------------------------------------------ running and stopping
    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Log in and connect; without the Message Content intent, keep going with slash commands only.

        The intent is checked from the application's flags before connecting: a sharded client that Discord
        refuses (close code 4014) closes itself, so it cannot simply reconnect without the intent."""
        await self._login_with_retries(token)
        if self._connection._intents.message_content and not await self._message_content_allowed():
            log.error(MESSAGE_CONTENT_OFF)
            # The gateway reads the intents from the connection state at each IDENTIFY.
            self._connection._intents.message_content = False
        try:
            await self.connect(reconnect=reconnect)
        except discord.PrivilegedIntentsRequired:
            log.error(MESSAGE_CONTENT_OFF + " (Discord refused it at connect; restart after enabling it.)")
            raise

    #: Waits between attempts to reach Discord at start (s); after the last, ``DiscordUnreachable``.
    LOGIN_RETRIES_S: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 30.0)

    async def _login_with_retries(self, token: str) -> None:
        """Log in; when Discord cannot be reached (no network, no DNS), one log line per attempt and a bounded
        back-off (``LOGIN_RETRIES_S``, about a minute in all), then ``DiscordUnreachable``: no traceback."""
        import aiohttp

        for attempt, wait in enumerate((*self.LOGIN_RETRIES_S, None), start=1):
            try:
                await self.login(token)
                return
            except (aiohttp.ClientConnectionError, OSError, asyncio.TimeoutError) as exc:
                reason = _reason(exc)
                if wait is None:
                    raise DiscordUnreachable(reason) from None
                log.warning(
                    "cannot reach Discord (%s); attempt %d, trying again in %.0f s", reason, attempt, wait
                )
                # login opens a new session on the same connector each time: close this one, and let the next
                # attempt make a fresh connector (closing the session closed the old one).
                await self.http.close()
                self.http.connector = discord.utils.MISSING
                await asyncio.sleep(wait)

    async def _message_content_allowed(self) -> bool:
        try:
            flags = (await self.application_info()).flags
        except discord.HTTPException:
            return True  # cannot tell: try, and let the gateway say
        return flags.gateway_message_content or flags.gateway_message_content_limited

    async def close(self) -> None:
        if self.analyses.closing:
            return await super().close()
        self.analyses.closing = True
        log.info("shutting down: no new analyses; finishing the %d in flight", len(self._jobs))
        jobs = {t for t in self._jobs if t is not asyncio.current_task()}
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=10.0)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("cancelled %d analyses still running after 10 s", len(pending))
                await asyncio.wait(pending, timeout=2.0)
        await self.retraining.retrainer.cancel()
        warm = getattr(self, "_warm_up", None)
        if warm is not None and not warm.done():  # a thread cannot be stopped: let it end (seconds)
            await asyncio.wait({warm}, timeout=30)
        await self.analyses.close()
        await super().close()
        await self.storage.close()
        log.info("shut down cleanly")


def _quiet_voice_warnings() -> None:
    """discord.py warns at every start that PyNaCl and davey are missing, "voice will NOT be supported": this
    bot reads voice *messages* (attachments) and never joins a voice channel, so the warning is noise."""
    logger = logging.getLogger("discord.client")
    if not any(isinstance(f, _VoiceWarnings) for f in logger.filters):
        logger.addFilter(_VoiceWarnings())


class _VoiceWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


class DiscordUnreachable(Exception):
    """Discord could not be reached at start after every retry; the message says why, in a few words."""


def _reason(exc: BaseException) -> str:
    """A short cause for a connection error: the innermost OS error's text, else the exception's name."""
    inner = exc
    while inner.__cause__ is not None or getattr(inner, "os_error", None) is not None:
        inner = getattr(inner, "os_error", None) or inner.__cause__
    text = getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
    return text.splitlines()[0][:160]


class _Tree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", None)
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You cannot use this command here."
        elif isinstance(original, STORAGE_ERRORS) and isinstance(interaction.client, EmotionBot):
            # Logged once per outage by ``stored``, like the analyses' storage calls.
            await interaction.client.resilient.stored(
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
