"""Transcripts through the real client and the fake Discord: the 📝 button edits the transcript into a reply
sent before it, opted-out authors are refused at others' request, automatic transcripts per channel and server
with a pinned language, the bound under a burst (busy at once, the emotion replies go on), and nothing of a
transcript stored or logged."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest
from bot_helpers import start_bot, stop_bot

from bot.logic import MANAGE_GUILD
from bot.testing.fakediscord import EPHEMERAL_FLAG
from bot.worker import Worker
from ser_core import Transcript, Word, encoder

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not encoder.available("whisper-base"), reason="the whisper-base wheels are missing"),
]

VOICES = Path(__file__).resolve().parents[2] / "bot" / "testing" / "voices"


@pytest.fixture(scope="module")
def demo_note() -> bytes:
    """A shipped demo clip (RAVDESS actor 03, "Kids are talking by the door"), as Discord sends it."""
    return (VOICES / "happy-actor03.ogg").read_bytes()


@pytest.fixture(scope="module", autouse=True)
def _whisper_loaded():
    """The transcriber is loaded once for the module (about a second), not inside a test's time limit."""
    from ser_core import transcript

    transcript.load()


def opt(name: str, value) -> dict:
    return {"type": 3, "name": name, "value": value}


async def note_and_reply(fake, data: bytes, *, author=None):
    note = await fake.send_message(attachments=[fake.voice_attachment(data, 4.3)], author=author)
    return note, await fake.wait_for_reply(note["id"])


def transcript_button(reply) -> str:
    (cid,) = [c for c in reply.custom_ids if c.startswith("ser:fb:transcript:")]
    return cid


async def test_the_button_edits_the_transcript_into_the_reply_sent_before(fake, bot, demo_note):
    _, reply = await note_and_reply(fake, demo_note)
    (row,) = await bot.storage.history(fake.guild_id)
    actions = ("right", "wrong", "keep", "rerun", "transcript")
    assert reply.custom_ids == [f"ser:fb:{a}:{row.id}" for a in actions]
    assert "📝 Transcript (" not in reply.text  # the emotion reply comes alone, at once

    stranger = fake.user(fake.new_id(), "someone")
    press = await fake.click(reply, transcript_button(reply), user=stranger)
    edit = await fake.wait_interaction(press, kinds=("edit",))
    assert "📝 Transcript (English, detected)" in edit.text
    assert "kids are talking by the door" in edit.text.lower()
    assert fake.records.index(reply) < fake.records.index(edit)
    assert edit.text.split("\n")[0] == reply.text.split("\n")[0]  # the same result, with the words added
    assert [c for c in fake.messages[int(reply.message_id)]["components"]]  # the buttons stay


async def test_an_opted_out_author_is_not_transcribed_for_others_but_may_ask_themselves(fake, bot, demo_note):
    _, reply = await note_and_reply(fake, demo_note)
    await bot.storage.set_opted_out(int(fake.owner["id"]), True)
    stranger = fake.user(fake.new_id(), "someone")
    press = await fake.click(reply, transcript_button(reply), user=stranger)
    rec = await fake.wait_interaction(press, kinds=("callback",))
    assert "opted out, so I won't transcribe it" in rec.content and rec.flags & EPHEMERAL_FLAG
    assert not [r for r in fake.for_interaction(press) if r.kind == "edit"]

    own = await fake.click(reply, transcript_button(reply))  # the author themselves
    edit = await fake.wait_interaction(own, kinds=("edit",))
    assert "talking by the door" in edit.text.lower()


async def test_automatic_transcripts_per_channel_and_a_pinned_language(fake, bot, demo_note):
    refused = await fake.slash("emotion", "transcripts", [opt("auto", "on")], permissions=0)
    assert "Manage Server" in (await fake.wait_interaction(refused, kinds=("callback",))).content
    _, plain = await note_and_reply(fake, demo_note)
    await asyncio.sleep(0.5)
    assert not [r for r in fake.records if r.kind == "edit" and r.message_id == plain.message_id]

    on = await fake.slash("emotion", "transcripts", [opt("auto", "on")], permissions=MANAGE_GUILD)
    assert "automatic" in (await fake.wait_interaction(on, kinds=("callback",))).content
    _, reply = await note_and_reply(fake, demo_note)
    assert "📝 Transcript (" not in reply.text  # the emotion first ...
    edit = await fake.wait_for(lambda r: r.kind == "edit" and r.message_id == reply.message_id)
    assert "📝 Transcript (English, detected)" in edit.text and "door" in edit.text.lower()  # ... then this

    pin = await fake.slash("emotion", "transcripts", [opt("language", "German")], permissions=MANAGE_GUILD)
    assert "German" in (await fake.wait_interaction(pin, kinds=("callback",))).content
    bad = await fake.slash("emotion", "transcripts", [opt("language", "Klingon")], permissions=MANAGE_GUILD)
    assert "unknown language" in (await fake.wait_interaction(bad, kinds=("callback",))).content
    _, reply = await note_and_reply(fake, demo_note)
    edit = await fake.wait_for(lambda r: r.kind == "edit" and r.message_id == reply.message_id)
    assert "📝 Transcript (German, pinned for this server)" in edit.text

    off = await fake.slash(
        "emotion", "transcripts", [opt("auto", "off"), opt("where", "channel")], permissions=MANAGE_GUILD
    )
    await fake.wait_interaction(off, kinds=("callback",))
    settings = await bot.storage.transcript_settings(fake.channel_id, fake.guild_id)
    assert (settings.own, settings.auto, settings.language) == (False, False, "de")


async def test_the_bound_under_a_burst_says_busy_and_the_emotion_replies_go_on(
    fake, settings, model, demo_note
):
    """One transcript at a time plus one waiting; more presses are answered "busy" at once, and new notes are
    still answered while the transcripts wait."""
    release = threading.Event()
    started = threading.Event()

    def slow(data: bytes, language: str | None) -> Transcript:
        started.set()
        release.wait(30)
        return Transcript(
            "slow words", "en", 0.9, (Word("slow", 0.1, 0.5, 0.9), Word("words", 0.5, 1.0, 0.9)), 4.3
        )

    bot, task = await start_bot(
        fake, settings, model, transcripts=Worker(workers=1, max_pending=2), transcriber=slow
    )
    try:
        _, reply = await note_and_reply(fake, demo_note)
        presses = []
        for _ in range(4):
            user = fake.user(fake.new_id(), "presser")
            presses.append(await fake.click(reply, transcript_button(reply), user=user))
            if not presses[1:]:
                await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        answers = [await fake.wait_interaction(p, kinds=("callback",)) for p in presses]
        busy = [a for a in answers if "transcribing other notes" in a.content]
        assert len(busy) == 2 and all(a.flags & EPHEMERAL_FLAG for a in busy)
        _, other = await note_and_reply(fake, demo_note)  # the emotion path does not wait for transcripts
        assert "Sounds" in other.text or "Not sure" in other.text
        release.set()
        edits = [await fake.wait_interaction(p, kinds=("edit",)) for p in presses[:2]]
        assert all("slow words" in e.text for e in edits)
    finally:
        release.set()
        await stop_bot(bot, task)


async def test_a_transcript_is_shown_never_stored_nor_logged(fake, bot, settings, demo_note, caplog):
    caplog.set_level(logging.DEBUG)
    _, reply = await note_and_reply(fake, demo_note)
    press = await fake.click(reply, transcript_button(reply))
    edit = await fake.wait_interaction(press, kinds=("edit",))
    assert "talking" in edit.text.lower()
    (row,) = await bot.storage.history(fake.guild_id)
    assert "talking" not in repr(row).lower()
    for f in Path(settings.data_dir).rglob("*"):
        if f.is_file():
            assert b"talking" not in f.read_bytes().lower(), f
    assert not [r for r in caplog.records if "talking" in r.getMessage().lower()]


def test_each_stretch_of_the_timeline_gets_its_own_words_once():
    import discord

    from bot import views

    words = [("Kids", 0.5), ("are", 1.2), ("talking", 3.2), ("by", 4.0), ("the", 6.5), ("door.", 7.0)]
    t = Transcript(
        "Kids are talking by the door.",
        "en",
        0.97,
        tuple(Word(w, s, s + 0.3, 0.9) for w, s in words),
        8.0,
    )
    embed = discord.Embed(title="😄 happy (51 %)")
    lines = "`  0.0–  4.5 s` 😄 happy (51 %)\n`  3.0–  6.0 s` 😢 sad (40 %)\n`  4.5–  8.0 s` 😠 angry (60 %)"
    embed.add_field(name="Timeline", value=lines, inline=False)
    out = views.with_transcript(embed, t)
    timeline = out.fields[0].value.split("\n")
    assert timeline[0].endswith("— *Kids are talking*")  # overlapping windows: cut in the overlap's middle
    assert timeline[1].endswith("— *by*") and timeline[2].endswith("— *the door.*")
    assert out.fields[1].name == "📝 Transcript (English, detected)" and out.fields[1].value == t.text
    again = views.with_transcript(out, t)  # a second press replaces the transcript, never doubles it
    assert [f.name for f in again.fields] == ["Timeline", "📝 Transcript (English, detected)"]
    assert again.fields[0].value == out.fields[0].value
    assert views.stretches([(0.0, 4.5), (3.0, 6.0)]) == [(0.0, 3.75), (3.75, 6.05)]


async def test_a_transcript_waits_while_notes_are_being_analysed(bot):
    """Notes first: a transcript does not start while the emotion worker holds a note."""
    calls = []

    def quick(data: bytes, language: str | None) -> Transcript:
        calls.append(language)
        return Transcript("quick", "en", 1.0, (), 1.0)

    bot.analyses._transcriber = quick
    async with bot.analyses.transcripts.reserve():
        async with bot.analyses.worker.reserve():  # a note being analysed
            task = asyncio.create_task(bot.analyses.transcribe(b"", language="pl"))
            await asyncio.sleep(0.3)
            assert calls == [] and not task.done()
        out = await asyncio.wait_for(task, 10)
    assert calls == ["pl"] and out.transcript.text == "quick"


async def test_opting_out_drops_what_is_held_in_memory_for_a_later_transcript(fake, bot, demo_note):
    _, reply = await note_and_reply(fake, demo_note)
    (row,) = await bot.storage.history(fake.guild_id)
    assert row.id in bot.analyses._predictions and bot.analyses.clip_cache.get(row.id) is not None
    out = await fake.slash("emotion", "optout")
    await fake.wait_interaction(out, kinds=("callback",))
    assert row.id not in bot.analyses._predictions and bot.analyses.clip_cache.get(row.id) is None
