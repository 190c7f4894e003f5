"""``Profiles``: voice profiles read and written under one lock per speaker, calibration and its pending
references, and what storage down or ``/emotion forget`` leaves of them."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from memory_storage import MemoryStorage

from bot.profiles import ENROL_MINUTES, Profiles, enrolment
from bot.resilience import ResilientStorage
from bot.storage import now
from ser_core.adapt import VoiceProfile

LABELS = ("calm", "sad")


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def profiles(storage) -> Profiles:
    return Profiles(ResilientStorage(storage))  # type: ignore[arg-type]


async def test_one_lock_per_speaker(profiles):
    lock = profiles.lock(1)
    async with lock:
        assert profiles.lock(1) is lock and profiles.lock(1).locked()
        assert not profiles.lock(2).locked()  # another speaker does not wait
        waiter = asyncio.create_task(profiles.lock(1).acquire())
        await asyncio.sleep(0.01)
        assert not waiter.done()  # the same speaker does
    await waiter
    profiles.lock(1).release()


async def test_calibrate_asks_for_references_and_reset_drops_the_kept_ones(profiles, storage):
    storage.profiles[1] = VoiceProfile().add_reference(np.ones(4)).to_dict()
    before = now()
    kept = await profiles.calibrate(1, notes=2, reset=False)
    assert kept.k == 1
    enrol = storage.profiles[1]["enrol"]
    assert enrol["left"] == 2 and before + ENROL_MINUTES * 60 <= enrol["until"] <= now() + ENROL_MINUTES * 60
    assert enrolment(storage.profiles[1], now()) == enrol

    reset = await profiles.calibrate(1, notes=0, reset=True)
    assert reset.k == 0 and "enrol" not in storage.profiles[1]
    assert VoiceProfile.from_dict(storage.profiles[1]).k == 0


async def test_references_count_down_and_the_last_ends_the_enrolment(profiles, storage):
    profile, enrol = VoiceProfile(), {"left": 2, "until": now() + 60}
    assert await profiles.add_reference(1, profile, enrol, np.ones(4), now()) == 1
    assert storage.profiles[1]["enrol"]["left"] == 1 and storage.profiles[1]["k"] == 1
    assert (
        await profiles.add_reference(1, profile, {"left": 1, "until": enrol["until"]}, np.ones(4), now()) == 0
    )
    assert "enrol" not in storage.profiles[1] and VoiceProfile.from_dict(storage.profiles[1]).k == 2


@pytest.mark.parametrize("why", ["down", "forgotten"])
async def test_a_reference_not_kept_counts_as_not_stored(profiles, storage, why):
    if why == "down":
        storage.down = True
    else:
        storage.forgotten.add(1)
    assert (
        await profiles.add_reference(1, VoiceProfile(), {"left": 1, "until": now() + 60}, np.ones(4), now())
        is None
    )
    assert storage.profiles == {}


async def test_a_note_keeps_the_pending_enrolment_and_storage_down_counts_as_kept(profiles, storage):
    saved = {"enrol": {"left": 1, "until": now() + 60}}
    profile = VoiceProfile()
    assert await profiles.add_note(1, saved, profile, np.ones(4), np.array([0.2, 0.8]), LABELS, now())
    record = storage.profiles[1]
    assert record["n"] == 1 and record["labels"] == list(LABELS) and record["enrol"] == saved["enrol"]
    assert await profiles.saved(1) == record

    storage.down = True
    assert await profiles.add_note(1, {}, profile, np.ones(4), np.array([0.5, 0.5]), LABELS, now())
    assert await profiles.saved(1) == {}  # a profile cannot be read: none
    storage.down = False
    storage.forgotten.add(1)
    assert not await profiles.add_note(1, {}, profile, np.ones(4), np.array([0.5, 0.5]), LABELS, now())


@pytest.mark.parametrize(
    ("enrol", "due"),
    [
        ({"left": 2, "until": 100.0}, {"left": 2, "until": 100.0}),
        ({"left": 2, "until": 10.0}, None),  # too late
        ({"left": 0, "until": 100.0}, None),  # every reference in
        ({"left": "x", "until": 100.0}, None),  # a damaged record is ignored
        ({"until": 100.0}, None),
        (None, None),
    ],
)
def test_enrolment_is_due_only_while_references_are_wanted_in_time(enrol, due):
    assert enrolment({"enrol": enrol} if enrol is not None else {}, 50.0) == due
