"""The PostgreSQL driver (asyncpg), for several shard processes on one or more machines.

Why asyncpg: a maintained async driver with prepared statements and binary protocol, the one RoboDanny runs
on, and ``LISTEN/NOTIFY`` and advisory locks are plain SQL through it. An ORM would add a second schema
language for ten tables; the migrations are SQL files both drivers share (``sql.migrations``), run once
each in a transaction.

What several processes share here, beyond the rows SQLite keeps: the model files themselves (``models``,
``bytea``: a model is 0.15–5 MB, written once per retrain) and the pointer to the live one (one row); kept
clips (``clips``), so whichever process retrains sees them; the one retraining run (an advisory lock, held on
one connection for the run, released by PostgreSQL if the process dies) and its progress (one row).
A change of the live model is announced with ``NOTIFY ser_model``; a process that was disconnected re-reads
the pointer when it reconnects, because PostgreSQL does not replay notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import asyncpg

from .. import feedback
from . import sql
from .base import NEVER, Detection, KeptClip, ModelPointer, content_digest, detection_values, now

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = sql.migrations("postgres")
SCHEMA_VERSION = sql.SCHEMA_VERSION
#: Before the one numbering (issue 22) PostgreSQL counted its own steps: its 5 made the shared tables (now
#: step 8) and its 6, 7, 8 were today's 5, 6, 7. A database at one of these versions that has the shared
#: tables was counted so; it is at the version below (8 makes the shared tables only where they are missing).
#: Its old 8 holds every step, as today's 8 does.
LEGACY_VERSIONS = range(5, 8)
#: Advisory lock keys (a fixed pair of 32-bit ints: "SER" and what is locked).
MIGRATE_LOCK = (0x534552, 1)
RETRAIN_LOCK = (0x534552, 2)
#: Per-user transaction lock (with the user id folded to 32 bits): a store and a forget of one person take
#: turns, so a result stored while ``forget_user`` runs cannot slip past its DELETE.
USER_LOCK = 0x534553
CHANNEL = "ser_model"
#: A model reference meaning "the model this process starts with" (shipped, or SER_MODEL_PATH).
BASE = "base"


class PostgresStorage(sql.SqlStorage):
    """A connection pool for queries, one connection for ``LISTEN``, one held while retraining."""

    shared = True
    SAME = "IS NOT DISTINCT FROM"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url
        self._lock_conn: asyncpg.Connection | None = None
        self._watcher: asyncio.Task | None = None
        self._cache = Path(tempfile.gettempdir()) / "ser-bot-models"
        #: Round trips to the server since opening (the capacity estimate counts them per note).
        self.round_trips = 0

    @classmethod
    async def open(cls, url: str) -> PostgresStorage:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=6, command_timeout=15, timeout=10)

        async def prepare() -> None:
            async with pool.acquire() as conn:
                await migrate(conn)

        return cls(await sql.prepared(pool, prepare), url)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
        await self.unlock_retrain()
        await self._pool.close()

    async def schema_version(self) -> int:
        async with self._pool.acquire() as conn:
            return await _version(conn)

    def _acquire(self):
        """A pooled connection, for the few calls that need a transaction."""
        return self._pool.acquire()

    # one helper per asyncpg call kind, so round trips are counted in one place; ``?`` become ``$n``
    async def _fetch(self, query: str, *args) -> list:
        self.round_trips += 1
        return await self._pool.fetch(sql.numbered(query), *args)

    async def _fetchrow(self, query: str, *args):
        self.round_trips += 1
        return await self._pool.fetchrow(sql.numbered(query), *args)

    async def _fetchval(self, query: str, *args):
        self.round_trips += 1
        return await self._pool.fetchval(sql.numbered(query), *args)

    async def _execute(self, query: str, *args) -> int:
        self.round_trips += 1
        return _touched(await self._pool.execute(sql.numbered(query), *args))

    def _among(self, column: str, ids: list[int]) -> tuple[str, list]:
        return f"{column} = ANY(?::bigint[])", [ids]

    # ------------------------------------------------------------------ results
    async def _unless_forgotten(self, query: str, *values, user_id: int, since: float | None):
        """``fetchval`` of ``query`` (ending in ``UNLESS_FORGOTTEN``) with ``values``; None when it was held
        back. With ``since``, under the user's transaction lock, which ``forget_user`` takes too: READ
        COMMITTED gives each statement a fresh snapshot, so the check sees a forget that committed while this
        waited."""
        self.round_trips += 1
        args = (*values, user_id, NEVER if since is None else since)
        if since is None:
            return await self._pool.fetchval(sql.numbered(query), *args)
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", USER_LOCK, _fold(user_id))
            return await conn.fetchval(sql.numbered(query), *args)

    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        row_id = await self._unless_forgotten(
            f"{sql.ADD_DETECTION} RETURNING id", *detection_values(d), user_id=d.user_id, since=since
        )
        return None if row_id is None else int(row_id)

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        mark, results, profile = (sql.numbered(query) for query in sql.FORGET)
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", USER_LOCK, _fold(user_id))
            await conn.execute(mark, user_id, now())
            clips = await conn.fetchval("SELECT COUNT(*) FROM clips WHERE user_id = $1", user_id)
            deleted = _touched(await conn.execute(results, user_id))  # their clips cascade
            await conn.execute(profile, user_id)
        return deleted, int(clips)

    # ------------------------------------------------------------------ kept clips (rows)
    async def keep_clip(self, detection_id: int, *, user_id: int, data: bytes) -> str | None:
        ref = f"db:{int(detection_id)}"
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            touched = await conn.execute(
                "UPDATE detections SET clip_path = $1 WHERE id = $2 AND user_id = $3",
                ref,
                detection_id,
                user_id,
            )
            if touched != "UPDATE 1":
                return None
            await conn.execute(
                "INSERT INTO clips (detection_id, user_id, ext, data) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (detection_id) DO UPDATE SET data = excluded.data, ext = excluded.ext",
                detection_id,
                user_id,
                feedback.extension_for(data),
                data,
            )
        return ref

    async def drop_clip(self, detection_id: int, *, user_id: int) -> bool:
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE detections SET clip_path = NULL WHERE id = $1 AND user_id = $2", detection_id, user_id
            )
            status = await conn.execute(
                "DELETE FROM clips WHERE detection_id = $1 AND user_id = $2", detection_id, user_id
            )
        return status == "DELETE 1"

    async def kept_clips(self, *, user_id: int | None = None) -> list[KeptClip]:
        query = (
            "SELECT d.id, d.user_id, d.clip_path, d.true_label, d.guild_id FROM detections d"
            " JOIN clips c ON c.detection_id = d.id WHERE d.true_label IS NOT NULL"
        )
        rows = await (
            self._fetch(query + " AND d.user_id = $1 ORDER BY d.id", user_id)
            if user_id is not None
            else self._fetch(query + " ORDER BY d.id")
        )
        return [
            KeptClip(int(r[0]), int(r[1]), str(r[2]), str(r[3]), None if r[4] is None else int(r[4]))
            for r in rows
        ]

    async def kept_clip_digests(self, user_id: int) -> list[str]:
        rows = await self._fetch("SELECT data FROM clips WHERE user_id = $1", user_id)
        return [content_digest(bytes(r[0])) for r in rows]

    async def training_clips(self, folder: Path) -> list[dict]:
        rows = await self._fetch(
            "SELECT c.detection_id, c.user_id, c.ext, c.data, d.true_label, d.guild_id FROM clips c"
            " JOIN detections d ON d.id = c.detection_id WHERE d.true_label IS NOT NULL ORDER BY c.detection_id"
        )
        folder = Path(folder)

        def write() -> list[dict]:
            folder.mkdir(parents=True, exist_ok=True)
            out = []
            for r in rows:
                allowed = r["ext"] in feedback.EXTENSIONS.values()  # never a name from outside
                ext = r["ext"] if allowed else feedback.FALLBACK_EXTENSION
                path = folder / f"{int(r['detection_id'])}{ext}"
                path.write_bytes(r["data"])
                out.append(
                    {
                        "path": str(path),
                        "emotion": r["true_label"],
                        "speaker": str(r["user_id"]),
                        "guild": r["guild_id"],
                    }
                )
            return out

        return await asyncio.get_running_loop().run_in_executor(None, write)

    # ------------------------------------------------------------------ voice profiles
    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        stored = await self._unless_forgotten(
            f"{sql.SAVE_PROFILE} RETURNING 1",
            user_id,
            json.dumps(profile),
            now(),
            user_id=user_id,
            since=since,
        )
        return stored is not None

    # ------------------------------------------------------------------ the live model (rows)
    async def model_pointer(self) -> ModelPointer | None:
        row = await self._fetchrow("SELECT current, previous FROM model_pointer WHERE id = 1")
        return None if row is None else ModelPointer(row[0], row[1])

    async def publish_model(self, path: Path, version: str, *, previous: str | None) -> str:
        data = await asyncio.get_running_loop().run_in_executor(None, Path(path).read_bytes)
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO models (version, sha256, data, created_at) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (version) DO NOTHING",
                version,
                hashlib.sha256(data).hexdigest(),
                data,
                now(),
            )
            await _point(conn, version, previous)
        return version

    async def point_model(self, current: str | None, previous: str | None) -> None:
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            await _point(conn, current, previous)

    async def model_file(self, ref: str | None) -> Path | None:
        if ref is None or ref == BASE:
            return None
        sha = await self._fetchval("SELECT sha256 FROM models WHERE version = $1", ref)
        if sha is None:
            raise FileNotFoundError(f"model {ref} is not in the database")
        # Named by content: a cached file is never a different model that happened to share a version; and
        # read back against that content before use, since the cache sits in a temp folder others can write.
        path = self._cache / f"model-{_safe(ref)}-{sha[:16]}.npz"
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, _has_sha256, path, sha):
            data = await self._fetchval("SELECT data FROM models WHERE version = $1", ref)
            if hashlib.sha256(data).hexdigest() != sha:
                raise FileNotFoundError(f"model {ref} in the database does not match its sha256")

            def write() -> None:
                self._cache.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self._cache, prefix=".model-", suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)  # atomic: another process may be caching the same model

            await loop.run_in_executor(None, write)
        return path

    async def watch_models(self, changed) -> None:
        """Keep one ``LISTEN ser_model`` connection open; on every notification and after every reconnect,
        ``await changed()``."""
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(changed), name="ser-model-watch")

    async def _watch(self, changed) -> None:
        delay = 0.5
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                queue: asyncio.Queue[None] = asyncio.Queue()
                await conn.add_listener(CHANNEL, lambda *_, queue=queue: queue.put_nowait(None))
                if not first:
                    log.info("model notifications: reconnected; re-reading the live model")
                    await changed()  # whatever was announced while disconnected
                first, delay = False, 0.5
                while not lost.is_set():
                    getter = asyncio.ensure_future(queue.get())
                    waiter = asyncio.ensure_future(lost.wait())
                    done, pending = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    for task in pending:
                        task.cancel()
                    if getter in done:
                        await changed()
                log.warning("model notifications: connection lost; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a server restarting or unreachable: retry with backoff
                log.warning("model notifications: %r; retrying in %.1f s", exc, delay)
                first = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)

    # ------------------------------------------------------------------ one retraining run at a time
    async def try_lock_retrain(self) -> bool:
        if self._lock_conn is not None:
            return False
        conn = await asyncpg.connect(self.url, timeout=10)
        if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *RETRAIN_LOCK):
            self._lock_conn = conn
            return True
        await conn.close()
        return False

    async def unlock_retrain(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close()  # closing releases the session's advisory lock

    async def set_retrain_status(self, status: dict | None) -> None:
        if status is None:
            await self._execute("DELETE FROM retrain_status")
            return
        await self._execute(
            "INSERT INTO retrain_status (id, status, updated_at) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
            json.dumps(status),
            now(),
        )

    async def retrain_status(self) -> dict | None:
        # Only while some session holds the lock: a process killed mid-run leaves its last row behind.
        row = await self._fetchrow(
            "SELECT s.status FROM retrain_status s WHERE EXISTS (SELECT 1 FROM pg_locks l"
            " WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.objid = $2 AND l.granted)",
            *RETRAIN_LOCK,
        )
        return None if row is None else json.loads(row[0])


async def _point(conn: asyncpg.Connection, current: str | None, previous: str | None) -> None:
    await conn.execute(
        "INSERT INTO model_pointer (id, current, previous, updated_at) VALUES (1, $1, $2, $3)"
        " ON CONFLICT (id) DO UPDATE SET current = excluded.current, previous = excluded.previous,"
        " updated_at = excluded.updated_at",
        current,
        previous,
        now(),
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, current or BASE)  # sent at commit


def _has_sha256(path: Path, sha: str) -> bool:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha
    except OSError:
        return False


def _fold(user_id: int) -> int:
    """A user id folded into the signed 32 bits an advisory lock key takes."""
    return (int(user_id) ^ (int(user_id) >> 32)) % 2**32 - 2**31


def _safe(version: str) -> str:
    if not version.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"bad model version {version!r}")
    return version


def _touched(status: str) -> int:
    """The number of rows a command status (``"UPDATE 3"``, ``"INSERT 0 1"``) says were touched."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _version(conn: asyncpg.Connection) -> int:
    await conn.execute(sql.VERSION_TABLE)
    return int(await conn.fetchval(sql.CURRENT_VERSION))


async def _legacy(conn: asyncpg.Connection, version: int) -> int:
    """``version`` in the one numbering (``LEGACY_VERSIONS``); the version rows are renumbered to match."""
    if version not in LEGACY_VERSIONS or not await conn.fetchval("SELECT to_regclass('clips') IS NOT NULL"):
        return version
    log.info(
        "schema version %d is PostgreSQL's own numbering; it is %d in the shared one", version, version - 1
    )
    await conn.execute("DELETE FROM schema_version WHERE version >= $1", version)
    return version - 1


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``, one transaction per step; processes starting together take
    turns (an advisory lock), so each step runs once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATE_LOCK)
        version = await _legacy(conn, await _version(conn))
        sql.check_version(version)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            async with conn.transaction():  # a savepoint per step
                await conn.execute(MIGRATIONS[target - 1])
                await conn.execute(sql.numbered(sql.ADD_VERSION), target)
    return SCHEMA_VERSION
