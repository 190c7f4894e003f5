"""Issue 14 through the real client and the fake Discord: channel modes, opt-out, DMs, the picture, re-run."""

from __future__ import annotations

import asyncio
import threading

import pytest
from bot_helpers import expected_label, first_emotion

from bot.logic import MANAGE_GUILD
from bot.testing.fakediscord import EPHEMERAL_FLAG

pytestmark = pytest.mark.timeout(90)


def opt(name: str, value) -> dict:
    return {"type": 3 if isinstance(value, str) else 4, "name": name, "value": value}


async def set_mode(fake, mode: str, where: str = "channel", channel_id: int | None = None) -> str:
    inter = await fake.slash(
        "emotion",
        "mode",
        [opt("mode", mode), opt("where", where)],
        permissions=MANAGE_GUILD,
        channel_id=channel_id,
    )
    return (await fake.wait_interaction(inter, kinds=("callback",))).content


async def no_reply(fake, note: dict, seconds: float = 1.0) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await fake.wait_for_reply(note["id"], timeout=seconds)


async def menu(fake, note: dict, user: dict | None = None):
    inter = await fake.context_menu("Detect emotion", note, user=user)
    return await fake.wait_interaction(inter, kinds=("callback", "followup"))


async def menu_result(fake, note: dict, user: dict | None = None):
    inter = await fake.context_menu("Detect emotion", note, user=user)
    return await fake.wait_interaction(inter, kinds=("followup",))


# ---------------------------------------------------------------------------------------------- modes
async def test_each_mode_and_the_server_default(fake, bot, voice_ogg):
    send = lambda ch=None: fake.send_message(  # noqa: E731
        attachments=[fake.voice_attachment(voice_ogg, 2.5)], channel_id=ch
    )
    # auto, the default: answered
    assert first_emotion((await fake.wait_for_reply((await send())["id"])).text)

    # on request: no automatic reply, the menu and /emotion analyze still answer
    assert "on request" in await set_mode(fake, "on request")
    quiet = await send()
    await no_reply(fake, quiet)
    assert first_emotion((await menu_result(fake, quiet)).text)

    # off: nothing, not even on request
    assert "off" in await set_mode(fake, "off")
    await no_reply(fake, await send())
    refused = await menu(fake, await send())
    assert "off in this channel" in refused.content and refused.flags & EPHEMERAL_FLAG
    att = fake.add_file(voice_ogg, "note.ogg", "audio/ogg")
    option, resolved = fake.attachment_option("file", att)
    inter = await fake.slash("emotion", "analyze", [option], resolved=resolved)
    assert "off in this channel" in (await fake.wait_interaction(inter, kinds=("callback",))).content

    # the server default reaches channels without their own mode, not #general (off)
    text = await set_mode(fake, "on request", where="server")
    assert "Server default" in text and "on request" in text
    other = fake.other_channel_id
    await no_reply(fake, await send(other))
    await no_reply(fake, await send())
    assert await bot.storage.modes(fake.channel_id, fake.guild_id) == ("off", "request")

    # #general inherits again; then the server goes back to auto and both channels answer
    assert "(the server default)" in await set_mode(fake, "server default")
    await no_reply(fake, await send())
    await set_mode(fake, "auto", where="server")
    for channel in (None, other):
        assert first_emotion((await fake.wait_for_reply((await send(channel))["id"])).text)

    # a server's default cannot itself be "follow the server default"
    text = await set_mode(fake, "server default", where="server")
    assert "must be auto, on request or off" in text and await bot.storage.modes(other, fake.guild_id) == (
        None,
        "auto",
    )

    # /emotion mode without a value shows the state, to the asker only
    show = await fake.slash("emotion", "mode", [])
    rec = await fake.wait_interaction(show, kinds=("callback",))
    assert "This channel: **auto**" in rec.content and rec.flags & EPHEMERAL_FLAG
    assert await bot.storage.modes(fake.channel_id, fake.guild_id) == (None, "auto")


# ---------------------------------------------------------------------------------------------- opt-out
async def test_optout_stops_auto_and_others_requests_and_stores_nothing_until_optin(
    fake, bot, model, voice_ogg
):
    owner, other = fake.owner, fake.user(fake.new_id(), "someone-else")
    uid = int(owner["id"])
    inter = await fake.slash("emotion", "optout", [])
    rec = await fake.wait_interaction(inter, kinds=("callback",))
    assert "opted out" in rec.content and rec.flags & EPHEMERAL_FLAG

    note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    await no_reply(fake, note)  # no automatic reply
    refused = await menu(fake, note, user=other)  # someone else asks: refused, politely
    assert "opted out" in refused.content and refused.flags & EPHEMERAL_FLAG
    mine = await menu_result(fake, note, user=owner)  # they ask themselves: answered, nothing stored
    assert first_emotion(mine.text) == expected_label(model, voice_ogg)
    assert "nothing was stored" in mine.text and mine.custom_ids == []
    dm = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], dm=True)
    assert "nothing was stored" in (await fake.wait_for_reply(dm["id"])).text
    assert await bot.storage.count(user_id=uid) == 0
    assert await bot.storage.get_profile(uid) is None
    assert len(bot.analyses.clip_cache) == 0

    inter = await fake.slash("emotion", "optin", [])
    assert "opted in" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    back = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    reply = await fake.wait_for_reply(back["id"])
    assert first_emotion(reply.text) and reply.custom_ids
    assert await bot.storage.count(user_id=uid) == 1 and await bot.storage.get_profile(uid) is not None


# ---------------------------------------------------------------------------------------------- DMs
async def test_a_dm_note_is_answered_and_kept_out_of_servers(fake, bot, model, voice_ogg):
    server_note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
    await fake.wait_for_reply(server_note["id"])
    dm = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], dm=True)
    reply = await fake.wait_for_reply(dm["id"])
    assert reply.channel_id == fake.dm_channel_id
    assert first_emotion(reply.text) == expected_label(model, voice_ogg)
    (private,) = await bot.storage.history(None)
    assert private.guild_id is None and private.message_id == int(dm["id"])

    # In the server: history and stats show the server's note only, for everyone and for the owner.
    for options in ([], [{"type": 6, "name": "user", "value": fake.owner["id"]}]):
        resolved = {"users": {fake.owner["id"]: fake.owner}} if options else None
        inter = await fake.slash("emotion", "history", options, resolved=resolved)
        text = (await fake.wait_interaction(inter, kinds=("callback",))).text
        assert text.count("%") == 1, text
    inter = await fake.slash("emotion", "stats", [])
    stats = await fake.wait_interaction(inter, kinds=("followup",))
    assert "1 note" in stats.text and "2 notes" not in stats.text

    # In DMs: the person's own DM results; another person's DMs show none of them.
    inter = await fake.slash("emotion", "history", [], dm=True)
    text = (await fake.wait_interaction(inter, kinds=("callback",))).text
    assert text.count("%") == 1
    stranger = fake.user(fake.new_id(), "stranger")
    inter = await fake.slash("emotion", "history", [], dm=True, user=stranger)
    assert "%" not in (await fake.wait_interaction(inter, kinds=("callback",))).text
    # Server-only commands say so in a DM.
    inter = await fake.slash("emotion", "mode", [opt("mode", "off")], dm=True)
    assert "works in a server" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    inter = await fake.slash("emotion", "autorole", [], dm=True)
    assert "works in a server" in (await fake.wait_interaction(inter, kinds=("callback",))).content


# ---------------------------------------------------------------------------------------------- picture
@pytest.mark.parametrize("seconds", [2.5, 7.0])
async def test_reply_attaches_a_small_png_drawn_in_a_worker(fake, bot, model, monkeypatch, seconds):
    from bot import views
    from bot.testing.synthetic import synthetic_voice
    from ser_core.audio import encode

    threads = []
    real = views.render_note

    def spy(pred):
        threads.append(threading.current_thread())
        return real(pred)

    monkeypatch.setattr(views, "render_note", spy)
    data = encode(synthetic_voice(seconds, seed=8), 48_000, "OGG", "OPUS")
    note = await fake.send_message(attachments=[fake.voice_attachment(data, seconds)])
    reply = await fake.wait_for_reply(note["id"])
    ((name, png),) = reply.files
    assert name == "emotion.png" and png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) <= 100_000
    assert reply.embeds[0]["image"]["url"] == "attachment://emotion.png"
    assert all(lab in reply.text for lab in model.labels)  # the text stays, for screen readers
    assert ("Timeline" in reply.text) == (seconds >= 6)
    assert threads and all(t is not threading.main_thread() for t in threads)  # never on the event loop


def test_picture_shows_the_timeline_or_the_bars(model):
    """Both layouts render, stay small, and differ (the waveform picture is not the bar chart)."""
    import io

    from matplotlib.image import imread

    from bot.testing.synthetic import synthetic_voice
    from bot.views import render_note

    short = render_note(model.predict_signal(synthetic_voice(3.0, 16_000, seed=1)))
    long = render_note(model.predict_signal(synthetic_voice(9.0, 16_000, seed=1)))
    for png in (short, long):
        img = imread(io.BytesIO(png))
        assert img.shape[:2] == (220, 640) and len(png) <= 100_000
        # an opaque card (reads on the dark and the light theme): no transparent pixel
        assert img.shape[2] == 3 or img[..., 3].min() == 1.0
    assert short != long


# ---------------------------------------------------------------------------------------------- re-run
async def test_rerun_after_a_model_swap_names_the_new_model(fake, bot, voice_ogg, tmp_path):
    from synth import random_model

    first = await fake.wait_for_reply(
        (await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
    )
    old = bot.models.model.version
    assert f"model {old}" in first.text
    (row,) = await bot.storage.history(fake.guild_id)

    newer = random_model(seed=5, fit_seed=5)
    path = tmp_path / "newer.npz"
    newer.save(path)
    await bot.models.install(path, newer.version)
    assert bot.models.model.version != old

    expected = [f"(re-run; previous answer by model {old})", "(re-run with the same model)"]
    for cache, says in zip(("held in memory", "fetched again from Discord"), expected, strict=True):
        downloads = len(fake.downloads)
        if cache.startswith("fetched"):
            bot.analyses.clip_cache.pop(row.id)  # as after 15 minutes: the audio comes from the message again
        stranger = fake.user(fake.new_id(), "someone")
        inter = await fake.click(first, f"ser:fb:rerun:{row.id}", user=stranger)
        edit = await fake.wait_interaction(inter, kinds=("edit",))
        assert f"model {bot.models.model.version} {says}" in edit.text, cache
        assert first_emotion(edit.text) == expected_label(bot.models.model, voice_ogg)
        assert [n for n, _ in edit.files] == ["emotion.png"]
        stored = await bot.storage.get(row.id)
        assert stored.model_version == bot.models.model.version and stored.label == expected_label(
            bot.models.model, voice_ogg
        )
        assert len(fake.downloads) == downloads + cache.startswith("fetched")


async def test_only_members_with_the_chosen_role_are_analysed_automatically(fake, bot, voice_ogg):
    role = fake.guilds[0].role_id
    refused = await fake.slash(
        "emotion", "autorole", [{"type": 8, "name": "role", "value": str(role)}], permissions=0
    )
    assert "Manage Server" in (await fake.wait_interaction(refused, kinds=("callback",))).content

    resolved = {
        "roles": {
            str(role): {
                "id": str(role),
                "name": "speakers",
                "permissions": "0",
                "position": 1,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
            }
        }
    }
    inter = await fake.slash(
        "emotion",
        "autorole",
        [{"type": 8, "name": "role", "value": str(role)}],
        resolved=resolved,
        permissions=MANAGE_GUILD,
    )
    assert (
        "only the notes of members with" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    )
    assert await bot.storage.auto_role(fake.guild_id) == role

    def note(**kw):
        return fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], **kw)

    await no_reply(fake, await note())  # no role: not analysed automatically
    without = await note()
    assert first_emotion((await menu_result(fake, without)).text)  # but on request, yes
    assert first_emotion((await fake.wait_for_reply((await note(roles=[role]))["id"])).text)

    clear = await fake.slash("emotion", "autorole", [], permissions=MANAGE_GUILD)
    assert "everyone's notes" in (await fake.wait_interaction(clear, kinds=("callback",))).content
    assert first_emotion((await fake.wait_for_reply((await note())["id"])).text)


async def test_rerun_is_refused_for_an_opted_out_author_and_says_when_the_audio_is_gone(fake, bot, voice_ogg):
    reply = await fake.wait_for_reply(
        (note := await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)]))["id"]
    )
    (row,) = await bot.storage.history(fake.guild_id)
    stranger = fake.user(fake.new_id(), "someone")

    await bot.storage.set_opted_out(int(fake.owner["id"]), True)
    inter = await fake.click(reply, f"ser:fb:rerun:{row.id}", user=stranger)
    rec = await fake.wait_interaction(inter, kinds=("callback",))
    assert "opted out" in rec.content and rec.flags & EPHEMERAL_FLAG
    await bot.storage.set_opted_out(int(fake.owner["id"]), False)

    bot.analyses.clip_cache.pop(row.id)  # out of memory, and the note itself deleted from Discord
    del fake.messages[int(note["id"])]
    inter = await fake.click(reply, f"ser:fb:rerun:{row.id}", user=stranger)
    rec = await fake.wait_interaction(inter, kinds=("followup",))
    assert "no longer have this note's audio" in rec.content and rec.flags & EPHEMERAL_FLAG
    assert (await bot.storage.get(row.id)).model_version == row.model_version  # nothing replaced
