"""``ResilientStorage``: an outage logged once and answered with defaults, the last answers read standing in,
and results held in memory until storage works again."""

from __future__ import annotations

import asyncio
import logging

import pytest
from memory_storage import MemoryStorage

import bot.resilience as resilience
from bot.resilience import HELD, ResilientStorage
from bot.storage import Detection


def result(message_id: int, *, user_id: int = 3) -> Detection:
    return Detection(
        guild_id=1,
        channel_id=2,
        user_id=user_id,
        message_id=message_id,
        created_at=1.0,
        label="calm",
        confidence=0.5,
        probabilities={"calm": 0.5, "sad": 0.5},
        duration_s=2.5,
        model_version="m1",
    )


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
async def resilient(storage):
    guard = ResilientStorage(storage)  # type: ignore[arg-type]
    yield guard
    await guard.close()


async def test_stored_returns_the_default_and_only_a_write_says_storage_works_again(
    resilient, storage, caplog
):
    storage.down = True
    with caplog.at_level(logging.DEBUG, logger="bot.resilience"):
        assert (
            await resilient.stored("reading", lambda: storage.opted_out(1), write=False, default="d") == "d"
        )
        assert await resilient.stored("reading", lambda: storage.opted_out(1), write=False) is None
    assert not resilient.storage_ok
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None  # once per outage, with the traceback
    storage.down = False
    assert await resilient.stored("reading", lambda: storage.opted_out(1), write=False) is False
    assert not resilient.storage_ok  # a read proves little: a full disk still reads
    await resilient.stored("writing", lambda: storage.save_profile(1, {}), write=True)
    assert resilient.storage_ok and "storage works again (writing)" in caplog.text


async def test_remembered_answers_stand_in_while_storage_is_down(resilient, storage):
    storage.out.add(5)
    read = lambda uid: lambda: storage.opted_out(uid)  # noqa: E731
    assert await resilient.remembered("opt-out", read(5), ("out", 5), False) is True
    assert await resilient.remembered("opt-out", read(6), ("out", 6), False) is False
    storage.down = True
    assert await resilient.remembered("opt-out", read(5), ("out", 5), False) is True  # the last answer
    assert await resilient.remembered("opt-out", read(7), ("out", 7), False) is False  # never read: usual
    storage.down = False
    storage.out.discard(5)
    assert await resilient.remembered("opt-out", read(5), ("out", 5), False) is False
    storage.down = True  # the usual answer read last is not kept: the usual one stands in
    assert await resilient.remembered("opt-out", read(5), ("out", 5), False) is False


async def test_results_are_held_while_down_and_saved_in_order_when_it_is_back(
    resilient, storage, monkeypatch
):
    monkeypatch.setattr(resilience, "RESAVE_EVERY_S", (0.01,))
    assert await resilient.save_result(result(1), since=0.0) == 1
    storage.down = True
    assert await resilient.save_result(result(2), since=0.0) is HELD
    assert await resilient.save_result(result(3), since=0.0) is HELD
    await asyncio.sleep(0.05)
    assert [d.message_id for d, _ in resilient.unsaved] == [2, 3]  # still down: still held
    storage.down = False
    for _ in range(100):
        if not resilient.unsaved:
            break
        await asyncio.sleep(0.01)
    assert [r.message_id for r in storage.rows.values()] == [1, 2, 3] and resilient.storage_ok


async def test_a_forgotten_speakers_result_is_not_stored(resilient, storage):
    storage.forgotten.add(3)
    assert await resilient.save_result(result(1), since=0.0) is None
    assert storage.rows == {} and not resilient.unsaved


async def test_close_tries_once_more_and_logs_what_is_lost(storage, caplog):
    resilient = ResilientStorage(storage)  # type: ignore[arg-type]
    storage.down = True
    await resilient.save_result(result(1), since=0.0)
    with caplog.at_level(logging.ERROR, logger="bot.resilience"):
        await resilient.close()
    assert "1 answered result(s) could not be saved before shutdown" in caplog.text
