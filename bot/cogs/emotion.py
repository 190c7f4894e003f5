"""The ``/emotion`` slash command group: analyze, history, stats, model, listen, forget, retrain."""

from __future__ import annotations

import io
import logging
import time
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from .. import logic, views
from ..bot import EmotionBot
from ..worker import Busy, Closed

log = logging.getLogger(__name__)

CHART_NAME = "stats.png"


@app_commands.guild_only()
class Emotion(commands.GroupCog, group_name="emotion", group_description="Speech emotion recognition"):
    def __init__(self, bot: EmotionBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command()
    @app_commands.describe(file="A voice note or audio file (OGG, MP3, WAV, FLAC, M4A)")
    async def analyze(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Detect the emotion in an audio file."""
        await interaction.response.defer(thinking=True)
        async with self.bot.job():
            outcome = await self.bot.analyze(
                file,
                user_id=interaction.user.id,
                guild_id=interaction.guild_id,
                channel_id=interaction.channel_id,
                message_id=None,
            )
            await interaction.followup.send(**outcome.reply_kwargs())

    @app_commands.command()
    @app_commands.describe(user="Only this person's notes")
    async def history(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        """Show the latest detections in this server."""
        assert interaction.guild_id is not None
        rows = await self.bot.storage.history(
            interaction.guild_id, user_id=user.id if user else None, limit=10
        )
        embed = views.history_embed(rows, who=user.display_name if user else "everyone")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command()
    @app_commands.describe(user="Only this person's notes", days="How many days back (default 30)")
    async def stats(
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        days: app_commands.Range[int, 1, 365] = 30,
    ) -> None:
        """Show how emotions were distributed over time, with a chart."""
        assert interaction.guild_id is not None
        await interaction.response.defer(thinking=True)
        since = time.time() - days * 86400
        rows = await self.bot.storage.since(interaction.guild_id, since, user_id=user.id if user else None)
        stats = logic.aggregate(
            ((r.created_at, r.label, r.confidence) for r in rows), days=days, labels=self.bot.model.labels
        )
        who = user.display_name if user else "everyone"
        chart = None
        if stats.total:
            try:
                chart = await self.bot.worker.submit(views.render_chart, stats, title=f"Emotions — {who}")
            except (Busy, Closed):
                chart = None
        embed = views.stats_embed(stats, who=who, days=days, chart_name=CHART_NAME if chart else None)
        if chart:
            await interaction.followup.send(embed=embed, file=discord.File(io.BytesIO(chart), CHART_NAME))
        else:
            await interaction.followup.send(embed=embed)

    @app_commands.command()
    async def model(self, interaction: discord.Interaction) -> None:
        """Show the model card: training data, protocols, scores, classes and date."""
        m = self.bot.model
        await interaction.response.send_message(
            embed=views.model_embed(m.card, labels=m.labels, version=m.version)
        )

    @app_commands.command()
    @app_commands.describe(mode="on: reply to voice notes in this channel automatically; off: stop")
    async def listen(self, interaction: discord.Interaction, mode: Literal["on", "off"]) -> None:
        """Turn automatic analysis on or off in this channel (needs Manage Server)."""
        # Discord cannot hide single subcommands (default_permissions applies to the whole /emotion group),
        # so the permission is checked here, from the member's permissions in this interaction.
        if not logic.can_manage_listening(interaction.permissions.value):
            await interaction.response.send_message(
                "You need the Manage Server permission to change listening in this channel.", ephemeral=True
            )
            return
        assert interaction.channel_id is not None
        await self.bot.storage.set_listening(interaction.channel_id, interaction.guild_id, mode == "on")
        if mode == "on":
            text = "Listening is **on** in this channel: I will reply to voice messages and audio files."
            if not self.bot.listening_to_content:
                text += (
                    " Note: Discord has not granted me the Message Content intent, so automatic replies cannot "
                    "work until the bot owner enables it; `/emotion analyze` and the context menu still work."
                )
        else:
            text = "Listening is **off** in this channel. `/emotion analyze` and the context menu still work."
        await interaction.response.send_message(text)

    @app_commands.command()
    async def forget(self, interaction: discord.Interaction) -> None:
        """Delete every result stored about you (in every server)."""
        n = await self.bot.storage.forget_user(interaction.user.id)
        await interaction.response.send_message(
            f"Deleted {n} stored result{'s' if n != 1 else ''} about you. No audio was ever stored.",
            ephemeral=True,
        )

    @app_commands.command()
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Retrain the model (bot admins only)."""
        # Visible to everyone (a subcommand cannot be hidden), so the check is here, server-side.
        if not logic.can_retrain(
            interaction.user.id, interaction.permissions.value, self.bot.settings.admin_ids
        ):
            await interaction.response.send_message(
                "Only server administrators or the bot's admins (SER_ADMIN_IDS) can retrain the model.",
                ephemeral=True,
            )
            return
        await interaction.response.send_message(
            f"Retraining is not available in this version yet. The bot keeps using model "
            f"`{self.bot.model.version}`; nothing was changed.",
            ephemeral=True,
        )


async def setup(bot: EmotionBot) -> None:
    await bot.add_cog(Emotion(bot))
