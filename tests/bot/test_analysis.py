"""``Analyses`` on its own: the analysis path and the storage-down policy it runs under, over an in-memory
storage and plain attachments (no Discord, no download)."""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

import pytest
from memory_storage import MemoryStorage

from bot.analysis import CLOSING_TEXT, NOT_HERE_TEXT, OFF_TEXT, Analyses, Place
from bot.download import DownloadRefused
from bot.logic import RateLimiter
from bot.profiles import Profiles
from bot.resilience import ResilientStorage
from bot.settings import Settings

GUILD, CHANNEL, SPEAKER = 1, 2, 3


def attachment(data: bytes, *, size: int | None = None, duration: float | None = 2.5):
    """An attachment as the analysis path reads it: name, URL on Discord's CDN, declared size and length."""
    return SimpleNamespace(
        filename="note.ogg",
        url="https://cdn.discordapp.com/attachments/2/9/note.ogg",
        size=len(data) if size is None else size,
        duration=duration,
    )


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


class Downloads:
    """Every attachment downloads as ``data``; a test swaps ``fetch`` to refuse or to fail."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def fetch(self, attachment) -> bytes:
        return self.data

    async def close(self) -> None:
        pass


@pytest.fixture
async def analyses(tmp_path, model, storage, voice_ogg):
    settings = Settings(token="t", data_dir=tmp_path)
    resilient = ResilientStorage(storage)  # type: ignore[arg-type]
    service = Analyses(
        settings=settings,
        models=SimpleNamespace(model=model),  # type: ignore[arg-type]
        resilient=resilient,
        downloads=Downloads(voice_ogg),  # type: ignore[arg-type]
        profiles=Profiles(resilient),
        rate_limiter=RateLimiter(capacity=2, per=60.0),
    )
    yield service
    await service.close()


def where(**kw):
    return {"user_id": SPEAKER, "guild_id": GUILD, "channel_id": CHANNEL, "message_id": 7} | kw


async def test_a_note_is_answered_stored_and_held_for_its_buttons(analyses, storage, model, voice_ogg):
    out = await analyses.analyze(attachment(voice_ogg), **where())
    assert out.error is None and out.row_id == 1 and out.picture and out.audio == voice_ogg
    row = storage.rows[1]
    assert (row.guild_id, row.channel_id, row.user_id, row.message_id) == (GUILD, CHANNEL, SPEAKER, 7)
    assert row.label == out.prediction.label and row.model_version == model.version
    assert analyses.clip_cache.get(1) == voice_ogg  # for "keep my clip" and re-runs
    assert SPEAKER in storage.profiles  # the note went into the speaker's voice profile
    kwargs = out.reply_kwargs()
    assert kwargs["embed"].title.split()[1] == out.prediction.label and "view" in kwargs

    analyses.forget_held(SPEAKER)
    assert analyses.clip_cache.get(1) is None


async def test_a_speaker_who_opted_out_is_answered_and_nothing_is_stored(analyses, storage, voice_ogg):
    storage.out.add(SPEAKER)
    out = await analyses.analyze(attachment(voice_ogg), **where())
    assert out.prediction is not None and out.row_id is None and "nothing was stored" in out.profile
    assert storage.rows == {} and storage.profiles == {} and len(analyses.clip_cache) == 0
    assert "view" not in out.reply_kwargs()  # no buttons for a result that is not stored


@pytest.mark.parametrize(
    ("size", "duration", "says"),
    [(0, 2.5, "empty"), (10**9, 2.5, "the limit is"), (None, 10_000.0, "the limit is 120 s")],
)
async def test_refused_from_the_metadata_before_any_download(
    analyses, storage, voice_ogg, size, duration, says
):
    async def no_download(att):
        raise AssertionError("downloaded a note that the metadata refuses")

    analyses.downloads.fetch = no_download
    out = await analyses.analyze(attachment(voice_ogg, size=size, duration=duration), **where())
    assert out.prediction is None and says in out.error and storage.rows == {}


async def test_the_rate_limit_counts_the_requester_and_closing_refuses(analyses, voice_ogg):
    asker = 99
    for _ in range(2):
        assert (await analyses.analyze(attachment(voice_ogg), **where(requester_id=asker))).error is None
    limited = await analyses.analyze(attachment(voice_ogg), **where(requester_id=asker))
    assert "faster than I can listen (2 a minute)" in limited.error
    assert (await analyses.analyze(attachment(voice_ogg), **where(requester_id=100))).error is None

    analyses.closing = True
    assert (await analyses.analyze(attachment(voice_ogg), **where())).error == CLOSING_TEXT


async def test_a_refused_download_is_the_users_sentence(analyses, voice_ogg):
    async def refused(att):
        raise DownloadRefused("I could not download the file from Discord. Try again.")

    analyses.downloads.fetch = refused
    out = await analyses.analyze(attachment(voice_ogg), **where())
    assert (
        out.error == "I could not download the file from Discord. Try again." and out.filename == "note.ogg"
    )


async def test_storage_down_results_are_answered_held_and_saved_when_it_is_back(
    analyses, storage, voice_ogg, caplog
):
    storage.down = True
    with caplog.at_level(logging.ERROR, logger="bot.resilience"):
        first = await analyses.analyze(attachment(voice_ogg), **where())
        second = await analyses.analyze(attachment(voice_ogg), **where(message_id=8))
    assert first.prediction is not None and first.row_id is None  # answered, without buttons
    assert second.prediction is not None and not analyses.resilient.storage_ok
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # one line per outage
    assert [d.message_id for d, _ in analyses.resilient.unsaved] == [7, 8]

    storage.down = False
    await analyses.close()  # tries once more to save what it holds
    assert [r.message_id for r in storage.rows.values()] == [7, 8] and not analyses.resilient.unsaved
    assert analyses.resilient.storage_ok


async def test_with_storage_down_the_last_answers_read_stand(analyses, storage):
    storage.modes[CHANNEL] = "off"
    storage.out.add(SPEAKER)
    assert await analyses.channel_mode(CHANNEL, GUILD) == "off"
    assert await analyses.opted_out(SPEAKER) is True
    storage.down = True
    # a channel switched off stays off, and someone seen opting out stays out
    assert await analyses.channel_mode(CHANNEL, GUILD) == "off" and await analyses.opted_out(SPEAKER)
    # what was never read falls back on the defaults: an outage must not silence the bot
    assert await analyses.channel_mode(CHANNEL + 1, GUILD) == "auto" and not await analyses.opted_out(4)


async def test_a_rerun_is_refused_elsewhere_and_where_it_is_off(analyses, storage, voice_ogg):
    out = await analyses.analyze(attachment(voice_ogg), **where())
    row = storage.rows[out.row_id]
    here = Place(requester_id=50, guild_id=GUILD, channel_id=CHANNEL, mode_channel=CHANNEL)
    elsewhere = dataclasses.replace(here, channel_id=CHANNEL + 1)
    assert await analyses.refuse_rerun(row, elsewhere) == NOT_HERE_TEXT
    storage.modes[CHANNEL] = "off"
    assert await analyses.refuse_rerun(row, here) == OFF_TEXT
    storage.modes[CHANNEL] = "auto"
    storage.out.add(SPEAKER)
    assert "opted out" in await analyses.refuse_rerun(row, here)
    assert await analyses.refuse_rerun(row, dataclasses.replace(here, requester_id=SPEAKER)) is None  # own


async def test_a_rerun_replaces_the_stored_answer_with_the_live_models(analyses, storage, model, voice_ogg):
    out = await analyses.analyze(attachment(voice_ogg), **where())
    old = dataclasses.replace(storage.rows[out.row_id], label="angry", model_version="old")
    storage.rows[out.row_id] = old
    analyses.clip_cache.pop(out.row_id)  # gone from memory: the note comes from ``fetch``

    async def fetch() -> bytes:
        return voice_ogg

    again = await analyses.rerun(old, Place(50, GUILD, CHANNEL, CHANNEL), fetch=fetch)
    assert again.rerun_of == "old" and again.row_id == out.row_id
    assert storage.rows[out.row_id].label == out.prediction.label
    assert storage.rows[out.row_id].model_version == model.version


async def test_the_command_budget_is_per_person(analyses):
    assert [analyses.command_refused(1) for _ in range(5)] == [None] * 5
    assert "several times in a row" in analyses.command_refused(1)
    assert analyses.command_refused(2) is None
