"""Voice profiles: each speaker's record, read and written under a lock of their own (read, predict, write),
the neutral reference notes of ``/emotion calibrate`` and the sums every stored note adds.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

import numpy as np

from ser_core.adapt import VoiceProfile

from .resilience import ResilientStorage
from .storage import now

#: How long after ``/emotion calibrate`` the next notes are taken as neutral references.
ENROL_MINUTES = 15


class Profiles:
    """The voice profiles in storage, under the storage-down policy of ``resilient``."""

    def __init__(self, resilient: ResilientStorage) -> None:
        self.resilient = resilient
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, user_id: int) -> asyncio.Lock:
        """One lock per speaker: their notes update the profile one at a time (read, predict, write)."""
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock

    async def saved(self, user_id: int) -> dict:
        """The stored voice profile record ({} when none, or storage is down). A profile of another feature
        set is not used (``VoiceProfile`` and ``Model.voice_offset`` check) and starts again."""
        saved = await self.resilient.stored(
            "reading a voice profile", lambda: self.resilient.storage.get_profile(user_id), write=False
        )
        return saved or {}

    async def calibrate(self, user_id: int, *, notes: int, reset: bool) -> VoiceProfile:
        """``/emotion calibrate``: the next ``notes`` notes of ``user_id`` (within ``ENROL_MINUTES``) become
        neutral references; ``reset`` first drops the references kept so far. Returns the profile as it is.
        Storage errors are raised: the command says storage is down."""
        storage = self.resilient.storage
        async with self.lock(user_id):
            profile = VoiceProfile.from_dict(await storage.get_profile(user_id) or {})
            if reset:
                profile.clear_references()
            until = now() + ENROL_MINUTES * 60
            record = profile.to_dict() | ({"enrol": {"left": notes, "until": until}} if notes else {})
            await storage.save_profile(user_id, record)
            return profile

    async def add_reference(
        self, user_id: int, profile: VoiceProfile, enrol: dict, features: np.ndarray, started: float
    ) -> int | None:
        """Fold one neutral reference note's ``features`` into ``profile`` and store it, one less pending in
        ``enrol``: how many references are still wanted, or None if it was not stored (storage down, or the
        speaker forgotten since ``started``): a reference that is not kept must be sent again."""
        profile.add_reference(features)
        left = int(enrol["left"]) - 1
        record = profile.to_dict() | ({"enrol": {**enrol, "left": left}} if left > 0 else {})
        if not await self._save("saving a reference note", user_id, record, started, down=False):
            return None
        return left

    async def add_note(
        self,
        user_id: int,
        saved: dict,
        profile: VoiceProfile,
        features: np.ndarray,
        cold: np.ndarray,
        labels: Sequence[str],
        started: float,
    ) -> bool:
        """Fold a judged note into ``profile`` (its pending enrolment in ``saved`` kept) and store it; False
        if the speaker was forgotten since ``started``. Storage down counts as kept: the result is still
        answered (and held)."""
        profile.add_note(features, cold, labels)
        record = profile.to_dict() | ({"enrol": saved["enrol"]} if "enrol" in saved else {})
        return await self._save("saving a voice profile", user_id, record, started, down=True)

    async def _save(self, what: str, user_id: int, record: dict, started: float, *, down: bool) -> bool:
        """Store ``record`` as ``user_id``'s voice profile unless they were forgotten since ``started``
        (False); ``down`` is the answer while storage is down."""
        storage = self.resilient.storage
        return await self.resilient.stored(
            what, lambda: storage.save_profile(user_id, record, since=started), write=True, default=down
        )


def enrolment(saved: dict, at: float) -> dict | None:
    """The pending enrolment of a stored profile record (``{"left", "until"}``), or None if none is due."""
    enrol = saved.get("enrol")
    try:
        if enrol and int(enrol["left"]) > 0 and float(enrol["until"]) >= at:
            return {"left": int(enrol["left"]), "until": float(enrol["until"])}
    except (KeyError, TypeError, ValueError):
        pass
    return None
