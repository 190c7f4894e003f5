"""Automatic analysis of voice messages and audio attachments (and their automatic transcript, where a channel
or server turned it on), and the "Detect emotion" context menu."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from .. import logic, replies, transcripts

if TYPE_CHECKING:
    from ..bot import EmotionBot

log = logging.getLogger(__name__)


class Listen(commands.Cog):
    def __init__(self, bot: EmotionBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Detect emotion", callback=self.detect_emotion)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or not self.bot.accepting:
            return
        attachment = logic.pick_audio(message.attachments)
        if attachment is None:
            return
        if message.guild is None:
            if not isinstance(message.channel, discord.DMChannel):
                return  # group DMs: not for the bot
            # A note sent to the bot in private is a request: analysed even for someone who opted out,
            # who is told that nothing was stored.
        else:
            analyses = self.bot.analyses
            # A thread follows its parent channel's mode: an "off" channel's threads are off too.
            channel = logic.mode_channel_id(message.channel, message.channel.id)
            if await analyses.channel_mode(channel, message.guild.id) != "auto":
                return
            if await analyses.opted_out(message.author.id):
                return
            role = await analyses.auto_role(message.guild.id)
            member = message.author
            if role is not None and not (isinstance(member, discord.Member) and member.get_role(role)):
                return  # the server analyses only members with that role automatically
        async with self.bot.job():
            outcome = await self.bot.analyses.analyze(
                attachment,
                user_id=message.author.id,
                guild_id=message.guild.id if message.guild else None,
                channel_id=message.channel.id,
                message_id=message.id,
                private=False if message.guild is not None else None,  # checked just above
            )
            try:
                reply = await message.reply(**outcome.reply_kwargs(), mention_author=False)
            except discord.HTTPException as exc:
                log.warning("could not reply in channel %s: %s", message.channel.id, exc)
                return
            # The emotion is out; now the transcript, where the channel or server asked for it
            await transcripts.after_reply(
                self.bot.analyses,
                reply,
                outcome,
                guild_id=message.guild.id if message.guild else None,
                channel=message.channel,
            )

    async def detect_emotion(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Detect the emotion in this message's audio."""
        attachment = logic.pick_audio(message.attachments) or (
            message.attachments[0] if message.attachments else None
        )
        if attachment is None:
            await interaction.response.send_message("That message has no audio attachment.", ephemeral=True)
            return
        await replies.answer_request(
            self.bot, interaction, attachment, speaker=message.author, message_id=message.id
        )


async def setup(bot: EmotionBot) -> None:
    await bot.add_cog(Listen(bot))
