"""Answering an explicit request for an analysis (``/emotion analyze``, the "Detect emotion" menu): the
Discord side, shared by both."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from . import transcripts
from .analysis import Place

if TYPE_CHECKING:
    from .bot import EmotionBot


async def answer_request(
    bot: EmotionBot,
    interaction: discord.Interaction,
    attachment: discord.Attachment,
    *,
    speaker: discord.abc.User,
    message_id: int | None,
) -> None:
    """Refuse at once and only to the asker (``Analyses.refuse_request``), or defer (an analysis can outlast
    Discord's 3 s), analyse ``speaker``'s ``attachment`` (from message ``message_id``, if any) where the
    interaction happened and follow up, then add the transcript where it is automatic. The asker is the one
    rate-limited."""
    refusal = await bot.analyses.refuse_request(
        Place.of(interaction), speaker_id=speaker.id, speaker_name=speaker.display_name
    )
    if refusal:
        await interaction.response.send_message(refusal, ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    async with bot.job():
        outcome = await bot.analyses.analyze(
            attachment,
            user_id=speaker.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            message_id=message_id,
            requester_id=interaction.user.id,
        )
        reply = await interaction.followup.send(**outcome.reply_kwargs())
        await transcripts.after_reply(
            bot.analyses, reply, outcome, guild_id=interaction.guild_id, channel=interaction.channel
        )
