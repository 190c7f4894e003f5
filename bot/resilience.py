"""The storage-down policy: a failing storage call is logged once per outage and answered with a default,
the last answers read stand in for reads meanwhile, and results answered during the outage wait in memory
until a write works again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

from .storage import STORAGE_ERRORS, Detection, Storage

log = logging.getLogger(__name__)

STORAGE_DOWN_TEXT = (
    "My storage is unavailable right now, so I cannot show stored results (the error was logged). "
    "Analysing voice notes still works; new results wait in memory and are saved when it is back."
)
#: Results answered while storage was down, held in memory until a write works again (the oldest go first
#: past this many; a restart before then loses them).
MAX_UNSAVED = 1000
#: Seconds between attempts to save them (doubling up to the last).
RESAVE_EVERY_S = (2.0, 5.0, 15.0, 30.0, 60.0)
#: ``save_result``'s answer for a result held in memory (storage down), apart from None (forgotten).
HELD = object()


class ResilientStorage:
    """Storage calls that survive an outage; ``storage`` is the storage itself, for calls that should fail."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        #: False from the first failed storage call until a write succeeds again; logged once per outage.
        self.storage_ok = True
        #: Results answered but not stored (storage down): (result, when its analysis began), oldest first.
        self.unsaved: collections.deque[tuple[Detection, float]] = collections.deque(maxlen=MAX_UNSAVED)
        #: Answers last read here that differ from the usual one, to fall back on while storage is down.
        self._last_read: dict[tuple, object] = {}
        self._resaver: asyncio.Task | None = None

    async def stored(self, what: str, call: Callable[[], Awaitable], *, write: bool, default=None):
        """Run one storage call; on a database error return ``default`` instead of raising.

        An outage is logged once (with the traceback), not once per note; the first successful write after it
        logs the recovery. Analyses go on without storage: results are answered, just not saved.
        """
        try:
            result = await call()
        except STORAGE_ERRORS as exc:
            if self.storage_ok:
                self.storage_ok = False
                log.error(
                    "storage failed (%s): analyses continue; results wait in memory until it works again",
                    what,
                    exc_info=exc,
                )
            else:
                log.debug("storage still failing (%s): %r", what, exc)
            return default
        if write and not self.storage_ok:
            self.storage_ok = True
            log.warning("storage works again (%s)", what)
        return result

    async def remembered(self, what: str, call: Callable[[], Awaitable], key: tuple, usual):
        """``stored(call)``, falling back while storage is down on the last answer read for ``key`` in this
        process, else ``usual``. Only answers other than ``usual`` are kept, so the memory stays small."""
        value = await self.stored(what, call, write=False, default=self._last_read.get(key, usual))
        if value == usual:
            self._last_read.pop(key, None)
        else:
            self._last_read[key] = value
        return value

    async def save_result(self, detection: Detection, *, since: float):
        """Store a result: its row id, None if its speaker was forgotten since ``since``, or ``HELD`` when
        storage is down (kept in memory and saved, with back-off, when it works again)."""
        row_id = await self.stored(
            "saving a result",
            lambda: self.storage.add_detection(detection, since=since),
            write=True,
            default=HELD,
        )
        if row_id is HELD:
            self.unsaved.append((detection, since))
            if self._resaver is None or self._resaver.done():
                self._resaver = asyncio.create_task(self._resave(), name="ser-resave")
        return row_id

    async def close(self) -> None:
        """Stop retrying in the background and try once more to save the results held in memory."""
        if self._resaver is not None:
            self._resaver.cancel()
        if self.unsaved:
            await self._save_unsaved()
            if self.unsaved:
                log.error(
                    "%d answered result(s) could not be saved before shutdown and are lost", len(self.unsaved)
                )

    async def _save_unsaved(self) -> None:
        """Store the results held in memory, oldest first, until one fails (storage still down)."""
        while self.unsaved:
            detection, started = self.unsaved[0]
            try:
                await self.storage.add_detection(detection, since=started)  # None: forgotten meanwhile
            except STORAGE_ERRORS as exc:
                log.debug("storage still failing (saving held results): %r", exc)
                return
            self.unsaved.popleft()
        if not self.storage_ok:
            self.storage_ok = True
            log.warning("storage works again (saving held results)")

    async def _resave(self) -> None:
        """Retry ``_save_unsaved`` with back-off until nothing is held (``RESAVE_EVERY_S``)."""
        step = 0
        while self.unsaved:
            await asyncio.sleep(RESAVE_EVERY_S[min(step, len(RESAVE_EVERY_S) - 1)])
            step += 1
            before = len(self.unsaved)
            await self._save_unsaved()
            if len(self.unsaved) < before:
                log.info(
                    "saved %d result(s) held in memory while storage was down", before - len(self.unsaved)
                )
