"""A bounded executor: CPU work (decoding, features, inference, charts) off the event loop, with admission
control. At most ``workers`` jobs run and at most ``max_pending`` are admitted at once; past that,
``submit`` raises ``Busy`` at once instead of growing an unbounded backlog."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Busy(Exception):
    """Every slot is taken; the user should try again shortly."""


class Closed(Exception):
    """The worker is shutting down and takes no new jobs."""


class Worker:
    def __init__(self, *, workers: int = 2, max_pending: int = 32) -> None:
        self.workers = workers
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ser-worker")
        self._in_flight: set[asyncio.Future] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.closed = False

    @property
    def pending(self) -> int:
        return len(self._in_flight)

    def reserve(self) -> _Slot:
        """Take a slot now (before a download, say) or raise ``Busy``/``Closed``; use as ``async with``."""
        if self.closed:
            raise Closed
        if len(self._in_flight) >= self.max_pending:
            raise Busy
        return _Slot(self)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in the thread pool (the caller must hold a slot from ``reserve``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``reserve`` + ``run`` in one step."""
        async with self.reserve():
            return await self.run(fn, *args, **kwargs)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop admitting work, let in-flight jobs finish for up to ``timeout`` s, then cancel the rest."""
        self.closed = True
        if self._in_flight:
            log.info("waiting for %d in-flight job(s) to finish", len(self._in_flight))
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except asyncio.TimeoutError:
                log.warning("cancelling %d job(s) still running after %.0f s", len(self._in_flight), timeout)
                for task in list(self._in_flight):
                    task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class _Slot:
    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._token: asyncio.Future = asyncio.get_running_loop().create_future()
        task = asyncio.current_task()
        # Track the owning task so close() can cancel it; fall back to the token itself.
        self._tracked = task if task is not None else self._token
        worker._in_flight.add(self._tracked)
        worker._idle.clear()

    async def __aenter__(self) -> _Slot:
        return self

    async def __aexit__(self, *exc) -> None:
        w = self._worker
        w._in_flight.discard(self._tracked)
        if not w._in_flight:
            w._idle.set()
