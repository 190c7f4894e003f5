"""The ``/emotion`` slash command group: analyze, history, stats, model, mode, transcripts, optout, optin, forget,
retrain, rollback. It works in servers and in direct messages with the bot; the server-only ones say so in a DM."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from ser_core import ConfigError, presets
from ser_core.transcript import language_code, language_name

from .. import logic, replies, views
from ..profiles import ENROL_MINUTES
from ..resilience import STORAGE_DOWN_TEXT
from ..retrain import Progress, RetrainRefused, progress_message
from ..worker import Busy, Closed

if TYPE_CHECKING:
    from ..bot import EmotionBot

log = logging.getLogger(__name__)

CHART_NAME = "stats.png"
#: Presets offered by ``/emotion retrain``: the ``ser_core.presets`` registry, the default first.
PRESET_CHOICES = [app_commands.Choice(name=name, value=name) for name in presets.names()]
ADMIN_ONLY = (
    "Only the bot's operators (its owner or team in the Developer Portal, or SER_ADMIN_IDS) can {what}: "
    "the model is shared by every server the bot is in, so a server's administrators cannot."
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
        await replies.answer_request(self.bot, interaction, file, speaker=interaction.user, message_id=None)

    async def _settings_place(self, interaction: discord.Interaction, in_dm: str) -> tuple[int, int] | None:
        """(server id, the channel whose settings apply here), or None after telling a direct message's user
        that the command is for servers (``in_dm``: what to do there instead)."""
        guild_id, channel_id = interaction.guild_id, interaction.channel_id
        if guild_id is None or channel_id is None:
            await interaction.response.send_message(f"{SERVER_ONLY} {in_dm}", ephemeral=True)
            return None
        # A thread follows its parent channel's settings, so in a thread a command shows and sets the parent's.
        return guild_id, logic.mode_channel_id(interaction.channel, channel_id)

    async def _cannot_manage(self, interaction: discord.Interaction, what: str) -> bool:
        """True, after telling the member so, if they may not change ``what`` here (Manage Server)."""
        # Discord cannot hide single subcommands (default_permissions applies to the whole group), so the
        # permission is checked here, from the member's permissions in this interaction.
        if logic.can_manage_modes(interaction.permissions.value):
            return False
        await interaction.response.send_message(
            f"You need the Manage Server permission to change {what}.", ephemeral=True
        )
        return True

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
        rows = await self.bot.resilient.stored(
            "reading the history",
            lambda: self.bot.storage.history(guild_id, user_id=user.id if user else None, limit=10, **scope),
            write=False,
        )
        if rows is None or not self.bot.resilient.storage_ok:
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
        ids = await self.bot.resilient.stored(
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
            rows = await self.bot.resilient.stored(
                "reading statistics",
                lambda: self.bot.storage.since(guild_id, since, user_id=user.id if user else None, **scope),
                write=False,
            )
        # Failing writes (a read-only or full disk) make the numbers stale: say so rather than show them.
        if rows is None or not self.bot.resilient.storage_ok:
            await interaction.followup.send(STORAGE_DOWN_TEXT, ephemeral=True)
            return
        stats = logic.aggregate(
            ((r.created_at, r.label, r.confidence) for r in rows),
            days=days,
            labels=self.bot.models.model.labels,
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
        m = self.bot.models.model
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
        here = await self._settings_place(interaction, "In direct messages I analyse every note you send me.")
        if here is None:
            return
        guild_id, channel_id = here
        storage = self.bot.storage
        if mode is not None:
            if await self._cannot_manage(interaction, "the mode"):
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
        if await self._cannot_manage(interaction, "who is analysed automatically"):
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
        here = await self._settings_place(
            interaction, "In direct messages, press 📝 **Transcript** under a result."
        )
        if here is None:
            return
        guild_id, channel_id = here
        storage = self.bot.storage
        if auto is not None or language is not None:
            if await self._cannot_manage(interaction, "transcripts"):
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
        if not self.bot.models.model.supports_adaptation:
            await interaction.response.send_message(
                f"The live model (`{self.bot.models.model.version}`) cannot learn a voice (it has no adapted head), so "
                "a reference would not change its answers.",
                ephemeral=True,
            )
            return
        if file is not None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            if reset:
                await self.bot.profiles.calibrate(uid, notes=0, reset=True)
            outcome = await analyses.add_reference(file, user_id=uid)
            await interaction.followup.send(**outcome.reply_kwargs(), ephemeral=True)
            return
        profile = await self.bot.profiles.calibrate(uid, notes=notes, reset=reset)
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
        retraining = self.bot.retraining
        try:
            progress = await retraining.start(preset)
        except RetrainRefused as exc:
            await interaction.response.send_message(str(exc), ephemeral=True)
            return
        try:
            await interaction.response.send_message(progress_message(progress))
        except BaseException:
            await retraining.abandon()
            raise
        task = asyncio.create_task(self._run_retrain(interaction, progress, force), name="ser-retrain")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_retrain(self, interaction: discord.Interaction, progress: Progress, force: bool) -> None:
        async def show_progress(text: str) -> bool:
            try:
                await interaction.edit_original_response(content=text)
            except discord.HTTPException as exc:  # e.g. the 15-minute interaction token expired
                log.warning("stopped updating the retraining progress: %s", exc)
                return False
            return True

        await self.bot.retraining.run(
            progress,
            force=force,
            show_progress=show_progress,
            show_result=lambda text: self._show_result(interaction, text),
        )

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

    @app_commands.command()
    async def rollback(self, interaction: discord.Interaction) -> None:
        """Serve the previous model again (the bot's operators only)."""
        if not await self._is_operator(interaction):
            await interaction.response.send_message(
                ADMIN_ONLY.format(what="roll the model back"), ephemeral=True
            )
            return
        if self.bot.retraining.running:
            await interaction.response.send_message(
                "A retraining run is in progress; roll back after it finishes.", ephemeral=True
            )
            return
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(await self.bot.retraining.rollback())


async def setup(bot: EmotionBot) -> None:
    await bot.add_cog(Emotion(bot))


_DOWN = object()


def _mode_name(mode: str) -> str:
    return "on request" if mode == "request" else mode
