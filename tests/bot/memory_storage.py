"""An in-memory storage for the tests of the services (``Analyses``, ``ResilientStorage``, ``Profiles``)."""

from __future__ import annotations

import dataclasses
import sqlite3

from bot.storage import Detection


class MemoryStorage:
    """The storage calls the analysis path makes, in memory. ``down``: every call fails as a locked, full or
    gone database does; ``forgotten``: people whose ``/emotion forget`` wins over any write (``since``)."""

    def __init__(self) -> None:
        self.rows: dict[int, Detection] = {}
        self.profiles: dict[int, dict] = {}
        self.modes: dict[int, str] = {}
        self.out: set[int] = set()
        self.forgotten: set[int] = set()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise sqlite3.OperationalError("database is locked")

    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        self._check()
        if d.user_id in self.forgotten:
            return None
        row_id = len(self.rows) + 1
        self.rows[row_id] = dataclasses.replace(d, id=row_id)
        return row_id

    async def replace_result(self, row_id: int, d: Detection) -> bool:
        self._check()
        self.rows[row_id] = d
        return True

    async def get_profile(self, user_id: int) -> dict | None:
        self._check()
        return self.profiles.get(user_id)

    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        self._check()
        if user_id in self.forgotten:
            return False
        self.profiles[user_id] = profile
        return True

    async def opted_out(self, user_id: int) -> bool:
        self._check()
        return user_id in self.out

    async def mode(self, channel_id: int, guild_id: int | None) -> str:
        self._check()
        return self.modes.get(channel_id, "auto")
