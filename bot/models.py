"""``ModelManager``: the one owner of "which model is live", for one process or for every shard process.

It loads the live model at start, installs a freshly trained candidate (load it first, then publish it, then
swap), rolls back, and adopts a model another process published. Where the files and the pointer live is the
storage driver's business (SQLite: files and ``current.json`` in ``SER_DATA_DIR/models``; PostgreSQL: rows,
announced with ``NOTIFY``). A swap is one reference assignment: an analysis holds the model it started with,
so a swap never mixes two models in one reply.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import ser_core
from ser_core import Model, ModelError, load_model

from .settings import Settings
from .storage import Storage

log = logging.getLogger(__name__)

#: The reference of "the model this process starts with" in shared storage (see ``storage.postgres.BASE``).
BASE = "base"


class ModelManager:
    """The live ``model`` and where it came from (``ref``, the storage's name for it)."""

    def __init__(self, storage: Storage, *, fixed: Path | None = None) -> None:
        self.storage = storage
        #: ``SER_MODEL_PATH``: this process serves that file whatever the pointer says.
        self.fixed = fixed
        self.model: Model | None = None
        self.ref: str | None = None
        self._lock = asyncio.Lock()

    @property
    def base_path(self) -> Path:
        return self.fixed or ser_core.default_model_path()  # looked up now: tests stand in a small model

    def _base_ref(self) -> str:
        # Shared storage names the start model symbolically: its file is on each machine, not in the database.
        return BASE if self.storage.shared else str(self.base_path.resolve())

    async def start(self, initial: Model | None = None) -> Model:
        """Load the live model: ``SER_MODEL_PATH`` if set, else the one the pointer names if it loads, else the
        shipped one. A pointer to a model that does not load is logged and skipped. ``ModelError`` (a setting
        error for the caller) only if the start model itself does not load. ``initial``: the start model,
        already loaded (it must be the file ``SER_MODEL_PATH`` names)."""
        if initial is not None and self.fixed is not None:
            self.model, self.ref = initial, self._base_ref()
            return initial
        if self.fixed is None:
            pointer = await self.storage.model_pointer()
            if pointer is not None and pointer.current not in (None, BASE):
                try:
                    return await self._swap(pointer.current, await self.storage.model_file(pointer.current))
                except Exception as exc:  # a damaged or missing file must not keep the bot from starting
                    log.error(
                        "the live model %s does not load (%s); using the start model", pointer.current, exc
                    )
        elif await self.storage.model_pointer() is not None:
            log.warning(
                "SER_MODEL_PATH is set, so the model from /emotion retrain or rollback is not used; "
                "unset SER_MODEL_PATH to serve it"
            )
        return await self._swap(self._base_ref(), None)

    async def _swap(self, ref: str | None, path: Path | None) -> Model:
        model = await asyncio.get_running_loop().run_in_executor(None, load_model, path or self.base_path)
        self.model, self.ref = model, ref
        log.info("now serving model %s (%s)", model.version, ref or "shipped")
        return model

    async def install(self, candidate: Path, version: str) -> Model:
        """Serve a trained candidate here and in every process: load it (``ModelError``: nothing changed),
        publish it with the current model as the one to roll back to, then swap."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(None, load_model, candidate)
            ref = await self.storage.publish_model(candidate, version, previous=self.ref)
            if self.storage.shared:  # the database holds it now; every process fetches it from there
                Path(candidate).unlink(missing_ok=True)
            self.model, self.ref = model, ref
            log.info("now serving model %s (%s), published", model.version, ref)
            return model

    async def rollback(self) -> Model:
        """Serve the previous model again, everywhere (the pointer then names the current one as previous).
        ``ModelError`` with a sentence for the user when there is nothing to roll back to."""
        async with self._lock:
            pointer = await self.storage.model_pointer()
            if pointer is None or pointer.previous is None:
                raise ModelError("there is no previous model to roll back to")
            path = await self.storage.model_file(pointer.previous)
            model = await asyncio.get_running_loop().run_in_executor(None, load_model, path or self.base_path)
            await self.storage.point_model(pointer.previous, self.ref)
            self.model, self.ref = model, pointer.previous
            log.info("rolled back to model %s (%s)", model.version, pointer.previous)
            return model

    async def refresh(self) -> bool:
        """Adopt the model the pointer names if it is not the one served here (another process retrained or
        rolled back). True if the model changed. Called on every notification and after reconnecting."""
        if self.fixed is not None:
            return False
        async with self._lock:
            pointer = await self.storage.model_pointer()
            target = (
                pointer.current if pointer is not None and pointer.current is not None else self._base_ref()
            )
            if target == self.ref:
                return False
            try:
                old = self.model.version if self.model else None
                await self._swap(target, await self.storage.model_file(target))
            except Exception:
                log.exception("could not adopt model %s; still serving %s", target, self.ref)
                return False
            log.info("adopted model %s published by another process (was %s)", self.model.version, old)
            return True

    async def watch(self) -> None:
        """Follow changes made by other processes (a no-op for single-process storage)."""
        await self.storage.watch_models(self.refresh)


async def load_live(settings: Settings) -> tuple[Model, str | None]:
    """(the model a bot started with ``settings`` would serve, its reference): for a look from outside."""
    storage = await Storage.open(settings.database_url or settings.db_path)
    try:
        manager = ModelManager(storage, fixed=settings.model_path)
        model = await manager.start()
        return model, manager.ref
    finally:
        await storage.close()
