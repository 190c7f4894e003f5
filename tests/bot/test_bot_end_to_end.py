"""The bot through the real discord.py client against the loopback fake Discord."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re

import pytest
from bot_helpers import expected_label, first_emotion, serving, start_bot, stop_bot

from bot.logic import ADMINISTRATOR, MANAGE_GUILD
from bot.testing.fakediscord import EPHEMERAL_FLAG

pytestmark = pytest.mark.timeout(60)


def assert_result(text: str, label: str, model) -> None:
    assert first_emotion(text) == label, text
    assert "%" in text
    for lab in model.labels:  # every class's confidence is shown
        assert lab in text


async def test_voice_message_gets_a_reply_naming_the_prediction(fake, bot, model, voice_ogg):
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    reply = await fake.wait_for_reply(note["id"])
    assert_result(reply.text, expected_label(model, voice_ogg), model)
    assert reply.channel_id == fake.channel_id
    rows = await bot.storage.history(fake.guild_id)
    assert [r.message_id for r in rows] == [int(note["id"])]
    assert abs(sum(rows[0].probabilities.values()) - 1) < 1e-3


async def test_mp3_attachment_gets_a_reply(fake, bot, model, mp3_bytes):
    att = fake.add_file(mp3_bytes, "clip.mp3", "audio/mpeg")
    note = await fake.send_message(attachments=[att], content="how do I sound?")
    reply = await fake.wait_for_reply(note["id"])
    assert_result(reply.text, expected_label(model, mp3_bytes), model)


async def test_long_note_shows_a_timeline(fake, bot, model):
    from bot.testing.synthetic import synthetic_voice
    from ser_core.audio import encode

    data = encode(synthetic_voice(7.0, seed=5), 48_000, "OGG", "OPUS")
    note = await fake.send_message(attachments=[fake.voice_attachment(data, 7.0)])
    reply = await fake.wait_for_reply(note["id"])
    assert "Timeline" in reply.text
    assert first_emotion(reply.text) == expected_label(model, data)


async def test_corrupt_file_gets_a_clear_reply_and_the_bot_keeps_serving(fake, bot, model, voice_ogg):
    bad = fake.add_file(b"OggS" + bytes(range(256)) * 8, "angry-broken.ogg", "audio/ogg")
    note = await fake.send_message(attachments=[bad])
    reply = await fake.wait_for_reply(note["id"])
    assert "couldn't analyse" in reply.content and "damaged" in reply.content
    assert first_emotion(reply.text) is None  # a refusal must not read as a result, whatever the file name
    empty = fake.add_file(b"\x00" * 10, "empty.wav", "audio/wav")
    reply2 = await fake.wait_for_reply((await fake.send_message(attachments=[empty]))["id"])
    assert "couldn't analyse" in reply2.content
    good = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    reply3 = await fake.wait_for_reply(good["id"])
    assert first_emotion(reply3.text) == expected_label(model, voice_ogg)


async def test_silent_and_not_audio_files_are_explained(fake, bot):
    import numpy as np

    from ser_core.audio import encode

    silent = fake.add_file(encode(np.zeros(48_000, np.float32), 48_000, "WAV"), "quiet.wav", "audio/wav")
    r1 = await fake.wait_for_reply((await fake.send_message(attachments=[silent]))["id"])
    assert "silent" in r1.content
    text = fake.add_file(b"hello, this is text" * 10, "notes.mp3", None)
    r2 = await fake.wait_for_reply((await fake.send_message(attachments=[text]))["id"])
    assert "not an audio file" in r2.content


async def test_cut_short_note_is_analysed_and_says_so_and_random_bytes_are_not_audio(fake, bot, model):
    import numpy as np

    from bot.testing.synthetic import synthetic_voice
    from ser_core.audio import encode

    whole = encode(synthetic_voice(6.0, seed=4), 48_000, "OGG", "OPUS")
    cut = fake.voice_attachment(whole[: len(whole) // 2], 6.0)  # Discord's metadata says 6 s
    reply = await fake.wait_for_reply((await fake.send_message(attachments=[cut]))["id"])
    assert first_emotion(reply.text) == expected_label(model, whole[: len(whole) // 2])
    assert "cut short" in reply.text and "Send it again" in reply.text
    noise = fake.voice_attachment(np.random.default_rng(1).bytes(20_000), 3.0)  # named voice-message.ogg
    r2 = await fake.wait_for_reply((await fake.send_message(attachments=[noise]))["id"])
    assert "not audio in any format" in r2.content and "MP3" not in r2.content.split(".")[0]
    assert first_emotion(r2.text) is None


async def test_too_long_is_refused_from_metadata_without_downloading(fake, bot, voice_ogg):
    att = fake.voice_attachment(voice_ogg, 600.0)  # Discord says 10 minutes
    reply = await fake.wait_for_reply((await fake.send_message(attachments=[att]))["id"])
    assert "limit is 120 s" in reply.content
    assert fake.downloads == []


async def test_messages_from_bots_and_without_audio_are_ignored(fake, bot, voice_ogg):
    other_bot = fake.user(fake.new_id(), "other-bot", bot=True)
    ignored = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=other_bot)
    await fake.send_message(content="just text")
    image = fake.add_file(b"\x89PNG\r\n\x1a\n" + bytes(100), "cat.png", "image/png")
    await fake.send_message(attachments=[image])
    human = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    await fake.wait_for_reply(human["id"])
    await asyncio.sleep(0.3)
    replies = [r for r in fake.records if r.kind == "message"]
    assert [r.reply_to for r in replies] == [int(human["id"])]
    assert int(ignored["id"]) not in [r.reply_to for r in replies]


async def test_slash_analyze_defers_then_follows_up(fake, bot, model, voice_ogg):
    option, resolved = fake.attachment_option("file", fake.add_file(voice_ogg, "note.ogg", "audio/ogg"))
    inter = await fake.slash("emotion", "analyze", [option], resolved=resolved)
    followup = await fake.wait_interaction(inter)
    records = fake.for_interaction(inter)
    assert records[0].kind == "callback" and records[0].payload["type"] == 5  # deferred first
    assert_result(followup.text, expected_label(model, voice_ogg), model)


async def test_context_menu_detects_emotion(fake, bot, model, mp3_bytes):
    target = fake.message_payload(
        author=fake.owner, attachments=[fake.add_file(mp3_bytes, "a.mp3", "audio/mpeg")]
    )
    inter = await fake.context_menu("Detect emotion", target)
    followup = await fake.wait_interaction(inter)
    assert fake.for_interaction(inter)[0].payload["type"] == 5
    assert first_emotion(followup.text) == expected_label(model, mp3_bytes)
    rows = await bot.storage.history(fake.guild_id, user_id=int(fake.owner["id"]))
    assert len(rows) == 1


async def test_context_menu_without_audio_says_so(fake, bot):
    target = fake.message_payload(author=fake.owner, content="no audio here")
    inter = await fake.context_menu("Detect emotion", target)
    rec = await fake.wait_interaction(inter, kinds=("callback",))
    assert "no audio" in rec.content and rec.flags & EPHEMERAL_FLAG


@pytest.mark.parametrize(
    ("permissions", "who", "allowed"),
    [
        (0, "member", False),  # an ordinary member who can see the command
        (MANAGE_GUILD, "member", False),
        (ADMINISTRATOR, "member", False),  # a server's admin: the model is every server's
        (0, "admin-id", True),  # listed in SER_ADMIN_IDS
        (0, "owner", True),  # the application's owner (Developer Portal)
    ],
)
async def test_retrain_and_rollback_are_for_the_bots_operators_only(fake, bot, permissions, who, allowed):
    user = {
        "member": fake.user(fake.new_id(), "member"),
        "admin-id": fake.user(42, "op"),
        "owner": fake.owner,
    }
    for command in ("retrain", "rollback"):
        inter = await fake.slash("emotion", command, user=user[who], permissions=permissions)
        rec = await fake.wait_interaction(inter, kinds=("callback",))
        if not allowed:
            assert "Only the bot's operators" in rec.content and "administrators cannot" in rec.content
            assert rec.flags & EPHEMERAL_FLAG
        elif command == "retrain":  # past the check; without SER_RAVDESS_DIR there is nothing to train on
            assert "SER_RAVDESS_DIR is not set" in rec.content and rec.flags & EPHEMERAL_FLAG
        else:  # past the check: a deferred answer; nothing to roll back to
            done = await fake.wait_interaction(inter, kinds=("followup",))
            assert "no previous model" in done.content
    assert not bot.retraining.running


async def test_stats_attaches_a_chart_and_history_lists(fake, bot, voice_ogg):
    for _ in range(2):
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
        await fake.wait_for_reply(note["id"])
    inter = await fake.slash("emotion", "stats", [{"type": 4, "name": "days", "value": 7}])
    followup = await fake.wait_interaction(inter)
    assert [name for name, _ in followup.files] == ["stats.png"]
    assert followup.files[0][1].startswith(b"\x89PNG")
    assert "2 notes" in followup.text
    assert followup.embeds[0]["image"]["url"] == "attachment://stats.png"

    hist = await fake.slash("emotion", "history")
    rec = await fake.wait_interaction(hist, kinds=("callback",))
    assert rec.text.count("<@") == 2


async def test_forget_removes_the_callers_rows(fake, bot, voice_ogg):
    other = fake.user(fake.new_id(), "other")
    for author in (fake.owner, other):
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=author)
        await fake.wait_for_reply(note["id"])
    owner_id = int(fake.owner["id"])
    assert await bot.storage.count(user_id=owner_id) == 1
    inter = await fake.slash("emotion", "forget")
    rec = await fake.wait_interaction(inter, kinds=("callback",))
    assert "Deleted 1 stored result" in rec.content
    assert await bot.storage.count(user_id=owner_id) == 0
    assert await bot.storage.count(user_id=int(other["id"])) == 1


async def test_model_card(fake, bot, model):
    inter = await fake.slash("emotion", "model")
    rec = await fake.wait_interaction(inter, kinds=("callback",))
    assert model.version in rec.text and "random (tests)" in rec.text
    assert ", ".join(model.labels) in rec.text


@pytest.mark.parametrize(("value", "answered"), [("2", 2), ("0", 4)])
async def test_rate_limit_comes_from_the_setting(fake, settings, model, voice_ogg, value, answered):
    from bot.settings import Settings

    env = {"DISCORD_TOKEN": "t", "SER_DATA_DIR": str(settings.data_dir), "SER_RATE_LIMIT": value}
    configured = dataclasses.replace(Settings.from_env(env), model_path=settings.model_path)
    bot, task = await start_bot(fake, configured, model, rate_limiter=None)  # the bot builds it from settings
    try:
        notes = [
            await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]) for _ in range(4)
        ]
        replies = [await fake.wait_for_reply(n["id"]) for n in notes]
        limited = [r.content for r in replies if "faster than I can listen" in r.content]
        assert sum(first_emotion(r.text) is not None for r in replies) == answered
        assert len(limited) == 4 - answered
        for text in limited:  # says the limit and when to try again, in whole seconds
            assert "(2 a minute)" in text and re.search(r"Try again in [1-9]\d* s\.", text), text
    finally:
        await stop_bot(bot, task)


async def test_busy_when_the_queue_is_full(fake, settings, model, voice_ogg):
    from bot.worker import Worker

    bot, task = await start_bot(fake, settings, model, worker=Worker(workers=1, max_pending=1))
    try:
        notes = [
            await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]) for _ in range(4)
        ]
        replies = [await fake.wait_for_reply(n["id"]) for n in notes]
        busy = [r for r in replies if "busy" in r.content]
        assert busy, "a full queue must answer 'busy' instead of queueing without bound"
        assert any(first_emotion(r.text) for r in replies)
    finally:
        await stop_bot(bot, task)


async def test_without_message_content_intent_slash_commands_still_work(monkeypatch, settings, model, caplog):
    async with serving(monkeypatch, allow_message_content=False) as fake:
        with caplog.at_level(logging.ERROR, logger="bot.bot"):
            bot, task = await start_bot(fake, settings, model)
        try:
            # The application's flags say the portal switch is off: the bot identifies without the intent at
            # once (a sharded client refused with 4014 would close itself) and says so in the log.
            assert [bool(i["intents"] & (1 << 15)) for i in fake.identifies] == [False]
            assert any("Message Content Intent" in r.getMessage() for r in caplog.records)
            inter = await fake.slash("emotion", "model")
            await fake.wait_interaction(inter, kinds=("callback",))
        finally:
            await stop_bot(bot, task)


async def test_close_finishes_in_flight_work_and_closes_the_database(fake, settings, model, voice_ogg):
    bot, task = await start_bot(fake, settings, model)
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    await asyncio.sleep(0.05)  # the analysis has started
    await stop_bot(bot, task)
    assert bot.is_closed()
    assert any(r.reply_to == int(note["id"]) for r in fake.records)
    closed = (ValueError,)  # aiosqlite's error on a closed connection
    if bot.storage.shared:
        import asyncpg

        closed = (asyncpg.InterfaceError,)  # "pool is closed"
    with pytest.raises(closed):
        await bot.storage.count()


async def test_commands_are_synced_to_the_dev_guild(fake, settings, model):
    import dataclasses

    dev = dataclasses.replace(settings, dev_guild_id=fake.guild_id)
    bot, task = await start_bot(fake, dev, model)
    try:
        synced = fake.commands[str(fake.guild_id)]
        assert {c["name"] for c in synced} == {"emotion", "Detect emotion"}
        group = next(c for c in synced if c["name"] == "emotion")
        subs = {o["name"] for o in group["options"]}
        assert subs == {
            "analyze",
            "calibrate",
            "history",
            "stats",
            "model",
            "mode",
            "autorole",
            "transcripts",
            "optout",
            "optin",
            "forget",
            "retrain",
            "rollback",
        }
    finally:
        await stop_bot(bot, task)


async def test_too_big_file_is_refused_before_download(fake, settings, model, voice_ogg):
    import dataclasses

    small = dataclasses.replace(settings, max_file_mb=0.01)
    bot, task = await start_bot(fake, small, model)
    try:
        reply = await fake.wait_for_reply(
            (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
        )
        assert "the limit is 10 KB" in reply.content
        assert fake.downloads == []
    finally:
        await stop_bot(bot, task)


async def test_a_broken_extension_is_logged_not_fatal(fake, settings, model, voice_ogg, monkeypatch, caplog):
    import bot.bot as botmod

    monkeypatch.setattr(botmod, "INITIAL_EXTENSIONS", ("bot.cogs.does_not_exist", *botmod.INITIAL_EXTENSIONS))
    with caplog.at_level(logging.ERROR, logger="bot.bot"):
        bot, task = await start_bot(fake, settings, model)
    try:
        assert any(
            "Failed to load extension bot.cogs.does_not_exist" in r.getMessage() for r in caplog.records
        )
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
        assert first_emotion((await fake.wait_for_reply(note["id"])).text)
    finally:
        await stop_bot(bot, task)


async def test_history_and_stats_for_one_user(fake, bot, voice_ogg):
    other = fake.user(fake.new_id(), "other")
    for author in (fake.owner, other, other):
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=author)
        await fake.wait_for_reply(note["id"])
    option = {"type": 6, "name": "user", "value": other["id"]}
    resolved = {"users": {other["id"]: other}}
    hist = await fake.slash("emotion", "history", [option], resolved=resolved)
    rec = await fake.wait_interaction(hist, kinds=("callback",))
    assert rec.text.count(f"<@{other['id']}>") == 2 and f"<@{fake.owner['id']}>" not in rec.text
    stats = await fake.slash("emotion", "stats", [option], resolved=resolved)
    followup = await fake.wait_interaction(stats)
    assert "2 notes" in followup.text and followup.files
