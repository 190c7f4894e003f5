"""Issue 20 through the real client and the fake Discord: who owns the shared model, "off" and "private"
everywhere (threads, re-runs, history, stats), floods, forget races, forged ids, downloads, children."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from bot_helpers import (
    ROOT,
    bot_env,
    bot_process,
    first_emotion,
    make_labelled_folder,
    reap,
    start_bot,
    stop_bot,
)

from bot import views
from bot.analysis import Analyses
from bot.logic import MANAGE_GUILD, RateLimiter
from bot.retrain import Retrainer, RetrainError
from bot.settings import Settings, SettingsError
from bot.testing.fakediscord import EPHEMERAL_FLAG, FakeDiscord

pytestmark = pytest.mark.timeout(120)


def opt(name: str, value) -> dict:
    kind = 6 if name == "user" else 3 if isinstance(value, str) else 4
    return {"type": kind, "name": name, "value": value}


async def no_reply(fake, note: dict, seconds: float = 1.0) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await fake.wait_for_reply(note["id"], timeout=seconds)


def row_of(reply) -> int:
    return int(next(c for c in reply.custom_ids if c.startswith("ser:fb:rerun:")).rsplit(":", 1)[1])


# ---------------------------------------------------------------------------------------------- modes
async def test_a_thread_follows_its_parents_off_and_rerun_there_is_refused(fake, bot, voice_ogg):
    guild = fake.guilds[0]
    thread = guild.thread_id
    first = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], channel_id=thread)
    reply = await fake.wait_for_reply(first["id"])
    assert first_emotion(reply.text) and reply.channel_id == thread  # auto, like its parent

    off = await fake.slash("emotion", "mode", [opt("mode", "off")], permissions=MANAGE_GUILD)
    assert "off" in (await fake.wait_interaction(off, kinds=("callback",))).content
    n = await bot.storage.count()
    later = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], channel_id=thread)
    await no_reply(fake, later)
    assert await bot.storage.count() == n  # nothing analysed, nothing stored

    stranger = fake.user(fake.new_id(), "someone")
    press = await fake.click(reply, f"ser:fb:rerun:{row_of(reply)}", user=stranger)
    rec = await fake.wait_interaction(press, kinds=("callback",))
    assert "off in this channel" in rec.content and rec.flags & EPHEMERAL_FLAG
    menu = await fake.context_menu("Detect emotion", later)
    rec = await fake.wait_interaction(menu, kinds=("callback",))
    assert "off in this channel" in rec.content

    # /emotion mode inside the thread shows (and would set) the parent's mode
    shown = await fake.slash("emotion", "mode", [], channel_id=thread)
    assert "This channel: **off**" in (await fake.wait_interaction(shown, kinds=("callback",))).content


async def test_rerun_by_the_opted_out_author_answers_and_stores_nothing(fake, bot, voice_ogg):
    reply = await fake.wait_for_reply(
        (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
    )
    row_id = row_of(reply)
    before = await bot.storage.get(row_id)
    await bot.storage.replace_result(row_id, dataclasses.replace(before, model_version="older"))
    await bot.storage.set_opted_out(int(fake.owner["id"]), True)
    press = await fake.click(reply, f"ser:fb:rerun:{row_id}")
    edit = await fake.wait_interaction(press, kinds=("edit",))
    assert first_emotion(edit.text)
    assert (await bot.storage.get(row_id)).model_version == "older"  # answered, not stored


# ---------------------------------------------------------------------------------------------- visibility
async def test_history_and_stats_show_only_channels_the_asker_can_read(fake, bot, voice_ogg):
    guild = fake.guilds[0]
    staff = fake.user(fake.new_id(), "staff")
    member = fake.user(fake.new_id(), "member")
    secret = await fake.send_message(
        attachments=[fake.voice_attachment(voice_ogg, 2.5)],
        author=staff,
        channel_id=guild.staff_channel_id,
        roles=[guild.staff_role_id],
    )
    await fake.wait_for_reply(secret["id"])
    public = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=member)
    await fake.wait_for_reply(public["id"])

    def link(note) -> str:
        return f"/{guild.id}/{note['channel_id']}/{note['id']})"

    asked = await fake.slash("emotion", "history", [], user=member, permissions=0)
    text = (await fake.wait_interaction(asked, kinds=("callback",))).text
    assert link(public) in text and link(secret) not in text and staff["id"] not in text
    asked = await fake.slash("emotion", "history", [], user=staff, roles=[guild.staff_role_id])
    text = (await fake.wait_interaction(asked, kinds=("callback",))).text
    assert link(public) in text and link(secret) in text

    # someone else's statistics: only to the asker, and only from channels the asker can read
    resolved = {"users": {staff["id"]: staff}}
    asked = await fake.slash(
        "emotion", "stats", [opt("user", staff["id"])], user=member, permissions=0, resolved=resolved
    )
    rec = await fake.wait_interaction(asked, kinds=("followup",))
    assert rec.flags & EPHEMERAL_FLAG and "No detections" in rec.text
    asked = await fake.slash("emotion", "stats", [], user=member, permissions=0)  # everyone's: private too
    rec = await fake.wait_interaction(asked, kinds=("followup",))
    assert rec.flags & EPHEMERAL_FLAG and "1 notes" in rec.text
    resolved = {"users": {member["id"]: member}}
    asked = await fake.slash(
        "emotion", "stats", [opt("user", member["id"])], user=member, permissions=0, resolved=resolved
    )
    rec = await fake.wait_interaction(asked, kinds=("followup",))
    assert not rec.flags & EPHEMERAL_FLAG and "1 notes" in rec.text  # one's own may be shown to the channel


# ---------------------------------------------------------------------------------------------- floods
async def test_a_stats_flood_leaves_everyones_notes_answered(fake, settings, model, voice_ogg, monkeypatch):
    real = views.render_chart

    def slow_chart(*a, **kw):
        time.sleep(0.4)
        return real(*a, **kw)

    monkeypatch.setattr(views, "render_chart", slow_chart)
    bot, task = await start_bot(fake, settings, model)
    try:
        await fake.wait_for_reply(
            (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
        )  # something to chart
        flooder = fake.user(fake.new_id(), "flooder")
        flood = [
            await fake.slash("emotion", "stats", [opt("days", 365)], user=flooder, permissions=0)
            for _ in range(40)
        ]
        # ... and many members at once, each within their own budget
        crowd = [
            await fake.slash("emotion", "stats", [], user=fake.user(fake.new_id(), f"m{i}"), permissions=0)
            for i in range(12)
        ]
        bystanders = [
            await fake.send_message(
                attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=fake.user(fake.new_id(), f"b{i}")
            )
            for i in range(4)
        ]
        for note in bystanders:
            reply = await fake.wait_for_reply(note["id"], timeout=30)
            assert first_emotion(reply.text) and "busy" not in reply.text
        answers = [await fake.wait_interaction(i, kinds=("callback", "followup")) for i in flood]
        refused = [a for a in answers if "Try again in" in a.content]
        assert len(refused) >= 35 and all(a.flags & EPHEMERAL_FLAG for a in refused)
        for inter in crowd:
            assert "Emotions over the last" in (await fake.wait_interaction(inter, kinds=("followup",))).text
    finally:
        await stop_bot(bot, task)


async def test_rerun_presses_past_the_rate_limit_never_download(fake, settings, model, voice_ogg):
    bot, task = await start_bot(fake, settings, model, rate_limiter=RateLimiter(capacity=2, per=60.0))
    try:
        reply = await fake.wait_for_reply(
            (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
        )
        row_id = row_of(reply)
        stranger = fake.user(fake.new_id(), "presser")
        downloads = len(fake.downloads)
        presses = []
        for _ in range(10):
            bot.analyses.clip_cache.pop(row_id)  # the audio must come from Discord again
            presses.append(await fake.click(reply, f"ser:fb:rerun:{row_id}", user=stranger))
        answers = [await fake.wait_interaction(p, kinds=("edit", "followup")) for p in presses]
        assert sum("faster than I can listen" in a.content for a in answers) == 8
        assert len(fake.downloads) - downloads == 2
    finally:
        await stop_bot(bot, task)


# ---------------------------------------------------------------------------------------------- forget
async def test_forget_while_the_note_is_being_analysed_leaves_nothing(fake, bot, voice_ogg, monkeypatch):
    started, release = threading.Event(), threading.Event()
    real = Analyses._predict_and_draw

    def held(self, *a):
        started.set()
        assert release.wait(20)
        return real(self, *a)

    monkeypatch.setattr(Analyses, "_predict_and_draw", held)
    uid = int(fake.owner["id"])
    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 20)
    forget = await fake.slash("emotion", "forget")
    assert "Deleted 0 stored results" in (await fake.wait_interaction(forget, kinds=("callback",))).content
    release.set()
    reply = await fake.wait_for_reply(note["id"])
    assert first_emotion(reply.text) and "nothing was stored" in reply.text and reply.custom_ids == []
    assert await bot.storage.count(user_id=uid) == 0 and await bot.storage.get_profile(uid) is None
    assert bot.analyses.clip_cache.get(1) is None and len(bot.analyses.clip_cache) == 0


# ---------------------------------------------------------------------------------------------- forged ids
async def test_forged_custom_ids_are_answered_and_refused(fake, bot, voice_ogg):
    dm = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], dm=True)
    dm_row = row_of(await fake.wait_for_reply(dm["id"]))
    server = await fake.wait_for_reply(
        (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
    )
    reply = fake.messages[int(server.message_id)]

    def forged(custom_id: str, kind: int = 2) -> dict:
        """The server reply with one component whose custom id the client chose (discord.py dispatches a
        press only for a component the message holds)."""
        item = {"type": kind, "custom_id": custom_id, "style": 2, "label": "forged"}
        if kind == 3:
            item = {"type": 3, "custom_id": custom_id, "options": [{"label": "sad", "value": "sad"}]}
        return {**reply, "components": [{"type": 1, "components": [item]}]}

    for custom_id, says in [
        (f"ser:fb:rerun:{dm_row}", "belongs to another channel"),  # the DM's result, pressed in a server
        (f"ser:fb:right:{dm_row}", "belongs to another channel"),
        ("ser:fb:rerun:9999999999999999999", "no longer stored"),  # above 2**63
        ("ser:fb:keep:9223372036854775808", "no longer stored"),
    ]:
        inter = await fake.interact(
            {"custom_id": custom_id, "component_type": 2},
            type_=3,
            message=forged(custom_id),
            channel_id=int(reply["channel_id"]),
        )
        rec = await fake.wait_interaction(inter, kinds=("callback",))
        assert says in rec.content and rec.flags & EPHEMERAL_FLAG, custom_id
    label = "ser:fb:label:9999999999999999999"
    inter = await fake.interact(
        {"custom_id": label, "component_type": 3, "values": ["sad"]},
        type_=3,
        message=forged(label, kind=3),
        channel_id=int(reply["channel_id"]),
    )
    assert "no longer stored" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    assert (await bot.storage.get(dm_row)).guild_id is None  # the DM's row untouched


# ---------------------------------------------------------------------------------------------- downloads
async def test_downloads_only_from_discord_and_never_past_the_declared_size(fake, bot, voice_ogg, caplog):
    elsewhere = fake.voice_attachment(voice_ogg, 2.5)
    elsewhere["url"] = "http://127.0.0.1:9/attachments/1/2/voice-message.ogg?ex=1&hm=secret-signature"
    note = await fake.send_message(attachments=[elsewhere])
    assert "could not download" in (await fake.wait_for_reply(note["id"])).text
    assert "secret-signature" not in caplog.text  # signed query strings stay out of the log

    big = fake.add_file(voice_ogg + bytes(3_000_000), "voice-message.ogg", "audio/ogg", size=1000)
    downloads = len(fake.downloads)
    note = await fake.send_message(attachments=[big])
    assert "larger than Discord says" in (await fake.wait_for_reply(note["id"])).text
    assert len(fake.downloads) == downloads + 1


# ---------------------------------------------------------------------------------------------- hostile bytes
async def test_a_playlist_uploaded_as_a_voice_message_is_refused(fake, bot, tmp_path):
    victim = bot.settings.data_dir / "feedback" / "111" / "1.ogg"
    playlist = b"#EXTM3U\n#EXTINF:10,\n" + str(victim).encode() + b"\n#EXT-X-ENDLIST\n#\x01\n"
    note = await fake.send_message(attachments=[fake.voice_attachment(playlist, 2.0)])
    assert "not audio" in (await fake.wait_for_reply(note["id"])).text


def test_a_display_name_with_dollars_draws(tmp_path):
    from bot.logic import aggregate

    stats = aggregate([(time.time(), "sad", 0.5)], days=3, labels=["sad"])
    png = views.render_chart(stats, title="Emotions — $10 $$ \\frac{a}{b}$ $")
    assert png[:4] == b"\x89PNG"
    embed = views.stats_embed(stats, who="**bold** _name_", days=3, chart_name=None)
    assert "\\*\\*bold\\*\\*" in embed.title


# ---------------------------------------------------------------------------------------------- children
async def test_the_training_child_gets_no_secret(tmp_path, monkeypatch):
    dump = tmp_path / "environ"
    fake_python = tmp_path / "python"
    fake_python.write_text(
        f"#!/bin/sh\ncat /proc/$$/environ > {dump}\n"
        'echo \'{"ok": false, "error": "stopped by the test"}\'\nexit 1\n'
    )
    fake_python.chmod(0o755)
    for name, value in {
        "DISCORD_TOKEN": "tok-secret",
        "SER_DATABASE_URL": "postgresql://ser:pw-secret@db/ser",
        "PGPASSWORD": "pw-secret",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "SER_CACHE_DIR": str(tmp_path / "cache"),
    }.items():
        monkeypatch.setenv(name, value)
    retrainer = Retrainer(models_dir=tmp_path / "models", python=str(fake_python))
    retrainer.begin("seed")
    with pytest.raises(RetrainError, match="stopped by the test"):
        await retrainer.run(tmp_path, [])
    env = dict(kv.split("=", 1) for kv in dump.read_bytes().decode().split("\0") if "=" in kv)
    assert not {"DISCORD_TOKEN", "SER_DATABASE_URL", "PGPASSWORD", "AWS_SECRET_ACCESS_KEY"} & set(env)
    assert not any("secret" in v for v in env.values())
    assert env["SER_CACHE_DIR"] == str(tmp_path / "cache") and env["OMP_NUM_THREADS"] == "1"
    assert str(ROOT) in env["PYTHONPATH"].split(os.pathsep)


def test_a_bad_database_url_is_reported_without_its_password():
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"DISCORD_TOKEN": "x", "SER_DATABASE_URL": "mysql://ser:hunter2@db:3306/ser"})
    assert "hunter2" not in str(info.value) and "ser:***@db:3306" in str(info.value)


def _train_jobs() -> list[int]:
    """Pids of every process running ``bot.train_job`` (the job and its forked feature workers)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"bot.train_job" in cmd:
                out.append(int(entry.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_stopping_the_bot_stops_every_training_process(tmp_path):
    labelled = make_labelled_folder(tmp_path / "labelled", per_speaker=8, seconds=2.0)
    async with FakeDiscord() as fake:
        env = bot_env(
            DISCORD_TOKEN="t",
            SER_DATA_DIR=str(tmp_path / "data"),
            SER_RAVDESS_DIR=str(labelled),
            SER_CACHE_DIR=str(tmp_path / "cache"),
            SER_RETRAIN_COOLDOWN_MIN="0",
            **fake.env(),
        )
        proc = await bot_process(tmp_path, env, stdout=asyncio.subprocess.DEVNULL)
        try:
            await fake.wait_ready(60)
            await asyncio.sleep(0.5)
            await fake.slash("emotion", "retrain", [opt("preset", "compact")])  # the owner: an operator
            deadline = time.monotonic() + 60
            while len(_train_jobs()) < 2:  # the job and at least one of its feature workers
                assert time.monotonic() < deadline, "training never started its workers"
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 40)
            assert proc.returncode == 0, err.decode()[-2000:]
        finally:
            await reap(proc)
    deadline = time.monotonic() + 5
    while _train_jobs() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _train_jobs() == []


async def test_a_retrain_right_after_another_waits_for_the_cooldown(fake, settings, model, tmp_path):
    settings = dataclasses.replace(settings, retrain_cooldown_min=15.0, ravdess_dir=tmp_path)
    bot, task = await start_bot(fake, settings, model)
    try:
        await bot.storage.set_state("retrain_ended", repr(time.time() - 60))  # one ended a minute ago
        inter = await fake.slash("emotion", "retrain")
        rec = await fake.wait_interaction(inter, kinds=("callback",))
        assert "less than 15 minutes ago" in rec.content and "try again in 14:" in rec.content
        assert not bot.retraining.running
    finally:
        await stop_bot(bot, task)
