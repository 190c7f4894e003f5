"""The ``/emotion`` slash command group: analyze, history, stats, model, mode, transcripts, optout, optin, forget,
retrain, rollback. It works in servers and in direct messages with the bot; the server-only ones say so in a DM."""

from __future__ import annotations

import asyncio
import io
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from ser_core import EMOTIONS, ConfigError, ModelError, presets
from ser_core.transcript import language_code, language_name

from .. import logic, views
from ..bot import STORAGE_DOWN_TEXT, EmotionBot
from ..retrain import (
    Progress,
    RetrainError,
    cap_kept_clips,
    cooldown_left,
    decide,
    format_elapsed,
    live_accuracy,
)
from ..service import ENROL_MINUTES
from ..worker import Busy, Closed

log = logging.getLogger(__name__)

CHART_NAME = "stats.png"
#: Presets offered by ``/emotion retrain``: the ``ser_core.presets`` registry, the default first.
PRESET_CHOICES = [app_commands.Choice(name=name, value=name) for name in presets.names()]
ADMIN_ONLY = (
    "Only the bot's operators (its owner or team in the Developer Portal, or SER_ADMIN_IDS) can {what}: "
    "the model is shared by every server the bot is in, so a server's administrators cannot."
)
BUSY_ELSEWHERE = (
    "A retraining run is already in progress in another process ({preset}): {line}. Wait for it to finish."
)
SERVER_ONLY = "This command works in a server, not in direct messages."
#: ``/emotion mode`` choices → stored mode (None: the channel follows the server's default).
MODE_CHOICES = {"auto": "auto", "on request": "request", "off": "off", "server default": None}
#: ``/emotion transcripts auto:`` choices → stored setting (None: the channel follows the server's default).
TRANSCRIPT_CHOICES = {"on": True, "off": False, "server default": None}
MODE_TEXT = {
    "auto": "**auto**: I reply to every voice message and audio file",
    "request": "**on request**: I analyse a note only when someone asks (right-click it → Apps → Detect "
    "emotion, or `/emotion analyze`)",
    "off": "**off**: I analyse nothing here, not even on request",
}


@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)
@app_commands.allowed_installs(guilds=True, users=False)
class Emotion(commands.GroupCog, group_name="emotion", group_description="Speech emotion recognition"):
    #: Seconds between edits of the retraining progress message.
    PROGRESS_EVERY_S = 2.0

    def __init__(self, bot: EmotionBot) -> None:
        self.bot = bot
        self._tasks: set[asyncio.Task] = set()
        super().__init__()

    async def cog_unload(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _is_operator(self, interaction: discord.Interaction) -> bool:
        # Visible to everyone (a subcommand cannot be hidden), so the check is here, server-side, and it asks
        # who operates the bot, never what the member may do in this one server.
        owners: set[int] = set()
        try:
            if await self.bot.is_owner(interaction.user):
                owners.add(interaction.user.id)
        except discord.HTTPException:
            log.warning("could not read the application's owner; only SER_ADMIN_IDS count now")
        return logic.is_operator(interaction.user.id, self.bot.settings.admin_ids, owners)

    @app_commands.command()
    @app_commands.describe(file="A voice note or audio file (OGG, MP3, WAV, FLAC, M4A)")
    async def analyze(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Detect the emotion in an audio file."""
        refusal = await self.bot.analyses.refuse_request(interaction, speaker=interaction.user)
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await self.bot.answer_interaction(
            interaction,
            file,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            message_id=None,
        )

    @app_commands.command()
    @app_commands.describe(user="Only this person's notes")
    async def history(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        """Show the latest detections in this server (in a direct message: your own, sent to me there)."""
        guild_id = interaction.guild_id
        if guild_id is None:  # direct messages are private: only the person's own, never another's
            user = interaction.user
        scope = await self._readable(interaction)
        if scope is _DOWN:
            await interaction.response.send_message(STORAGE_DOWN_TEXT, ephemeral=True)
            return
        rows = await self.bot.stored(
            "reading the history",
            lambda: self.bot.storage.history(guild_id, user_id=user.id if user else None, limit=10, **scope),
            write=False,
        )
        if rows is None or not self.bot.storage_ok:
            await interaction.response.send_message(STORAGE_DOWN_TEXT, ephemeral=True)
            return
        embed = views.history_embed(rows, who=user.display_name if user else "everyone")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _readable(self, interaction: discord.Interaction):
        """``channels``/``own`` for a server's history or stats: the channels the asker can read, and their
        own results anywhere in it ({} in a DM: every row there is the asker's own)."""
        guild = interaction.guild
        if interaction.guild_id is None:
            return {}
        if guild is None or not isinstance(interaction.user, discord.Member):
            return {"channels": (), "own": interaction.user.id}  # nothing to check against: own results only
        ids = await self.bot.stored(
            "reading the channels with results",
            lambda: self.bot.storage.channels(interaction.guild_id),
            write=False,
            default=_DOWN,
        )
        if ids is _DOWN:
            return _DOWN
        return {
            "channels": logic.visible_channels(guild, interaction.user, ids),
            "own": interaction.user.id,
        }

    @app_commands.command()
    @app_commands.describe(user="Only this person's notes", days="How many days back (default 30)")
    async def stats(
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        days: app_commands.Range[int, 1, 365] = 30,
    ) -> None:
        """Show how emotions were distributed over time, with a chart."""
        guild_id = interaction.guild_id
        if guild_id is None:  # in a direct message: the person's own direct-message notes
            user = interaction.user
        refused = self.bot.analyses.command_refused(interaction.user.id)
        if refused:
            await interaction.response.send_message(refused, ephemeral=True)
            return
        # Only your own statistics are posted for the channel to see; anyone else's (or everyone's) only to you.
        private = user is None or user.id != interaction.user.id
        await interaction.response.defer(thinking=True, ephemeral=private)
        scope = await self._readable(interaction)
        since = time.time() - days * 86400
        rows = None
        if scope is not _DOWN:
            rows = await self.bot.stored(
                "reading statistics",
                lambda: self.bot.storage.since(guild_id, since, user_id=user.id if user else None, **scope),
                write=False,
            )
        # Failing writes (a read-only or full disk) make the numbers stale: say so rather than show them.
        if rows is None or not self.bot.storage_ok:
            await interaction.followup.send(STORAGE_DOWN_TEXT, ephemeral=True)
            return
        stats = logic.aggregate(
            ((r.created_at, r.label, r.confidence) for r in rows), days=days, labels=self.bot.model.labels
        )
        who = user.display_name if user else "everyone"
        chart = None
        if stats.total:
            try:
                chart = await self.bot.analyses.charts.submit(
                    views.render_chart, stats, title=f"Emotions — {who}"
                )
            except (Busy, Closed):
                chart = None
        embed = views.stats_embed(stats, who=who, days=days, chart_name=CHART_NAME if chart else None)
        if chart:
            await interaction.followup.send(
                embed=embed, file=discord.File(io.BytesIO(chart), CHART_NAME), ephemeral=private
            )
        else:
            await interaction.followup.send(embed=embed, ephemeral=private)

    @app_commands.command()
    async def model(self, interaction: discord.Interaction) -> None:
        """Show the model card: training data, protocols, scores, classes and date."""
        m = self.bot.model
        await interaction.response.send_message(
            embed=views.model_embed(m.card, labels=m.labels, version=m.version)
        )

    @app_commands.command()
    @app_commands.describe(
        mode="auto: reply to every note; on request: only when asked; off: nothing; server default: inherit",
        where="This channel (default), or the default of every channel in the server that has none",
    )
    async def mode(
        self,
        interaction: discord.Interaction,
        mode: Literal["auto", "on request", "off", "server default"] | None = None,
        where: Literal["channel", "server"] = "channel",
    ) -> None:
        """Show or set how I treat voice notes here: auto, on request or off (setting needs Manage Server)."""
        guild_id, channel_id = interaction.guild_id, interaction.channel_id
        if guild_id is None or channel_id is None:
            await interaction.response.send_message(
                SERVER_ONLY + " In direct messages I analyse every note you send me.", ephemeral=True
            )
            return
        # A thread follows its parent channel's mode, so in a thread this shows and sets the parent's.
        channel_id = logic.mode_channel_id(interaction.channel, channel_id)
        storage = self.bot.storage
        if mode is not None:
            # Discord cannot hide single subcommands (default_permissions applies to the whole group), so
            # the permission is checked here, from the member's permissions in this interaction.
            if not logic.can_manage_modes(interaction.permissions.value):
                await interaction.response.send_message(
                    "You need the Manage Server permission to change the mode.", ephemeral=True
                )
                return
            stored = MODE_CHOICES[mode]
            if where == "server":
                if stored is None:
                    await interaction.response.send_message(
                        "The server default must be auto, on request or off.", ephemeral=True
                    )
                    return
                await storage.set_guild_mode(guild_id, stored)
            else:
                await storage.set_channel_mode(channel_id, guild_id, stored)
        own, default = await storage.modes(channel_id, guild_id)
        lines = [
            f"This channel: {MODE_TEXT[own or default]}"
            + (" (its own setting)." if own else " (the server default)."),
            f"Server default, for channels without their own: **{_mode_name(default)}**.",
        ]
        if (own or default) == "auto" and not self.bot.listening_to_content:
            lines.append(
                "Note: Discord has not granted me the Message Content intent, so automatic replies cannot work "
                "until the bot owner enables it; `/emotion analyze` and the context menu still work."
            )
        await interaction.response.send_message("\n".join(lines), ephemeral=mode is None)

    @app_commands.command()
    @app_commands.describe(
        role="Analyse automatically only the notes of members with this role; leave empty for everyone"
    )
    async def autorole(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """Analyse notes automatically only for members with a role (needs Manage Server)."""
        if interaction.guild_id is None:
            await interaction.response.send_message(SERVER_ONLY, ephemeral=True)
            return
        if not logic.can_manage_modes(interaction.permissions.value):
            await interaction.response.send_message(
                "You need the Manage Server permission to change who is analysed automatically.",
                ephemeral=True,
            )
            return
        await self.bot.storage.set_auto_role(interaction.guild_id, role.id if role else None)
        await interaction.response.send_message(
            f"In channels in **auto** mode I now analyse automatically only the notes of members with "
            f"{role.mention}. Anyone can still ask with the menu or `/emotion analyze`."
            if role
            else "In channels in **auto** mode I analyse everyone's notes automatically again."
        )

    @app_commands.command()
    @app_commands.describe(
        auto="on: a transcript follows every reply; off: only on 📝; server default: inherit",
        where="This channel (default), or the default of every channel in the server that has none",
        language="Decode every transcript here in this language (a code or name: de, Polish, ...); 'detect' to "
        "detect it per note",
    )
    async def transcripts(
        self,
        interaction: discord.Interaction,
        auto: Literal["on", "off", "server default"] | None = None,
        where: Literal["channel", "server"] = "channel",
        language: str | None = None,
    ) -> None:
        """Show or set automatic transcripts and the server's language (setting needs Manage Server)."""
        guild_id, channel_id = interaction.guild_id, interaction.channel_id
        if guild_id is None or channel_id is None:
            await interaction.response.send_message(
                SERVER_ONLY + " In direct messages, press 📝 **Transcript** under a result.", ephemeral=True
            )
            return
        channel_id = logic.mode_channel_id(interaction.channel, channel_id)  # a thread follows its parent
        storage = self.bot.storage
        if auto is not None or language is not None:
            if not logic.can_manage_modes(interaction.permissions.value):
                await interaction.response.send_message(
                    "You need the Manage Server permission to change transcripts.", ephemeral=True
                )
                return
            code = None
            if language is not None and language.strip().lower() not in ("detect", "auto", ""):
                try:
                    code = language_code(language)
                except ConfigError as exc:
                    await interaction.response.send_message(f"{exc}.", ephemeral=True)
                    return
            if auto is not None:
                on = TRANSCRIPT_CHOICES[auto]
                if where == "server" and on is None:
                    await interaction.response.send_message(
                        "The server default must be on or off.", ephemeral=True
                    )
                    return
                await storage.set_auto_transcripts(None if where == "server" else channel_id, guild_id, on)
            if language is not None:
                await storage.set_transcript_language(guild_id, code)
        s = await storage.transcript_settings(channel_id, guild_id)
        lines = [
            f"This channel: transcripts **{'automatic' if s.auto else 'on request (📝 under a result)'}**"
            + (" (its own setting)." if s.own is not None else " (the server default)."),
            f"Server default: **{'automatic' if s.server else 'on request'}**. Language: "
            + (f"**{language_name(s.language)}** for every note." if s.language else "detected per note."),
            "A transcript costs several times the emotion's time, so it comes after the emotion reply, edited "
            "in. It is shown, never stored; people who opted out are not transcribed at others' request.",
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=auto is None and language is None)

    @app_commands.command()
    @app_commands.describe(
        language="The language of the suggested sentences",
        notes="How many reference notes (1–3; more is steadier)",
        file="A recording of your ordinary voice to use as a reference right away",
        reset="Drop the reference notes kept so far first",
    )
    async def calibrate(
        self,
        interaction: discord.Interaction,
        language: Literal["English", "Deutsch", "Polski", "Français", "Español"] = "English",
        notes: app_commands.Range[int, 1, 3] = 3,
        file: discord.Attachment | None = None,
        reset: bool = False,
    ) -> None:
        """Teach me your ordinary voice with 1–3 relaxed notes, so later notes are heard against it."""
        analyses, uid = self.bot.analyses, interaction.user.id
        if await analyses.opted_out(uid):
            await interaction.response.send_message(
                "You opted out of emotion analysis, so I keep no reference of your voice. "
                "`/emotion optin` first if you want one.",
                ephemeral=True,
            )
            return
        if not self.bot.model.supports_adaptation:
            await interaction.response.send_message(
                f"The live model (`{self.bot.model.version}`) cannot learn a voice (it has no adapted head), so "
                "a reference would not change its answers.",
                ephemeral=True,
            )
            return
        if file is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            if reset:
                await analyses.calibrate(uid, notes=0, reset=True)
            outcome = await analyses.add_reference(file, user_id=uid)
            await interaction.followup.send(**outcome.reply_kwargs(), ephemeral=True)
            return
        profile = await analyses.calibrate(uid, notes=notes, reset=reset)
        await interaction.response.send_message(
            views.calibration_text(language, notes, kept=profile.k, minutes=ENROL_MINUTES), ephemeral=True
        )

    @app_commands.command()
    async def optout(self, interaction: discord.Interaction) -> None:
        """Stop analysing your voice notes automatically and storing anything new about you."""
        await self.bot.storage.set_opted_out(interaction.user.id, True)
        self.bot.analyses.forget_held(interaction.user.id)
        await interaction.response.send_message(
            "You are opted out: I won't analyse your notes automatically, others can't ask me to analyse them, "
            "and I store nothing new about you (no results, voice profile or clips). If you ask me yourself, I "
            "answer without storing anything. What is already stored stays until `/emotion forget`; "
            "`/emotion optin` undoes this.",
            ephemeral=True,
        )

    @app_commands.command()
    async def optin(self, interaction: discord.Interaction) -> None:
        """Allow automatic analysis of your voice notes again."""
        changed = await self.bot.storage.set_opted_out(interaction.user.id, False)
        await interaction.response.send_message(
            "You are opted in again: your notes are analysed where the channel's mode allows it."
            if changed
            else "You were not opted out; nothing changed.",
            ephemeral=True,
        )

    @app_commands.command()
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete every result, kept clip and voice profile stored about you (in every server)."""
        n, files = await self.bot.analyses.forget(interaction.user.id)
        await interaction.response.send_message(
            f"Deleted {n} stored result{'s' if n != 1 else ''}, {files} kept clip{'s' if files != 1 else ''} "
            "and your voice profile.",
            ephemeral=True,
        )

    @app_commands.command()
    @app_commands.describe(
        preset="Feature set to train (default: the live model's)",
        force="Swap the new model in even if it scores more than 1 point lower",
    )
    @app_commands.choices(preset=PRESET_CHOICES)
    async def retrain(
        self, interaction: discord.Interaction, preset: str | None = None, force: bool = False
    ) -> None:
        """Retrain the model on the data set and consented clips (the bot's operators only)."""
        if not await self._is_operator(interaction):
            await interaction.response.send_message(
                ADMIN_ONLY.format(what="retrain the model"), ephemeral=True
            )
            return
        retrainer, storage = self.bot.retrainer, self.bot.storage
        if retrainer.progress is not None:
            await interaction.response.send_message(
                f"A retraining run is already in progress ({retrainer.progress.preset}): "
                f"{retrainer.progress.line()}. Wait for it to finish.",
                ephemeral=True,
            )
            return
        elsewhere = await self.bot.stored(
            "reading the retraining status", storage.retrain_status, write=False
        )
        if elsewhere:
            await interaction.response.send_message(BUSY_ELSEWHERE.format(**elsewhere), ephemeral=True)
            return
        ended = await self.bot.stored(
            "reading the last retraining", lambda: storage.get_state(RETRAIN_ENDED), write=False
        )
        wait = cooldown_left(_float(ended), self.bot.settings.retrain_cooldown_min * 60, time.time())
        if wait:
            await interaction.response.send_message(
                f"The last retraining run ended less than {self.bot.settings.retrain_cooldown_min:g} minutes ago "
                f"(SER_RETRAIN_COOLDOWN_MIN); try again in {format_elapsed(math.ceil(wait))}.",
                ephemeral=True,
            )
            return
        data = self.bot.settings.ravdess_dir
        if data is None or not data.is_dir():
            what = "SER_RAVDESS_DIR is not set" if data is None else f"SER_RAVDESS_DIR={data} is not a folder"
            await interaction.response.send_message(
                f"I cannot retrain: {what}. Point it at the RAVDESS folder (or a folder with labels.csv) "
                "and restart the bot.",
                ephemeral=True,
            )
            return
        chosen = preset or str(self.bot.model.card.get("preset") or self.bot.model.features.preset or "rich")
        progress = retrainer.begin(chosen)  # claims this process's slot before the first await
        try:
            # ... and the one slot of every process sharing the storage (an advisory lock in PostgreSQL)
            locked = await self.bot.stored(
                "claiming the retraining slot", storage.try_lock_retrain, write=False
            )
            if not locked:
                retrainer.finish()
                elsewhere = await self.bot.stored(
                    "reading the retraining status", storage.retrain_status, write=False
                )
                text = (
                    BUSY_ELSEWHERE.format(**elsewhere)
                    if elsewhere
                    else "I cannot retrain right now: another process holds the retraining slot, or the "
                    "database is unreachable. Try again in a minute."
                )
                await interaction.response.send_message(text, ephemeral=True)
                return
            await interaction.response.send_message(f"🔄 Retraining (`{chosen}`): {progress.line()}")
        except BaseException:
            retrainer.finish()
            await self._release_slot()
            raise
        task = asyncio.create_task(self._run_retrain(interaction, progress, force), name="ser-retrain")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_retrain(self, interaction: discord.Interaction, progress: Progress, force: bool) -> None:
        bot = self.bot
        old = bot.model
        ticker = asyncio.create_task(self._show_progress(interaction, progress))
        text = f"❌ Retraining stopped; the bot keeps using model `{old.version}`."
        clips_dir = bot.retrainer.models_dir / f".clips-{time.time_ns()}"
        try:
            extra, left_out = await self._kept_clips(clips_dir)
            assert bot.settings.ravdess_dir is not None
            cand = await bot.retrainer.run(bot.settings.training_data, extra)
            live = live_accuracy(old.card)
            ok, why = decide(cand.accuracy, live, force=force)
            took = format_elapsed(cand.seconds)
            capped = (
                f" ({left_out} more left out: at most {bot.settings.clips_per_user} a person and "
                f"{bot.settings.clips_per_server} a server)"
                if left_out
                else ""
            )
            if ok:
                new = await bot.models.install(cand.path, cand.version)
                text = (
                    f"✅ Retrained in {took} on {len(extra)} kept clip(s){capped} plus the data set: model "
                    f"`{new.version}` is now live instead of `{old.version}` ({why}); `/emotion rollback` "
                    "restores the previous one."
                )
            else:
                text = (
                    f"⏹️ Retrained in {took}, but kept model `{old.version}`: {why}; run "
                    f"`/emotion retrain force:True` to use the new one anyway."
                )
                cand.path.unlink(missing_ok=True)
        except RetrainError as exc:
            text = f"❌ Retraining failed: {exc}; the bot keeps using model `{bot.model.version}`."
        except ModelError as exc:
            text = f"❌ Retraining failed: the new model does not load ({exc}); the bot keeps using `{bot.model.version}`."
        except asyncio.CancelledError:
            text = f"❌ Retraining was stopped because the bot is shutting down; it keeps model `{bot.model.version}`."
            raise
        except Exception:
            log.exception("retraining failed")
            text = f"❌ Retraining failed because of an error on my side (logged); the bot keeps using `{bot.model.version}`."
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await asyncio.get_running_loop().run_in_executor(None, shutil.rmtree, clips_dir, True)
            await bot.stored(
                "recording the end of a retraining run",
                lambda: bot.storage.set_state(RETRAIN_ENDED, repr(time.time())),
                write=True,
            )
            bot.retrainer.finish()
            await self._release_slot()
            await self._show_result(interaction, text)
        log.info("retraining: %s", text)

    async def _release_slot(self) -> None:
        storage = self.bot.storage
        await self.bot.stored(
            "clearing the retraining status", lambda: storage.set_retrain_status(None), write=True
        )
        await self.bot.stored("releasing the retraining slot", storage.unlock_retrain, write=True)

    async def _show_progress(self, interaction: discord.Interaction, progress: Progress) -> None:
        """Edit the progress message at most once every ``PROGRESS_EVERY_S`` seconds, and publish the progress
        for other processes (a retrain request there shows it)."""
        storage = self.bot.storage
        while True:
            status = {"preset": progress.preset, "line": progress.line()}
            await self.bot.stored(
                "publishing retraining progress", lambda s=status: storage.set_retrain_status(s), write=True
            )
            await asyncio.sleep(self.PROGRESS_EVERY_S)
            try:
                await interaction.edit_original_response(
                    content=f"🔄 Retraining (`{progress.preset}`): {progress.line()}"
                )
            except discord.HTTPException as exc:  # e.g. the 15-minute interaction token expired
                log.warning("stopped updating the retraining progress: %s", exc)
                return

    async def _show_result(self, interaction: discord.Interaction, text: str) -> None:
        """Edit the progress message; if that is no longer possible (a run longer than the 15 minutes an
        interaction can be edited), post the result in the channel instead."""
        try:
            await asyncio.wait_for(interaction.edit_original_response(content=text), 10)
            return
        except (discord.HTTPException, asyncio.TimeoutError) as exc:
            log.warning("could not edit the retraining message (%r); posting the result instead", exc)
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            try:
                await asyncio.wait_for(channel.send(text), 10)
            except (discord.HTTPException, asyncio.TimeoutError) as exc:
                log.warning("could not post the retraining result: %r", exc)

    async def _kept_clips(self, folder: Path) -> tuple[list[dict], int]:
        """Consented feedback clips as training clips (files in ``folder`` if the storage keeps them
        elsewhere; the user id is the speaker), capped per person and per server (``cap_kept_clips``); and how
        many the caps left out."""
        clips = [c for c in await self.bot.storage.training_clips(folder) if c["emotion"] in EMOTIONS]
        settings = self.bot.settings
        return cap_kept_clips(clips, per_user=settings.clips_per_user, per_server=settings.clips_per_server)

    @app_commands.command()
    async def rollback(self, interaction: discord.Interaction) -> None:
        """Serve the previous model again (the bot's operators only)."""
        if not await self._is_operator(interaction):
            await interaction.response.send_message(
                ADMIN_ONLY.format(what="roll the model back"), ephemeral=True
            )
            return
        if self.bot.retrainer.running:
            await interaction.response.send_message(
                "A retraining run is in progress; roll back after it finishes.", ephemeral=True
            )
            return
        await interaction.response.defer(thinking=True)
        old = self.bot.model.version
        try:
            new = await self.bot.models.rollback()
        except ModelError as exc:
            await interaction.followup.send(f"I cannot roll back: {exc}; the bot keeps using model `{old}`.")
            return
        await interaction.followup.send(
            f"↩️ Rolled back: model `{new.version}` is live again instead of `{old}`."
        )


async def setup(bot: EmotionBot) -> None:
    await bot.add_cog(Emotion(bot))


#: ``Storage.get_state`` key: when the last retraining run ended (unix time).
RETRAIN_ENDED = "retrain_ended"
_DOWN = object()


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _mode_name(mode: str) -> str:
    return "on request" if mode == "request" else mode
