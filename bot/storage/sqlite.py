"""The SQLite driver (aiosqlite, WAL), for one process: detections (with the user's feedback), modes,
opt-outs and per-user voice profiles (feature statistics, no audio). Audio is kept only as files the user
consented to, under ``SER_DATA_DIR/feedback/``; the database holds their relative path. The live model is
named by ``SER_DATA_DIR/models/current.json`` (``bot.modelstore``).

The schema is versioned: ``MIGRATIONS[i]`` upgrades version ``i`` to ``i + 1`` and runs once, in a
transaction, when the database is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Collection
from pathlib import Path

import aiosqlite

from .. import feedback
from ..modelstore import ModelStore
from .base import (
    DEFAULT_MODE,
    MODES,
    NEVER,
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

MIGRATIONS: tuple[str, ...] = (
    # 0 → 1
    """
    CREATE TABLE detections (
        id INTEGER PRIMARY KEY,
        guild_id INTEGER,
        channel_id INTEGER,
        user_id INTEGER NOT NULL,
        message_id INTEGER,
        created_at REAL NOT NULL,
        label TEXT NOT NULL,
        confidence REAL NOT NULL,
        probabilities TEXT NOT NULL,
        duration_s REAL NOT NULL,
        model_version TEXT NOT NULL
    );
    CREATE TABLE channel_settings (
        channel_id INTEGER PRIMARY KEY,
        guild_id INTEGER,
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
        user_id INTEGER PRIMARY KEY,
        profile TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 3 → 4: modes per channel (NULL: the server's default) and per server; personal opt-outs.
    # A channel someone had turned off stays off, one turned on stays automatic; ``listen`` is no longer read.
    """
    ALTER TABLE channel_settings ADD COLUMN mode TEXT;
    UPDATE channel_settings SET mode = CASE WHEN listen = 0 THEN 'off' ELSE 'auto' END;
    CREATE TABLE guild_settings (
        guild_id INTEGER PRIMARY KEY,
        mode TEXT NOT NULL
    );
    CREATE TABLE optouts (
        user_id INTEGER PRIMARY KEY,
        created_at REAL NOT NULL
    );
    """,
    # 4 → 5: only members with this role are analysed automatically (NULL: everyone)
    """
    ALTER TABLE guild_settings ADD COLUMN auto_role_id INTEGER;
    """,
    # 5 → 6: when each person last asked to be forgotten (a note in flight then is not stored); small state
    # of the bot's own (the end of the last retraining run); results by channel (history by visibility)
    """
    CREATE TABLE forgotten (
        user_id INTEGER PRIMARY KEY,
        at REAL NOT NULL
    );
    CREATE TABLE bot_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE INDEX detections_guild_channel ON detections (guild_id, channel_id);
    """,
    # 6 → 7: automatic transcripts per channel (NULL: the server's) and per server, the server's language.
    # Transcripts themselves are never stored.
    """
    ALTER TABLE channel_settings ADD COLUMN transcripts INTEGER;
    ALTER TABLE guild_settings ADD COLUMN transcripts INTEGER;
    ALTER TABLE guild_settings ADD COLUMN language TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SqliteStorage(Storage):
    """One aiosqlite connection; open with ``await Storage.open(path)``, close with ``await close()``. Kept
    clips and model files live in the database's folder (``SER_DATA_DIR``)."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self.data_dir = Path(path).parent
        self.models = ModelStore(self.data_dir)

    @classmethod
    async def open(cls, path: str | Path) -> SqliteStorage:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            # Readable by the bot's user only; SQLite gives its -wal and -shm files the database's mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
        db = await aiosqlite.connect(str(path))
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        return await _version(self._db)

    # ------------------------------------------------------------------ detections
    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        """Insert ``d``; return its row id (the feedback buttons carry it), or None when its user asked to be
        forgotten at or after ``since`` (the analysis began before that: nothing of it is kept)."""
        cur = await self._db.execute(
            f"INSERT INTO detections ({', '.join(NEW_DETECTION_COLUMNS)})"
            f" SELECT {', '.join('?' * len(NEW_DETECTION_COLUMNS))}"
            " WHERE NOT EXISTS (SELECT 1 FROM forgotten WHERE user_id = ? AND at >= ?)",
            (*detection_values(d), d.user_id, NEVER if since is None else since),
        )
        await self._db.commit()
        return int(cur.lastrowid) if cur.rowcount == 1 else None

    async def get(self, detection_id: int) -> Detection | None:
        if not valid_id(detection_id):
            return None
        rows = await self._select("SELECT * FROM detections WHERE id = ?", [detection_id])
        return rows[0] if rows else None

    async def replace_result(self, detection_id: int, d: Detection) -> bool:
        """A re-run's answer for row ``detection_id``: label, probabilities and model change; the verdict on the
        old answer is cleared (the true label and a kept clip stay). False if the row is gone."""
        cur = await self._db.execute(
            "UPDATE detections SET label = ?, confidence = ?, probabilities = ?, model_version = ?,"
            " feedback = NULL WHERE id = ?",
            (
                d.label,
                d.confidence,
                json.dumps(d.probabilities, sort_keys=True),
                d.model_version,
                detection_id,
            ),
        )
        await self._db.commit()
        return cur.rowcount == 1

    async def set_feedback(self, detection_id: int, *, user_id: int, feedback: str, true_label: str) -> bool:
        """Store the author's verdict on a result; False if the row is gone or not theirs."""
        check_feedback(feedback)
        cur = await self._db.execute(
            "UPDATE detections SET feedback = ?, true_label = ? WHERE id = ? AND user_id = ?",
            (feedback, true_label, detection_id, user_id),
        )
        await self._db.commit()
        return cur.rowcount == 1

    async def keep_clip(self, detection_id: int, *, user_id: int, data: bytes) -> str | None:
        loop = asyncio.get_running_loop()
        rel = feedback.clip_relpath(user_id, detection_id, feedback.extension_for(data))
        await loop.run_in_executor(None, feedback.write_clip, self.data_dir, rel, data)
        if not await self.set_clip(detection_id, user_id=user_id, path=rel):
            await loop.run_in_executor(None, feedback.delete_clip, self.data_dir, rel)  # forgotten meanwhile
            return None
        return rel

    async def drop_clip(self, detection_id: int, *, user_id: int) -> bool:
        row = await self.get(detection_id)
        if row is None or row.user_id != user_id or not row.clip_path:
            return False
        await asyncio.get_running_loop().run_in_executor(
            None, feedback.delete_clip, self.data_dir, row.clip_path
        )
        return await self.set_clip(detection_id, user_id=user_id, path=None)

    async def training_clips(self, folder: Path) -> list[dict]:
        out = []
        for c in await self.kept_clips():
            try:
                path = feedback.resolve_clip(self.data_dir, c.path)
            except ValueError:
                continue
            if path.is_file():
                out.append(
                    {"path": str(path), "emotion": c.label, "speaker": str(c.user_id), "guild": c.guild_id}
                )
        return out

    async def kept_clip_digests(self, user_id: int) -> list[str]:
        data_dir = self.data_dir

        def digests(clips: list[KeptClip]) -> list[str]:
            out = []
            for c in clips:
                with contextlib.suppress(ValueError, OSError):
                    out.append(content_digest(feedback.resolve_clip(data_dir, c.path).read_bytes()))
            return out

        clips = await self.kept_clips(user_id=user_id)
        return await asyncio.get_running_loop().run_in_executor(None, digests, clips)

    async def set_clip(self, detection_id: int, *, user_id: int, path: str | None) -> bool:
        cur = await self._db.execute(
            "UPDATE detections SET clip_path = ? WHERE id = ? AND user_id = ?", (path, detection_id, user_id)
        )
        await self._db.commit()
        return cur.rowcount == 1

    async def kept_clips(self, *, user_id: int | None = None) -> list[KeptClip]:
        """Consented clips with a known true label (all users, or one), oldest first."""
        sql = (
            "SELECT id, user_id, clip_path, true_label, guild_id FROM detections WHERE clip_path IS NOT NULL"
        )
        args: list = []
        if user_id is not None:
            sql += " AND user_id = ?"
            args.append(user_id)
        async with self._db.execute(sql + " ORDER BY id", args) as cur:
            rows = await cur.fetchall()
        return [
            KeptClip(int(r[0]), int(r[1]), str(r[2]), str(r[3]), None if r[4] is None else int(r[4]))
            for r in rows
            if r[3]
        ]

    # ------------------------------------------------------------------ voice profiles
    async def get_profile(self, user_id: int) -> dict | None:
        async with self._db.execute(
            "SELECT profile FROM speaker_profiles WHERE user_id = ?", (user_id,)
        ) as c:
            row = await c.fetchone()
        return profile_from_json(row[0] if row else None)

    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        cur = await self._db.execute(
            "INSERT INTO speaker_profiles (user_id, profile, updated_at) SELECT ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM forgotten WHERE user_id = ? AND at >= ?)"
            " ON CONFLICT(user_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
            (user_id, json.dumps(profile), now(), user_id, NEVER if since is None else since),
        )
        await self._db.commit()
        return cur.rowcount == 1

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
            f"SELECT * FROM detections WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            [*args, limit],
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
            f"SELECT * FROM detections WHERE {where} AND created_at >= ? ORDER BY created_at, id",
            [*args, since],
        )

    async def channels(self, guild_id: int) -> list[int]:
        async with self._db.execute(
            "SELECT DISTINCT channel_id FROM detections WHERE guild_id = ? AND channel_id IS NOT NULL",
            (guild_id,),
        ) as cur:
            return [int(r[0]) for r in await cur.fetchall()]

    async def count(self, *, user_id: int | None = None) -> int:
        if user_id is None:
            cur = await self._db.execute("SELECT COUNT(*) FROM detections")
        else:
            cur = await self._db.execute("SELECT COUNT(*) FROM detections WHERE user_id = ?", (user_id,))
        (n,) = await cur.fetchone()
        await cur.close()
        return int(n)

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        clips = await self.kept_clips(user_id=user_id)
        await self._db.execute(
            "INSERT INTO forgotten (user_id, at) VALUES (?, ?) ON CONFLICT(user_id) DO UPDATE SET at = excluded.at",
            (user_id, now()),
        )
        cur = await self._db.execute("DELETE FROM detections WHERE user_id = ?", (user_id,))
        await self._db.execute("DELETE FROM speaker_profiles WHERE user_id = ?", (user_id,))
        await self._db.commit()
        data_dir = self.data_dir

        def delete_files() -> int:
            gone = sum(feedback.delete_clip(data_dir, c.path) for c in clips)
            return gone + feedback.delete_user_folder(data_dir, user_id)

        files = await asyncio.get_running_loop().run_in_executor(None, delete_files)
        return cur.rowcount, files

    async def _select(self, sql: str, args: list) -> list[Detection]:
        self._db.row_factory = aiosqlite.Row
        async with self._db.execute(sql, args) as cur:
            return [detection_from_row(r) for r in await cur.fetchall()]

    # ------------------------------------------------------------------ modes
    async def set_channel_mode(self, channel_id: int, guild_id: int | None, mode: str | None) -> None:
        """``mode`` for one channel; None: the channel follows its server's default again."""
        check_mode(mode, inherit=True)
        await self._db.execute(
            "INSERT INTO channel_settings (channel_id, guild_id, mode) VALUES (?, ?, ?)"
            " ON CONFLICT(channel_id) DO UPDATE SET mode = excluded.mode",
            (channel_id, guild_id, mode),
        )
        await self._db.commit()

    async def set_guild_mode(self, guild_id: int, mode: str) -> None:
        """The default mode of every channel of ``guild_id`` that has none of its own."""
        check_mode(mode)
        await self._db.execute(
            "INSERT INTO guild_settings (guild_id, mode) VALUES (?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE SET mode = excluded.mode",
            (guild_id, mode),
        )
        await self._db.commit()

    async def modes(self, channel_id: int, guild_id: int | None) -> tuple[str | None, str]:
        """(the channel's own mode or None, the server's default); the effective one is the first set."""
        async with self._db.execute(
            "SELECT mode FROM channel_settings WHERE channel_id = ?", (channel_id,)
        ) as c:
            row = await c.fetchone()
        own = row[0] if row and row[0] in MODES else None
        async with self._db.execute("SELECT mode FROM guild_settings WHERE guild_id = ?", (guild_id,)) as c:
            row = await c.fetchone()
        return own, (row[0] if row and row[0] in MODES else DEFAULT_MODE)

    async def set_auto_role(self, guild_id: int, role_id: int | None) -> None:
        await self._db.execute(
            "INSERT INTO guild_settings (guild_id, mode, auto_role_id) VALUES (?, ?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE SET auto_role_id = excluded.auto_role_id",
            (guild_id, DEFAULT_MODE, role_id),
        )
        await self._db.commit()

    async def auto_role(self, guild_id: int) -> int | None:
        async with self._db.execute(
            "SELECT auto_role_id FROM guild_settings WHERE guild_id = ?", (guild_id,)
        ) as c:
            row = await c.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # ------------------------------------------------------------------ transcripts
    async def set_auto_transcripts(self, channel_id: int | None, guild_id: int, on: bool | None) -> None:
        value = None if on is None else int(bool(on))
        if channel_id is None:
            check_transcripts(on)
            await self._db.execute(
                "INSERT INTO guild_settings (guild_id, mode, transcripts) VALUES (?, ?, ?)"
                " ON CONFLICT(guild_id) DO UPDATE SET transcripts = excluded.transcripts",
                (guild_id, DEFAULT_MODE, value),
            )
        else:
            await self._db.execute(
                "INSERT INTO channel_settings (channel_id, guild_id, transcripts) VALUES (?, ?, ?)"
                " ON CONFLICT(channel_id) DO UPDATE SET transcripts = excluded.transcripts",
                (channel_id, guild_id, value),
            )
        await self._db.commit()

    async def set_transcript_language(self, guild_id: int, language: str | None) -> None:
        await self._db.execute(
            "INSERT INTO guild_settings (guild_id, mode, language) VALUES (?, ?, ?)"
            " ON CONFLICT(guild_id) DO UPDATE SET language = excluded.language",
            (guild_id, DEFAULT_MODE, language),
        )
        await self._db.commit()

    async def transcript_settings(self, channel_id: int, guild_id: int) -> TranscriptSettings:
        async with self._db.execute(
            "SELECT (SELECT transcripts FROM channel_settings WHERE channel_id = ?),"
            " (SELECT transcripts FROM guild_settings WHERE guild_id = ?),"
            " (SELECT language FROM guild_settings WHERE guild_id = ?)",
            (channel_id, guild_id, guild_id),
        ) as c:
            own, server, language = await c.fetchone()
        return TranscriptSettings(None if own is None else bool(own), bool(server), language)

    # ------------------------------------------------------------------ opt-outs
    async def set_opted_out(self, user_id: int, out: bool) -> bool:
        """Record (or lift) ``user_id``'s opt-out; True if that changed anything."""
        if out:
            cur = await self._db.execute(
                "INSERT OR IGNORE INTO optouts (user_id, created_at) VALUES (?, ?)", (user_id, now())
            )
        else:
            cur = await self._db.execute("DELETE FROM optouts WHERE user_id = ?", (user_id,))
        await self._db.commit()
        return cur.rowcount == 1

    async def opted_out(self, user_id: int) -> bool:
        async with self._db.execute("SELECT 1 FROM optouts WHERE user_id = ?", (user_id,)) as c:
            return await c.fetchone() is not None

    # ------------------------------------------------------------------ the bot's own state
    async def get_state(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM bot_state WHERE key = ?", (key,)) as c:
            row = await c.fetchone()
        return None if row is None else str(row[0])

    async def set_state(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        await self._db.commit()

    # ------------------------------------------------------------------ the live model (files)
    async def model_pointer(self) -> ModelPointer | None:
        ptr = await asyncio.get_running_loop().run_in_executor(None, self.models.read)
        if ptr is None:
            return None
        return ModelPointer(_ref(ptr.path), _ref(ptr.previous))

    async def publish_model(self, path: Path, version: str, *, previous: str | None) -> str:
        def promote() -> Path:
            target = self.models.promote(path, version) if Path(path).name.startswith("candidate-") else path
            self.models.write(Path(target), _path(previous))
            return Path(target)

        return str(await asyncio.get_running_loop().run_in_executor(None, promote))

    async def point_model(self, current: str | None, previous: str | None) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, self.models.write, _path(current), _path(previous)
        )

    async def model_file(self, ref: str | None) -> Path | None:
        return _path(ref)


def _scope(
    guild_id: int | None, user_id: int | None, channels: Collection[int] | None, own: int | None
) -> tuple[str, list]:
    """The WHERE clause (and its arguments) of ``Storage.history``/``since``'s rows."""
    sql, args = "guild_id IS ?", [guild_id]
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    if channels is not None:
        ids = sorted({int(c) for c in channels})
        visible = f"channel_id IN ({', '.join('?' * len(ids))})" if ids else "0"
        if own is not None:
            visible = f"({visible} OR user_id = ?)"
            ids.append(own)
        sql += f" AND {visible}"
        args += ids
    return sql, args


def _ref(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _path(ref: str | None) -> Path | None:
    return None if ref is None else Path(ref)


async def _version(db: aiosqlite.Connection) -> int:
    await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with db.execute("SELECT MAX(version) FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0] or 0)


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; each step commits with its version row. Returns the version."""
    version = await _version(db)
    await db.commit()
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {version}, newer than this bot ({SCHEMA_VERSION}); upgrade the bot"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        statements = [s.strip() for s in MIGRATIONS[target - 1].split(";") if s.strip()]
        await db.execute("BEGIN")
        try:
            for stmt in statements:
                await db.execute(stmt)
            await db.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
    return SCHEMA_VERSION
