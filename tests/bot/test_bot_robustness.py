"""Robustness through the real client and the loopback fake: the bad-audio corpus, a dropped gateway, a 429 on
the reply route, a failing database, admin rights checked server-side, and the token kept out of logs."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import pytest
from bad_audio import CASE_IDS, case
from bot_helpers import bot_env, bot_process, expected_label, first_emotion, reap, start_bot, stop_bot

from bot import views
from bot.analysis import APOLOGY_TEXT
from bot.logic import ADMINISTRATOR, MANAGE_GUILD
from bot.resilience import STORAGE_DOWN_TEXT
from bot.testing.fakediscord import ALL_PERMISSIONS, EPHEMERAL_FLAG
from ser_core import Limits
from ser_core.errors import SerError

pytestmark = pytest.mark.timeout(60)


async def assert_answers_a_good_note(fake, model, voice_ogg) -> None:
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    reply = await fake.wait_for_reply(note["id"], timeout=15)
    assert first_emotion(reply.text) == expected_label(model, voice_ogg), reply.text


# ---------------------------------------------------------------------------------------------- the corpus
@pytest.mark.parametrize("case_id", CASE_IDS)
async def test_corpus_file_gets_a_result_or_its_reason_and_the_next_note_is_answered(
    fake, bot, model, voice_ogg, case_id
):
    c = case(case_id)
    # Uploaded as a plain attachment (no duration metadata), so every file is downloaded and decoded.
    note = await fake.send_message(attachments=[fake.add_file(c.data, c.filename, c.content_type)])
    reply = await fake.wait_for_reply(note["id"], timeout=20)
    if c.analysed:
        assert first_emotion(reply.text) == expected_label(model, c.data), reply.text
        assert [r.message_id for r in await bot.storage.history(fake.guild_id)] == [int(note["id"])]
    else:
        with pytest.raises(SerError) as info:
            model.predict(c.data, limits=Limits(max_seconds=bot.settings.max_seconds))
        assert type(info.value) is c.expected
        assert reply.content == views.error_text(str(info.value))
        assert not reply.embeds and not reply.components
        assert await bot.storage.count() == 0
    await assert_answers_a_good_note(fake, model, voice_ogg)


# ---------------------------------------------------------------------------------------------- Discord faults
@pytest.mark.parametrize("code", [4000, 1001])
async def test_a_dropped_gateway_is_resumed_and_notes_are_still_answered(fake, bot, model, voice_ogg, code):
    identifies = len(fake.identifies)
    await fake.drop_gateway(code)
    await fake.wait_resumed(1, timeout=20)
    assert len(fake.identifies) == identifies  # resumed, not a new session
    assert fake.resumes[0]["token"] == bot.settings.token
    await asyncio.sleep(0.1)  # RESUMED is on its way to the client
    await assert_answers_a_good_note(fake, model, voice_ogg)


async def test_a_429_on_the_reply_route_is_waited_out_and_the_reply_delivered(fake, bot, model, voice_ogg):
    fake.rate_limit("POST", lambda p: p.startswith("/channels/") and p.endswith("/messages"), retry_after=0.3)
    t0 = time.perf_counter()
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    reply = await fake.wait_for_reply(note["id"], timeout=15)
    assert time.perf_counter() - t0 >= 0.3
    assert len(fake.rate_limited) == 1
    assert first_emotion(reply.text) == expected_label(model, voice_ogg)
    assert len([r for r in fake.records if r.reply_to == int(note["id"])]) == 1  # delivered once


async def test_a_429_on_a_follow_up_is_waited_out_too(fake, bot, model, voice_ogg):
    fake.rate_limit("POST", "/webhooks/", retry_after=0.2)
    option, resolved = fake.attachment_option("file", fake.voice_attachment(voice_ogg, 2.5))
    inter = await fake.slash("emotion", "analyze", [option], resolved=resolved)
    rec = await fake.wait_interaction(inter, timeout=15)
    assert fake.rate_limited and first_emotion(rec.text) == expected_label(model, voice_ogg)


# ---------------------------------------------------------------------------------------------- storage faults
def break_storage(bot, *, reads_too: bool = False) -> tuple[list[str], callable]:
    """Make the database refuse writes (as a read-only or full disk does), and reads too if asked, on either
    driver. Returns (the list of refused statements, a function that repairs it)."""
    refused: list[str] = []

    def refuse(sql: str, real):
        verb = sql.lstrip().split(None, 1)[0].upper()
        if reads_too or verb in ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP"):
            refused.append(verb)
            if hasattr(bot.storage, "_db"):
                raise sqlite3.OperationalError(
                    "disk I/O error" if reads_too else "attempt to write a readonly database"
                )
            import asyncpg

            raise asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute in a read-only transaction")
        return real

    st = bot.storage
    if hasattr(
        st, "_db"
    ):  # SQLite: aiosqlite's execute is awaited or used as ``async with``: raise on the call
        db, real = st._db, st._db.execute
        db.execute = lambda sql, *a, **k: refuse(sql, real)(sql, *a, **k)
        return refused, lambda: setattr(db, "execute", real)
    names = ("_fetch", "_fetchrow", "_fetchval", "_execute")  # PostgreSQL: every query goes through these
    reals = {n: getattr(st, n) for n in names}
    for n in names:
        setattr(st, n, lambda sql, *a, _real=reals[n]: refuse(sql, _real)(sql, *a))
    real_acquire = st._acquire  # the few transactions (forget, keep a clip): they only write

    def acquire():
        refuse("DELETE", None)
        return real_acquire()

    st._acquire = acquire

    def repair() -> None:
        for n, f in reals.items():
            setattr(st, n, f)
        st._acquire = real_acquire

    return refused, repair


@pytest.mark.parametrize("reads_too", [False, True], ids=["read-only", "all-failing"])
async def test_a_failing_database_still_answers_logs_once_and_stats_says_so(
    fake, bot, model, voice_ogg, mp3_bytes, caplog, reads_too
):
    caplog.set_level(logging.DEBUG, logger="bot")
    refused, _ = break_storage(bot, reads_too=reads_too)
    for data, att in [
        (voice_ogg, fake.voice_attachment(voice_ogg, 2.5)),
        (mp3_bytes, fake.add_file(mp3_bytes, "b.mp3", "audio/mpeg")),
        (voice_ogg, fake.voice_attachment(voice_ogg, 2.5)),
    ]:
        note = await fake.send_message(attachments=[att])
        reply = await fake.wait_for_reply(note["id"], timeout=15)
        assert first_emotion(reply.text) == expected_label(model, data), reply.text
        assert not reply.components  # no row id, so no feedback buttons
    assert refused
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "storage failed" in errors[0].getMessage(), [r.getMessage() for r in errors]
    assert errors[0].exc_info is not None  # the traceback is in the log (once)
    assert not bot.resilient.storage_ok

    stats = await fake.slash("emotion", "stats")
    assert (await fake.wait_interaction(stats)).content == STORAGE_DOWN_TEXT
    history = await fake.slash("emotion", "history")
    rec = await fake.wait_interaction(history, kinds=("callback",))
    assert rec.content == STORAGE_DOWN_TEXT and rec.flags & EPHEMERAL_FLAG
    forget = await fake.slash("emotion", "forget")
    assert (await fake.wait_interaction(forget, kinds=("callback",))).content == STORAGE_DOWN_TEXT
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1  # still logged once


async def test_storage_recovers_says_so_and_saves_what_it_answered_meanwhile(
    fake, bot, model, voice_ogg, caplog, monkeypatch
):
    import bot.resilience as resilience

    monkeypatch.setattr(resilience, "RESAVE_EVERY_S", (0.2,))
    _, repair = break_storage(bot)
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    held = await fake.wait_for_reply(note["id"], timeout=15)
    assert first_emotion(held.text) and not held.components
    assert not bot.resilient.storage_ok and len(bot.resilient.unsaved) == 1
    await asyncio.sleep(0.5)
    assert len(bot.resilient.unsaved) == 1  # still down: still held, not dropped
    repair()
    deadline = asyncio.get_running_loop().time() + 10
    while bot.resilient.unsaved and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    (row,) = await bot.storage.history(fake.guild_id)  # answered during the outage, stored after it
    assert row.message_id == int(note["id"]) and row.label == first_emotion(held.text)
    assert bot.resilient.storage_ok and "storage works again" in caplog.text
    await assert_answers_a_good_note(fake, model, voice_ogg)
    assert await bot.storage.count() == 2
    stats = await fake.slash("emotion", "stats")
    assert "2 notes" in (await fake.wait_interaction(stats)).text


# ---------------------------------------------------------------------------------------------- rights
NOT_ADMIN = ALL_PERMISSIONS & ~ADMINISTRATOR  # every permission but Administrator, Manage Server included


@pytest.mark.parametrize(
    ("command", "permissions", "user_id", "allowed", "answer"),
    [
        ("rollback", MANAGE_GUILD, None, False, "Only the bot's operators"),
        ("rollback", NOT_ADMIN, None, False, "Only the bot's operators"),
        ("rollback", 0, 42, True, "no previous model"),  # SER_ADMIN_IDS
        ("rollback", ADMINISTRATOR, None, False, "Only the bot's operators"),  # one server's admin
        ("retrain", ADMINISTRATOR, None, False, "Only the bot's operators"),
        ("retrain", NOT_ADMIN, None, False, "Only the bot's operators"),
        ("retrain", 0, 43, False, "Only the bot's operators"),  # an id not in SER_ADMIN_IDS
    ],
)
async def test_admin_commands_check_rights_server_side(
    fake, bot, command, permissions, user_id, allowed, answer
):
    # The command is visible to everyone (no default_member_permissions), so the check must be in the bot.
    synced = {c["name"]: c for cmds in fake.commands.values() for c in cmds}
    assert synced["emotion"]["default_member_permissions"] is None
    model_before = bot.models.model
    user = fake.user(user_id or fake.new_id(), "someone")
    inter = await fake.slash("emotion", command, user=user, permissions=permissions)
    rec = await fake.wait_interaction(inter, kinds=("followup",) if allowed else ("callback",))
    assert answer in rec.content
    assert bot.models.model is model_before and not bot.retraining.running
    assert not (bot.settings.data_dir / "models" / "current.json").exists()
    if not allowed:
        assert rec.flags & EPHEMERAL_FLAG


async def test_mode_needs_manage_server_even_for_bot_admins(fake, bot):
    """``SER_ADMIN_IDS`` is about the model; switching a server's channel needs that server's permission."""
    refused = await fake.slash(
        "emotion",
        "mode",
        [{"type": 3, "name": "mode", "value": "off"}],
        user=fake.user(42, "bot-admin"),
        permissions=0,
    )
    rec = await fake.wait_interaction(refused, kinds=("callback",))
    assert "Manage Server" in rec.content and rec.flags & EPHEMERAL_FLAG
    assert await bot.storage.mode(fake.channel_id, fake.guild_id) == "auto"


# ---------------------------------------------------------------------------------------------- the token
SECRET = "MTIzNDU2Nzg5MDEyMzQ1Njc4.SECRET.t0ken-never-to-be-logged"


async def test_the_token_never_appears_in_logs_or_replies(
    fake, settings, model, voice_ogg, caplog, monkeypatch
):
    import dataclasses

    caplog.set_level(logging.DEBUG)
    settings = dataclasses.replace(settings, token=SECRET)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    bot, task = await start_bot(fake, settings, model)
    try:
        assert fake.identifies[-1]["token"] == SECRET  # it was used ...

        def boom(*args, **kwargs):
            raise RuntimeError(f"analysis exploded with settings {settings!r}")

        monkeypatch.setattr(bot.models.model, "predict", boom)
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
        reply = await fake.wait_for_reply(note["id"])
        assert APOLOGY_TEXT in reply.content
        await fake.drop_gateway(4000)
        await fake.wait_resumed(1, timeout=20)
    finally:
        await stop_bot(bot, task)
    assert "analysis exploded" in caplog.text  # the exception path was logged ...
    assert SECRET not in caplog.text  # ... without the token
    for r in caplog.records:
        assert SECRET not in r.getMessage() and SECRET not in str(r.exc_info or "")
    assert all(SECRET not in r.text for r in fake.records)


async def test_a_refused_token_is_not_echoed(tmp_path, model_path):
    """A full ``python -m bot`` start with a token Discord refuses: exit 2, one line, no token anywhere."""

    from bot.testing.fakediscord import FakeDiscord

    async with FakeDiscord(valid_token="the-right-token") as fake:
        env = bot_env(
            DISCORD_TOKEN=SECRET,
            SER_DATA_DIR=str(tmp_path / "data"),
            SER_MODEL_PATH=str(model_path),
            **fake.env(),
        )
        proc = await bot_process(tmp_path, env)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 45)
        finally:
            await reap(proc)
    assert proc.returncode == 2, err.decode()[-2000:]
    assert b"LoginFailure" in err
    assert SECRET.encode() not in out + err


async def test_an_outage_keeps_a_channel_off_and_an_opted_out_person_out(fake, bot, model, voice_ogg):
    """While nothing can be read, the last answers this process read stand: a channel switched off stays off,
    a person who opted out stays out; other channels are answered as usual (the default, auto)."""
    await bot.storage.set_channel_mode(fake.other_channel_id, fake.guild_id, "off")
    stranger = fake.user(fake.new_id(), "opted-out")
    await bot.storage.set_opted_out(int(stranger["id"]), True)
    for _ in range(2):  # once with storage working (read and remembered), once with it all failing
        quiet = await fake.send_message(
            attachments=[fake.voice_attachment(voice_ogg, 2.5)], channel_id=fake.other_channel_id
        )
        private = await fake.send_message(
            attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=stranger
        )
        await assert_answers_a_good_note(fake, model, voice_ogg)
        for note in (quiet, private):
            with pytest.raises(asyncio.TimeoutError):
                await fake.wait_for_reply(note["id"], timeout=1.0)
        break_storage(bot, reads_too=True)
    assert not bot.resilient.storage_ok
