"""Buttons under results: ✅ Right / ❌ Wrong (→ the true emotion), "Keep my clip for training", 🔁 Re-run and
📝 Transcript (``bot.transcripts``).

The buttons are persistent dynamic items (``views.FeedbackButton``, ``views.TrueLabelSelect``): their custom
ids carry the result's row id, so buttons under replies sent before a restart still work. Only the note's
author may give feedback (ephemeral answers); anyone may re-run, which edits the result in place with the live
model's answer, or ask for the transcript, which is edited in (not for someone else's note whose author opted
out).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from ser_core import EMOTIONS

from .. import logic, transcripts, views
from ..analysis import NOT_HERE_TEXT, Place
from ..download import DownloadRefused
from ..storage import Detection

if TYPE_CHECKING:
    from ..bot import EmotionBot

log = logging.getLogger(__name__)

NOT_STORED = "This result is no longer stored (it may have been deleted with `/emotion forget`)."
NOT_AUTHOR = "Only the author of the note can give feedback on this result."
KEEP_HINT = " Press 💾 **Keep my clip for training** if I may learn from this note."


class Feedback(commands.Cog):
    def __init__(self, bot: EmotionBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        views.register(self.bot, views.FeedbackHandlers(self.on_button, self.on_true_label))

    async def cog_unload(self) -> None:
        views.unregister(self.bot)

    async def _row(self, interaction: discord.Interaction, row_id: int) -> Detection | None:
        """The result row the button names, if it is stored and was answered where the button was pressed
        (a custom id is the client's to forge: a DM's result cannot be pressed in a server); otherwise answer
        and return None."""
        row = await self.bot.storage.get(row_id)
        if row is None:
            await interaction.response.send_message(NOT_STORED, ephemeral=True)
            return None
        if row.guild_id != interaction.guild_id or row.channel_id != interaction.channel_id:
            await interaction.response.send_message(NOT_HERE_TEXT, ephemeral=True)
            return None
        return row

    async def _own_row(self, interaction: discord.Interaction, row_id: int) -> Detection | None:
        """The result row if the clicking user is its author; otherwise answer them and return None."""
        row = await self._row(interaction, row_id)
        if row is None:
            return None
        if row.user_id != interaction.user.id:
            await interaction.response.send_message(NOT_AUTHOR, ephemeral=True)
            return None
        return row

    async def on_button(self, interaction: discord.Interaction, action: str, row_id: int) -> None:
        if action == "rerun":
            return await self._rerun(interaction, row_id)
        if action == "transcript":
            row = await self._row(interaction, row_id)
            if row is not None:
                async with self.bot.job():
                    await transcripts.on_button(
                        self.bot.analyses, interaction, row, lambda: self._fetch_note(row)
                    )
            return
        row = await self._own_row(interaction, row_id)
        if row is None:
            return
        if action == "right":
            await self.bot.storage.set_feedback(
                row_id, user_id=row.user_id, feedback="right", true_label=row.label
            )
            await interaction.response.send_message(
                f"Thanks! Recorded that **{row.label}** was right." + KEEP_HINT, ephemeral=True
            )
        elif action == "wrong":
            await interaction.response.send_message(
                "What did the note really sound like?", view=views.label_view(row_id), ephemeral=True
            )
        else:
            await self._toggle_keep(interaction, row)

    async def on_true_label(self, interaction: discord.Interaction, row_id: int, label: str) -> None:
        if label not in EMOTIONS:
            await interaction.response.send_message("Choose one of the listed emotions.", ephemeral=True)
            return
        row = await self._own_row(interaction, row_id)
        if row is None:
            return
        verdict = "right" if label == row.label else "wrong"
        await self.bot.storage.set_feedback(row_id, user_id=row.user_id, feedback=verdict, true_label=label)
        await interaction.response.edit_message(
            content=f"Thanks! Recorded that the note sounded **{label}** (I said {row.label})." + KEEP_HINT,
            view=None,
        )

    async def _toggle_keep(self, interaction: discord.Interaction, row: Detection) -> None:
        assert row.id is not None
        storage = self.bot.storage
        if row.clip_path:
            await storage.drop_clip(row.id, user_id=row.user_id)
            await interaction.response.send_message(
                "Deleted your kept clip; it will not be used for training.", ephemeral=True
            )
            return
        if row.true_label is None:
            await interaction.response.send_message(
                "First tell me whether the result was right (✅ Right or ❌ Wrong), so the clip gets the right label.",
                ephemeral=True,
            )
            return
        data = self.bot.analyses.clip_cache.get(row.id)
        if data is None:
            await interaction.response.send_message(
                "That clip is no longer available: I hold notes in memory only for a few minutes, and never "
                "on disk without your consent. Send the note again to keep it.",
                ephemeral=True,
            )
            return
        if await storage.keep_clip(row.id, user_id=row.user_id, data=data) is None:  # forgotten meanwhile
            await interaction.response.send_message(NOT_STORED, ephemeral=True)
            return
        await interaction.response.send_message(
            f"Kept your clip for training, labelled **{row.true_label}**. Press the button again to delete it; "
            "`/emotion forget` deletes it with everything else about you.",
            ephemeral=True,
        )

    async def _rerun(self, interaction: discord.Interaction, row_id: int) -> None:
        """Analyse the note again with the live model and edit the result message to show the new answer."""
        bot = self.bot
        row = await self._row(interaction, row_id)
        if row is None:
            return
        place = Place.of(interaction)
        refusal = await bot.analyses.refuse_rerun(row, place)  # at once, before deferring
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        await interaction.response.defer()  # the analysis can outlast Discord's 3 s
        async with bot.job():
            outcome = await bot.analyses.rerun(row, place, fetch=lambda: self._fetch_note(row))
            if outcome.prediction is None:
                await interaction.followup.send(**outcome.reply_kwargs(), ephemeral=True)
                return
            try:
                await interaction.edit_original_response(**outcome.reply_kwargs(edit=True))
            except discord.HTTPException as exc:
                log.warning("could not edit the re-run result %s: %s", row_id, exc)

    async def _fetch_note(self, row: Detection) -> bytes | None:
        """The note's audio from Discord (the original message), or None if it is gone or unreadable."""
        if row.channel_id is None or row.message_id is None:
            return None
        try:
            message = await self.bot.get_partial_messageable(row.channel_id).fetch_message(row.message_id)
        except discord.HTTPException as exc:
            log.info("cannot fetch note %s for a re-run: %r", row.message_id, exc)
            return None
        attachment = logic.pick_audio(message.attachments)
        if attachment is None or attachment.size > self.bot.settings.max_bytes:
            return None
        try:
            return await self.bot.analyses.downloads.fetch(attachment)
        except DownloadRefused as exc:
            log.info("cannot download note %s for a re-run: %s", row.message_id, exc)
            return None


async def setup(bot: EmotionBot) -> None:
    await bot.add_cog(Feedback(bot))
