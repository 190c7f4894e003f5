"""The PostgreSQL driver (asyncpg), for several shard processes on one or more machines.

Why asyncpg: a maintained async driver with prepared statements and binary protocol, the one RoboDanny runs
on, and ``LISTEN/NOTIFY`` and advisory locks are plain SQL through it. An ORM would add a second schema
language for ten tables; the migrations are SQL, one list per driver, run once each in a transaction.

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
from collections.abc import Collection
from pathlib import Path

import asyncpg

from .. import feedback
from .base import (
    DEFAULT_MODE,
    MODES,
    NEW_DETECTION_COLUMNS,
    Detection,
    KeptClip,
    ModelPointer,
    Storage,
    TranscriptSettings,
    check_feedback,
    check_mode,
    check_transcripts,
    content_digest,
    detection_from_row,
    detection_values,
    now,
    profile_from_json,
    valid_id,
)

log = logging.getLogger(__name__)

#: ``MIGRATIONS[i]`` upgrades version ``i`` to ``i + 1``. 1–4 and 6–8 are SQLite's 1–7 in PostgreSQL's types
#: (snowflakes are BIGINT); 5 holds what only several processes need.
MIGRATIONS: tuple[str, ...] = (
    # 0 → 1
    """
    CREATE TABLE detections (
        id BIGSERIAL PRIMARY KEY,
        guild_id BIGINT,
        channel_id BIGINT,
        user_id BIGINT NOT NULL,
        message_id BIGINT,
        created_at DOUBLE PRECISION NOT NULL,
        label TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        probabilities TEXT NOT NULL,
        duration_s DOUBLE PRECISION NOT NULL,
        model_version TEXT NOT NULL
    );
    CREATE TABLE channel_settings (
        channel_id BIGINT PRIMARY KEY,
        guild_id BIGINT,
        listen INTEGER NOT NULL DEFAULT 1
    );
    """,
    # 1 → 2
    """
    CREATE INDEX detections_guild_user_time ON detections (guild_id, user_id, created_at);
    CREATE INDEX detections_user ON detections (user_id);
    """,
    # 2 → 3: feedback on results, consented clips, voice profiles
    """
    ALTER TABLE detections ADD COLUMN feedback TEXT;
    ALTER TABLE detections ADD COLUMN true_label TEXT;
    ALTER TABLE detections ADD COLUMN clip_path TEXT;
    CREATE TABLE speaker_profiles (
        user_id BIGINT PRIMARY KEY,
        profile TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 3 → 4: modes per channel and server, personal opt-outs
    """
    ALTER TABLE channel_settings ADD COLUMN mode TEXT;
    UPDATE channel_settings SET mode = CASE WHEN listen = 0 THEN 'off' ELSE 'auto' END;
    CREATE TABLE guild_settings (
        guild_id BIGINT PRIMARY KEY,
        mode TEXT NOT NULL
    );
    CREATE TABLE optouts (
        user_id BIGINT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 4 → 5: shared between processes: kept clips, model files and the live pointer, the retraining run
    """
    CREATE TABLE clips (
        detection_id BIGINT PRIMARY KEY REFERENCES detections (id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL,
        ext TEXT NOT NULL,
        data BYTEA NOT NULL
    );
    CREATE TABLE models (
        version TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        data BYTEA NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE model_pointer (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        current TEXT,
        previous TEXT,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE retrain_status (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        status TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 5 → 6: only members with this role are analysed automatically (NULL: everyone); SQLite's 4 → 5
    """
    ALTER TABLE guild_settings ADD COLUMN auto_role_id BIGINT;
    """,
    # 6 → 7: forget marks, the bot's own state, results by channel; SQLite's 5 → 6
    """
    CREATE TABLE forgotten (
        user_id BIGINT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE INDEX detections_guild_channel ON detections (guild_id, channel_id);
    """,
    # 7 → 8: automatic transcripts per channel and server, the server's language; SQLite's 6 → 7
    """
    ALTER TABLE channel_settings ADD COLUMN transcripts INTEGER;
    ALTER TABLE guild_settings ADD COLUMN transcripts INTEGER;
    ALTER TABLE guild_settings ADD COLUMN language TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
#: Advisory lock keys (a fixed pair of 32-bit ints: "SER" and what is locked).
MIGRATE_LOCK = (0x534552, 1)
RETRAIN_LOCK = (0x534552, 2)
#: Per-user transaction lock (with the user id folded to 32 bits): a store and a forget of one person take
#: turns, so a result stored while ``forget_user`` runs cannot slip past its DELETE.
USER_LOCK = 0x534553
CHANNEL = "ser_model"
#: A model reference meaning "the model this process starts with" (shipped, or SER_MODEL_PATH).
BASE = "base"


class PostgresStorage(Storage):
    """A connection pool for queries, one connection for ``LISTEN``, one held while retraining."""

    shared = True

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
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, url)

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

    # one helper per asyncpg call kind, so round trips are counted in one place
    async def _fetch(self, sql: str, *args) -> list:
        self.round_trips += 1
        return await self._pool.fetch(sql, *args)

    async def _fetchrow(self, sql: str, *args):
        self.round_trips += 1
        return await self._pool.fetchrow(sql, *args)

    async def _fetchval(self, sql: str, *args):
        self.round_trips += 1
        return await self._pool.fetchval(sql, *args)

    async def _execute(self, sql: str, *args) -> int:
        """Run ``sql``; the number of rows it touched."""
        self.round_trips += 1
        status = await self._pool.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    # ------------------------------------------------------------------ results
    async def _unless_forgotten(self, user_id: int, since: float | None, sql: str, *args):
        """``fetchval(sql, *args)`` unless ``user_id`` was forgotten at or after ``since`` (None then). With
        ``since``, under the user's transaction lock, which ``forget_user`` takes too: READ COMMITTED gives each
        statement a fresh snapshot, so the check sees a forget that committed while this waited."""
        self.round_trips += 1
        if since is None:
            return await self._pool.fetchval(sql, *args)
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", USER_LOCK, _fold(user_id))
            if await conn.fetchval("SELECT 1 FROM forgotten WHERE user_id = $1 AND at >= $2", user_id, since):
                return None
            return await conn.fetchval(sql, *args)

    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        row_id = await self._unless_forgotten(
            d.user_id,
            since,
            f"INSERT INTO detections ({', '.join(NEW_DETECTION_COLUMNS)})"
            f" VALUES ({', '.join(f'${i + 1}' for i in range(len(NEW_DETECTION_COLUMNS)))}) RETURNING id",
            *detection_values(d),
        )
        return None if row_id is None else int(row_id)

    async def get(self, detection_id: int) -> Detection | None:
        if not valid_id(detection_id):
            return None
        rows = await self._select("SELECT * FROM detections WHERE id = $1", detection_id)
        return rows[0] if rows else None

    async def replace_result(self, detection_id: int, d: Detection) -> bool:
        return (
            await self._execute(
                "UPDATE detections SET label = $1, confidence = $2, probabilities = $3, model_version = $4,"
                " feedback = NULL WHERE id = $5",
                d.label,
                d.confidence,
                json.dumps(d.probabilities, sort_keys=True),
                d.model_version,
                detection_id,
            )
            == 1
        )

    async def set_feedback(self, detection_id: int, *, user_id: int, feedback: str, true_label: str) -> bool:
        check_feedback(feedback)
        return (
            await self._execute(
                "UPDATE detections SET feedback = $1, true_label = $2 WHERE id = $3 AND user_id = $4",
                feedback,
                true_label,
                detection_id,
                user_id,
            )
            == 1
        )

    async def history(
        self,
        guild_id: int | None,
        *,
        user_id: int | None = None,
        limit: int = 10,
        channels: Collection[int] | None = None,
        own: int | None = None,
    ) -> list[Detection]:
        where, args = _scope(guild_id, user_id, channels, own)
        return await self._select(
            f"SELECT * FROM detections WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ${len(args) + 1}",
            *args,
            limit,
        )

    async def since(
        self,
        guild_id: int | None,
        since: float,
        *,
        user_id: int | None = None,
        channels: Collection[int] | None = None,
        own: int | None = None,
    ) -> list[Detection]:
        where, args = _scope(guild_id, user_id, channels, own)
        return await self._select(
            f"SELECT * FROM detections WHERE {where} AND created_at >= ${len(args) + 1} ORDER BY created_at, id",
            *args,
            since,
        )

    async def channels(self, guild_id: int) -> list[int]:
        rows = await self._fetch(
            "SELECT DISTINCT channel_id FROM detections WHERE guild_id = $1 AND channel_id IS NOT NULL",
            guild_id,
        )
        return [int(r[0]) for r in rows]

    async def count(self, *, user_id: int | None = None) -> int:
        if user_id is None:
            return int(await self._fetchval("SELECT COUNT(*) FROM detections"))
        return int(await self._fetchval("SELECT COUNT(*) FROM detections WHERE user_id = $1", user_id))

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        self.round_trips += 1
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", USER_LOCK, _fold(user_id))
            await conn.execute(
                "INSERT INTO forgotten (user_id, at) VALUES ($1, $2)"
                " ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
                user_id,
                now(),
            )
            clips = await conn.fetchval("SELECT COUNT(*) FROM clips WHERE user_id = $1", user_id)
            status = await conn.execute("DELETE FROM detections WHERE user_id = $1", user_id)  # clips cascade
            await conn.execute("DELETE FROM speaker_profiles WHERE user_id = $1", user_id)
        return int(status.rsplit(" ", 1)[-1]), int(clips)

    async def _select(self, sql: str, *args) -> list[Detection]:
        return [detection_from_row(r) for r in await self._fetch(sql, *args)]

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
        sql = (
            "SELECT d.id, d.user_id, d.clip_path, d.true_label, d.guild_id FROM detections d"
            " JOIN clips c ON c.detection_id = d.id WHERE d.true_label IS NOT NULL"
        )
        rows = await (
            self._fetch(sql + " AND d.user_id = $1 ORDER BY d.id", user_id)
            if user_id is not None
            else self._fetch(sql + " ORDER BY d.id")
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
    async def get_profile(self, user_id: int) -> dict | None:
        return profile_from_json(
            await self._fetchval("SELECT profile FROM speaker_profiles WHERE user_id = $1", user_id)
        )

    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        stored = await self._unless_forgotten(
            user_id,
            since,
            "INSERT INTO speaker_profiles (user_id, profile, updated_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at"
            " RETURNING 1",
            user_id,
            json.dumps(profile),
            now(),
        )
        return stored is not None

    # ------------------------------------------------------------------ modes and opt-outs
    async def set_channel_mode(self, channel_id: int, guild_id: int | None, mode: str | None) -> None:
        check_mode(mode, inherit=True)
        await self._execute(
            "INSERT INTO channel_settings (channel_id, guild_id, mode) VALUES ($1, $2, $3)"
            " ON CONFLICT (channel_id) DO UPDATE SET mode = excluded.mode",
            channel_id,
            guild_id,
            mode,
        )

    async def set_guild_mode(self, guild_id: int, mode: str) -> None:
        check_mode(mode)
        await self._execute(
            "INSERT INTO guild_settings (guild_id, mode) VALUES ($1, $2)"
            " ON CONFLICT (guild_id) DO UPDATE SET mode = excluded.mode",
            guild_id,
            mode,
        )

    async def modes(self, channel_id: int, guild_id: int | None) -> tuple[str | None, str]:
        row = await self._fetchrow(  # one round trip for both
            "SELECT (SELECT mode FROM channel_settings WHERE channel_id = $1),"
            " (SELECT mode FROM guild_settings WHERE guild_id = $2)",
            channel_id,
            guild_id,
        )
        own = row[0] if row[0] in MODES else None
        return own, (row[1] if row[1] in MODES else DEFAULT_MODE)

    async def set_auto_role(self, guild_id: int, role_id: int | None) -> None:
        await self._execute(
            "INSERT INTO guild_settings (guild_id, mode, auto_role_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (guild_id) DO UPDATE SET auto_role_id = excluded.auto_role_id",
            guild_id,
            DEFAULT_MODE,
            role_id,
        )

    async def auto_role(self, guild_id: int) -> int | None:
        return await self._fetchval("SELECT auto_role_id FROM guild_settings WHERE guild_id = $1", guild_id)

    async def set_auto_transcripts(self, channel_id: int | None, guild_id: int, on: bool | None) -> None:
        value = None if on is None else int(bool(on))
        if channel_id is None:
            check_transcripts(on)
            await self._execute(
                "INSERT INTO guild_settings (guild_id, mode, transcripts) VALUES ($1, $2, $3)"
                " ON CONFLICT (guild_id) DO UPDATE SET transcripts = excluded.transcripts",
                guild_id,
                DEFAULT_MODE,
                value,
            )
        else:
            await self._execute(
                "INSERT INTO channel_settings (channel_id, guild_id, transcripts) VALUES ($1, $2, $3)"
                " ON CONFLICT (channel_id) DO UPDATE SET transcripts = excluded.transcripts",
                channel_id,
                guild_id,
                value,
            )

    async def set_transcript_language(self, guild_id: int, language: str | None) -> None:
        await self._execute(
            "INSERT INTO guild_settings (guild_id, mode, language) VALUES ($1, $2, $3)"
            " ON CONFLICT (guild_id) DO UPDATE SET language = excluded.language",
            guild_id,
            DEFAULT_MODE,
            language,
        )

    async def transcript_settings(self, channel_id: int, guild_id: int) -> TranscriptSettings:
        row = await self._fetchrow(  # one round trip for all three
            "SELECT (SELECT transcripts FROM channel_settings WHERE channel_id = $1),"
            " (SELECT transcripts FROM guild_settings WHERE guild_id = $2),"
            " (SELECT language FROM guild_settings WHERE guild_id = $2)",
            channel_id,
            guild_id,
        )
        own, server, language = row[0], row[1], row[2]
        return TranscriptSettings(None if own is None else bool(own), bool(server), language)

    async def set_opted_out(self, user_id: int, out: bool) -> bool:
        if out:
            return (
                await self._execute(
                    "INSERT INTO optouts (user_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    user_id,
                    now(),
                )
                == 1
            )
        return await self._execute("DELETE FROM optouts WHERE user_id = $1", user_id) == 1

    async def opted_out(self, user_id: int) -> bool:
        return await self._fetchval("SELECT 1 FROM optouts WHERE user_id = $1", user_id) is not None

    # ------------------------------------------------------------------ the bot's own state
    async def get_state(self, key: str) -> str | None:
        return await self._fetchval("SELECT value FROM bot_state WHERE key = $1", key)

    async def set_state(self, key: str, value: str) -> None:
        await self._execute(
            "INSERT INTO bot_state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key,
            value,
        )

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


def _scope(
    guild_id: int | None, user_id: int | None, channels: Collection[int] | None, own: int | None
) -> tuple[str, list]:
    """The WHERE clause (``$1``...) and its arguments of ``history``/``since``'s rows (SQLite's ``_scope``)."""
    sql, args = "guild_id IS NOT DISTINCT FROM $1", [guild_id]
    if user_id is not None:
        args.append(user_id)
        sql += f" AND user_id = ${len(args)}"
    if channels is not None:
        args.append(sorted({int(c) for c in channels}))
        visible = f"channel_id = ANY(${len(args)}::bigint[])"
        if own is not None:
            args.append(own)
            visible = f"({visible} OR user_id = ${len(args)})"
        sql += f" AND {visible}"
    return sql, args


def _safe(version: str) -> str:
    if not version.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"bad model version {version!r}")
    return version


async def _version(conn: asyncpg.Connection) -> int:
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``, one transaction per step; processes starting together take
    turns (an advisory lock), so each step runs once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *MIGRATE_LOCK)
        version = await _version(conn)
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {version}, newer than this bot ({SCHEMA_VERSION}); "
                "upgrade the bot"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            async with conn.transaction():  # a savepoint per step
                await conn.execute(MIGRATIONS[target - 1])
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", target)
    return SCHEMA_VERSION
