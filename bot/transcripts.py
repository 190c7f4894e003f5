"""Transcripts in replies, the Discord side: the reply with the emotion is always sent first, then the
transcript is edited into it (a field of its own, and each stretch of the timeline with its words).

Two ways in: the 📝 Transcript button under a stored result (``on_button``, called by the Feedback cog), and
the automatic transcript after a reply where a channel or its server turned it on (``after_reply``). Both go
through ``Analyses.transcribe``, whose worker runs one transcript at a time with a small queue; past it the
person is told to try again in a minute. Transcripts are shown, never stored.
"""

from __future__ import annotations

import io
import logging

import discord

from . import logic, views
from .analysis import (
    AUDIO_GONE_TEXT,
    CLOSING_TEXT,
    TRANSCRIPT_BUSY_TEXT,
    TRANSCRIPT_OPTED_OUT_TEXT,
    Analyses,
    Outcome,
    Place,
    TranscriptOutcome,
)
from .storage import Detection
from .worker import Busy, Closed

log = logging.getLogger(__name__)


def edit_kwargs(embed: discord.Embed, out: TranscriptOutcome) -> dict:
    """Keyword arguments for editing a result message whose embed is ``embed`` to show ``out``."""
    if out.transcript is None:
        return {"embed": views.transcript_busy_field(embed, out.error or TRANSCRIPT_BUSY_TEXT)}
    new = views.with_transcript(embed, out.transcript)
    if out.picture is None:
        return {"embed": new}
    new.set_image(url=f"attachment://{views.NOTE_PICTURE}")
    file = discord.File(io.BytesIO(out.picture), views.NOTE_PICTURE, description=embed.title)
    return {"embed": new, "attachments": [file]}


async def after_reply(
    analyses: Analyses,
    reply: discord.Message | None,
    outcome: Outcome,
    *,
    guild_id: int | None,
    channel,
) -> None:
    """If transcripts are automatic where ``reply`` was sent, transcribe the note and edit it in. Busy: the
    reply says so in the transcript's place (the 📝 button stays for later)."""
    if reply is None or not reply.embeds or outcome.prediction is None or outcome.audio is None:
        return
    channel_id = getattr(channel, "id", None)
    where = logic.mode_channel_id(channel, channel_id) if channel_id is not None else None
    settings = await analyses.transcript_settings(where, guild_id)
    if not settings.auto:
        return
    try:
        slot = analyses.transcripts.reserve()
    except (Busy, Closed):
        if outcome.row_id is not None:
            await _edit(reply.edit, reply.embeds[0], TranscriptOutcome(error=_BUSY_LATER))
        return
    async with slot:
        out = await analyses.transcribe(
            outcome.audio, language=settings.language, row_id=outcome.row_id, prediction=outcome.prediction
        )
    await _edit(reply.edit, reply.embeds[0], out)


async def on_button(analyses: Analyses, interaction: discord.Interaction, row: Detection, fetch) -> None:
    """📝 pressed under ``row``'s result: refused as a re-run would be (another place, an off channel,
    someone else's note whose author opted out), over the command budget, or busy, at once and only to the
    presser; otherwise the press is acknowledged and the transcript edited into the message."""
    place = Place.of(interaction)
    refusal = await analyses.refuse_rerun(
        row, place, opted_out_text=TRANSCRIPT_OPTED_OUT_TEXT
    ) or analyses.command_refused(interaction.user.id)
    if refusal:
        await interaction.response.send_message(refusal, ephemeral=True)
        return
    try:
        slot = analyses.transcripts.reserve()
    except (Busy, Closed) as exc:
        text = CLOSING_TEXT if isinstance(exc, Closed) else TRANSCRIPT_BUSY_TEXT
        await interaction.response.send_message(text, ephemeral=True)
        return
    async with slot:
        await interaction.response.defer()  # a transcript can outlast Discord's 3 s
        assert row.id is not None
        data = analyses.clip_cache.get(row.id) or await fetch()
        if data is None:
            await interaction.followup.send(AUDIO_GONE_TEXT, ephemeral=True)
            return
        settings = await analyses.transcript_settings(place.mode_channel, place.guild_id)
        out = await analyses.transcribe(data, language=settings.language, row_id=row.id)
    if out.transcript is None:
        await interaction.followup.send(out.error or TRANSCRIPT_BUSY_TEXT, ephemeral=True)
        return
    message = interaction.message
    if message is None or not message.embeds:
        await interaction.followup.send(views.transcript_heading(out.transcript) + ": " + out.transcript.text)
        return
    await _edit(interaction.edit_original_response, message.embeds[0], out)


async def _edit(edit, embed: discord.Embed, out: TranscriptOutcome) -> None:
    try:
        await edit(**edit_kwargs(embed, out))
    except discord.HTTPException as exc:
        log.warning("could not edit a transcript into a result: %s", exc)


_BUSY_LATER = "I'm transcribing other notes right now: press 📝 **Transcript** in a minute."
