"""Feedback buttons, consented clips, voice profiles and /emotion forget, through the real client."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from bot_helpers import start_bot, stop_bot
from synth import random_model

from bot.feedback import ClipCache, clip_relpath, extension_for, resolve_clip
from bot.testing.fakediscord import EPHEMERAL_FLAG
from ser_core import EMOTIONS

pytestmark = pytest.mark.timeout(60)


async def note_and_reply(fake, data: bytes, *, author=None, filename: str | None = None):
    att = fake.add_file(data, filename, "audio/ogg") if filename else fake.voice_attachment(data, 2.5)
    note = await fake.send_message(attachments=[att], author=author)
    return note, await fake.wait_for_reply(note["id"])


def row_id_of(reply) -> int:
    ids = reply.custom_ids
    assert len(ids) == 5 and ids[0].startswith("ser:fb:right:"), ids
    return int(ids[0].rsplit(":", 1)[1])


async def test_reply_has_feedback_buttons_with_the_row_id(fake, bot, voice_ogg):
    _, reply = await note_and_reply(fake, voice_ogg)
    (row,) = await bot.storage.history(fake.guild_id)
    actions = ("right", "wrong", "keep", "rerun", "transcript")
    assert reply.custom_ids == [f"ser:fb:{a}:{row.id}" for a in actions]


async def test_wrong_then_select_stores_the_correction_and_only_the_author_may(fake, bot, voice_ogg):
    _, reply = await note_and_reply(fake, voice_ogg)
    row_id = row_id_of(reply)
    predicted = (await bot.storage.get(row_id)).label
    truth = next(e for e in EMOTIONS if e != predicted)

    stranger = fake.user(fake.new_id(), "stranger")
    refused = await fake.click(reply, f"ser:fb:wrong:{row_id}", user=stranger)
    rec = await fake.wait_interaction(refused, kinds=("callback",))
    assert "Only the author" in rec.content and rec.flags & EPHEMERAL_FLAG
    assert (await bot.storage.get(row_id)).feedback is None

    wrong = await fake.click(reply, f"ser:fb:wrong:{row_id}")
    menu = await fake.wait_interaction(wrong, kinds=("callback",))
    assert menu.flags & EPHEMERAL_FLAG and menu.custom_ids == [f"ser:fb:label:{row_id}"]
    chosen = await fake.click(menu, f"ser:fb:label:{row_id}", values=[truth])
    done = await fake.wait_interaction(chosen, kinds=("callback",))
    assert done.payload["type"] == 7 and f"**{truth}**" in done.content  # the menu message is replaced
    row = await bot.storage.get(row_id)
    assert (row.feedback, row.true_label, row.label) == ("wrong", truth, predicted)


async def test_right_consent_keeps_the_clip_at_a_safe_path_and_forget_removes_everything(
    fake, bot, settings, voice_ogg, tmp_path, monkeypatch
):
    from ser_core.cache import content_hash

    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path / "cache"))
    owner = int(fake.owner["id"])
    _, reply = await note_and_reply(fake, voice_ogg, filename="../../x.ogg")  # a hostile name
    row_id = row_id_of(reply)

    early = await fake.click(reply, f"ser:fb:keep:{row_id}")  # no label yet: nothing is kept
    assert "First tell me" in (await fake.wait_interaction(early, kinds=("callback",))).content
    assert not (settings.data_dir / "feedback").exists()

    right = await fake.click(reply, f"ser:fb:right:{row_id}")
    assert "was right" in (await fake.wait_interaction(right, kinds=("callback",))).content
    keep = await fake.click(reply, f"ser:fb:keep:{row_id}")
    assert "Kept your clip" in (await fake.wait_interaction(keep, kinds=("callback",))).content

    row = await bot.storage.get(row_id)
    assert row.true_label == row.label
    kept, left_out = await bot.retraining.kept_clips(tmp_path / "clips")  # what retraining would get
    assert [(k["emotion"], k["speaker"]) for k in kept] == [(row.label, str(owner))] and left_out == 0
    assert Path(kept[0]["path"]).read_bytes() == voice_ogg
    expected = settings.data_dir / "feedback" / str(owner) / f"{row_id}.ogg"
    if bot.storage.shared:  # PostgreSQL keeps the clip as a row; retraining gets it as a file of its own
        assert row.clip_path == f"db:{row_id}" and not (settings.data_dir / "feedback").exists()
    else:  # SQLite: a file at a path built from two numbers only
        assert row.clip_path == f"feedback/{owner}/{row_id}.ogg" and kept[0]["path"] == str(
            expected.resolve()
        )
    audio_files = [p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"OggS"]
    assert set(audio_files) <= {expected, Path(kept[0]["path"])}  # nothing landed where the name pointed
    assert (await bot.storage.get_profile(owner))["n"] == 1

    # what a retrain derived from the kept clip: its vectors in the feature cache (two presets, a noisy copy)
    digest, other = content_hash(voice_ogg), content_hash(b"someone else's clip")
    derived = [
        tmp_path / "cache" / key / digest[:2] / f"{digest}{tag}.npy"
        for key, tag in (("whisper-mid-abc", ""), ("whisper-mid-abc", ".noise-a1"), ("seed-def", ""))
    ]
    kept_apart = tmp_path / "cache" / "whisper-mid-abc" / other[:2] / f"{other}.npy"
    for f in (*derived, kept_apart):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"vector")

    forget = await fake.slash("emotion", "forget")
    text = (await fake.wait_interaction(forget, kinds=("callback",))).content
    assert "Deleted 1 stored result, 1 kept clip and your voice profile" in text
    assert not expected.exists() and not expected.parent.exists()
    assert not any(f.exists() for f in derived) and kept_apart.exists()
    assert await bot.storage.count(user_id=owner) == 0
    assert await bot.storage.get_profile(owner) is None
    assert await bot.storage.kept_clips() == []


async def test_keep_toggles_off_and_an_expired_clip_is_not_available(fake, settings, model, voice_ogg):
    now = [0.0]
    cache = ClipCache(ttl_s=60, clock=lambda: now[0])
    bot, task = await start_bot(fake, settings, model, clip_cache=cache)
    try:
        _, reply = await note_and_reply(fake, voice_ogg)
        row_id = row_id_of(reply)
        await fake.wait_interaction(await fake.click(reply, f"ser:fb:right:{row_id}"), kinds=("callback",))
        await fake.wait_interaction(await fake.click(reply, f"ser:fb:keep:{row_id}"), kinds=("callback",))
        assert len(await bot.storage.kept_clips()) == 1
        path = (
            None
            if bot.storage.shared
            else resolve_clip(settings.data_dir, (await bot.storage.get(row_id)).clip_path)
        )
        assert path is None or path.is_file()
        off = await fake.click(reply, f"ser:fb:keep:{row_id}")
        assert "Deleted your kept clip" in (await fake.wait_interaction(off, kinds=("callback",))).content
        assert (await bot.storage.get(row_id)).clip_path is None and await bot.storage.kept_clips() == []
        assert path is None or not path.exists()

        now[0] += 61  # past the cache's lifetime
        late = await fake.click(reply, f"ser:fb:keep:{row_id}")
        assert "no longer available" in (await fake.wait_interaction(late, kinds=("callback",))).content
        assert await bot.storage.kept_clips() == []
    finally:
        await stop_bot(bot, task)


async def test_buttons_work_after_a_restart(fake, settings, model, voice_ogg):
    bot, task = await start_bot(fake, settings, model)
    _, reply = await note_and_reply(fake, voice_ogg)
    row_id = row_id_of(reply)
    await stop_bot(bot, task)

    bot2, task2 = await start_bot(fake, settings, model)  # a new client on the same data folder
    try:
        assert bot2 is not bot
        wrong = await fake.click(reply, f"ser:fb:wrong:{row_id}")
        menu = await fake.wait_interaction(wrong, kinds=("callback",))
        chosen = await fake.click(menu, f"ser:fb:label:{row_id}", values=["fearful"])
        await fake.wait_interaction(chosen, kinds=("callback",))
        assert (await bot2.storage.get(row_id)).true_label == "fearful"
    finally:
        await stop_bot(bot2, task2)


@pytest.fixture(scope="module")
def adaptive_model_path(tmp_path_factory):
    """A tiny model with an adapted head that answers from 2 notes of evidence."""
    model = random_model(seed=1, hidden=(8,), max_iter=20, speakers=4, min_evidence=2)
    path = tmp_path_factory.mktemp("adaptive") / "adaptive.npz"
    model.save(path)
    return path


def _voice(seed: int) -> bytes:
    from bot.testing.synthetic import synthetic_voice
    from ser_core.audio import encode

    return encode(synthetic_voice(2.0, seed=seed), 48_000, "OGG", "OPUS")


async def test_voice_profile_learns_then_is_used_and_forget_clears_it(fake, settings, adaptive_model_path):
    from ser_core import load_model

    model = load_model(adaptive_model_path)
    assert model.supports_adaptation and model.adapt.min_evidence == 2
    bot, task = await start_bot(fake, dataclasses.replace(settings, model_path=adaptive_model_path), model)
    try:
        owner = int(fake.owner["id"])
        # A profile left by an older bot (z-score statistics) must not break predictions: it starts again.
        await bot.storage.save_profile(owner, {"n": 10, "mean": [0.0] * 3, "m2": [1.0] * 3})
        footers = []
        for seed in range(3):
            _, reply = await note_and_reply(fake, _voice(seed))
            footers.append(reply.embeds[0]["footer"]["text"])
        assert "adaptation: none" in footers[0] and "adaptation: none" in footers[1]
        assert "adaptation: profile 2 notes" in footers[2]
        profile = await bot.storage.get_profile(owner)
        assert profile["n"] == 3 and len(profile["note_sum"]) == model.features.dim and "mean" not in profile
        await fake.wait_interaction(await fake.slash("emotion", "forget"), kinds=("callback",))
        assert await bot.storage.get_profile(owner) is None
    finally:
        await stop_bot(bot, task)


async def test_calibrate_takes_the_next_notes_as_references_and_the_footer_names_them(
    fake, settings, adaptive_model_path
):
    from ser_core import load_model

    model = load_model(adaptive_model_path)
    bot, task = await start_bot(fake, dataclasses.replace(settings, model_path=adaptive_model_path), model)
    try:
        owner = int(fake.owner["id"])
        ask = await fake.slash(
            "emotion",
            "calibrate",
            [{"type": 3, "name": "language", "value": "Deutsch"}, {"type": 4, "name": "notes", "value": 2}],
        )
        rec = await fake.wait_interaction(ask, kinds=("callback",))
        assert "next 2 voice notes" in rec.content and "Der Zug in die Stadt" in rec.content
        assert rec.flags & EPHEMERAL_FLAG
        for k in (1, 2):
            _, reply = await note_and_reply(fake, _voice(10 + k))
            assert f"Reference note recorded: you have {k} now" in reply.text and reply.custom_ids == []
        assert await bot.storage.count(user_id=owner) == 0  # references are not results
        saved = await bot.storage.get_profile(owner)
        assert saved["k"] == 2 and "enrol" not in saved and saved["n"] == 0
        _, reply = await note_and_reply(fake, _voice(20))  # now judged, against the reference
        assert "adaptation: neutral reference 2" in reply.embeds[0]["footer"]["text"]
        # a file given to the command is a reference at once
        att = fake.add_file(_voice(21), "relaxed.ogg", "audio/ogg")
        option, resolved = fake.attachment_option("file", att)
        inter = await fake.slash("emotion", "calibrate", [option], resolved=resolved)
        rec = await fake.wait_interaction(inter, kinds=("followup",))
        assert "you have 3 now" in rec.content and rec.flags & EPHEMERAL_FLAG
        reset = await fake.slash("emotion", "calibrate", [{"type": 5, "name": "reset", "value": True}])
        await fake.wait_interaction(reset, kinds=("callback",))
        assert (await bot.storage.get_profile(owner))["k"] == 0
        await fake.wait_interaction(await fake.slash("emotion", "forget"), kinds=("callback",))
        assert await bot.storage.get_profile(owner) is None
        # opted out: never enrolled
        await bot.storage.set_opted_out(owner, True)
        refused = await fake.wait_interaction(await fake.slash("emotion", "calibrate"), kinds=("callback",))
        assert "opted out" in refused.content and await bot.storage.get_profile(owner) is None
    finally:
        await stop_bot(bot, task)


async def test_no_adaptation_line_without_an_adapted_head_but_the_profile_still_updates(
    fake, bot, model, voice_ogg
):
    assert not model.supports_adaptation
    for _ in range(2):
        _, reply = await note_and_reply(fake, voice_ogg)
        assert "adaptation" not in reply.embeds[0]["footer"]["text"]
    assert (await bot.storage.get_profile(int(fake.owner["id"])))["n"] == 2
    refused = await fake.wait_interaction(await fake.slash("emotion", "calibrate"), kinds=("callback",))
    assert "cannot learn a voice" in refused.content


# ---------------------------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("user_id", "row_id", "ext"), [(0, 1, ".ogg"), (1, -1, ".ogg"), (1, 1, ".sh"), (1, 1, "/../x.ogg")]
)
def test_clip_relpath_refuses_anything_but_ids_and_allowed_extensions(user_id, row_id, ext):
    with pytest.raises(ValueError):
        clip_relpath(user_id, row_id, ext)


def test_clip_paths_stay_inside_the_feedback_folder(tmp_path):
    assert clip_relpath(12, 34, ".ogg") == "feedback/12/34.ogg"
    assert resolve_clip(tmp_path, "feedback/12/34.ogg") == (tmp_path / "feedback/12/34.ogg").resolve()
    for bad in ("../x.ogg", "feedback/../../x.ogg", "/etc/passwd", "ser-bot.sqlite3"):
        with pytest.raises(ValueError):
            resolve_clip(tmp_path, bad)


def test_extension_comes_from_the_bytes(voice_ogg, mp3_bytes):
    assert extension_for(voice_ogg) == ".ogg"
    assert extension_for(mp3_bytes) == ".mp3"
    assert extension_for(b"#!/bin/sh\nrm -rf /\n") == ".audio"


def test_clip_cache_is_bounded_by_entries_bytes_and_age():
    now = [0.0]
    cache = ClipCache(max_entries=2, max_bytes=10, ttl_s=5, clock=lambda: now[0])
    cache.put(1, b"aaaa", owner=7)
    cache.put(2, b"bbbb", owner=8)
    cache.put(3, b"cccc", owner=7)  # 3 entries > 2: the oldest goes
    assert cache.get(1) is None and cache.get(2) == b"bbbb" and len(cache) == 2
    cache.put(4, b"dddddd")  # 4 + 4 + 6 bytes > 10: the oldest goes
    assert cache.get(2) is None and cache.get(3) == b"cccc" and cache.get(4) == b"dddddd"
    cache.put(8, b"gg")  # 4 + 6 + 2 > 10 and 3 entries > 2
    assert cache.get(3) is None and cache.get(8) == b"gg"
    cache.put(5, b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(5) is None
    now[0] = 6
    assert cache.get(4) is None and cache.get(8) is None and len(cache) == 0
    cache.put(6, b"e", owner=9)
    cache.put(7, b"f", owner=10)
    assert cache.forget_owner(9) == 1 and cache.get(6) is None and cache.get(7) == b"f"
