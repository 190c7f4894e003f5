"""The SQLite driver (aiosqlite, WAL), for one process: detections (with the user's feedback), modes,
opt-outs and per-user voice profiles (feature statistics, no audio). Audio is kept only as files the user
consented to, under ``SER_DATA_DIR/feedback/``; the database holds their relative path. The live model is
named by ``SER_DATA_DIR/models/current.json`` (``bot.modelstore``).

The schema is versioned: ``MIGRATIONS[i]`` (``sql.migrations``) upgrades version ``i`` to ``i + 1`` and
runs once, in a transaction, when the database is opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

import aiosqlite

from .. import feedback
from ..modelstore import ModelStore
from . import sql
from .base import NEVER, Detection, KeptClip, ModelPointer, content_digest, detection_values, now

MIGRATIONS: tuple[str, ...] = sql.migrations("sqlite")
SCHEMA_VERSION = sql.SCHEMA_VERSION


class SqliteStorage(sql.SqlStorage):
    """One aiosqlite connection; open with ``await Storage.open(path)``, close with ``await close()``. Kept
    clips and model files live in the database's folder (``SER_DATA_DIR``)."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._db.row_factory = aiosqlite.Row  # rows index by column name too, as asyncpg's do
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

        async def prepare() -> None:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await migrate(db)

        return cls(await sql.prepared(db, prepare), path)

    async def close(self) -> None:
        await self._db.close()

    async def schema_version(self) -> int:
        return await _version(self._db)

    # ------------------------------------------------------------------ how a statement runs
    async def _execute(self, query: str, *args) -> int:
        cur = await self._db.execute(query, args)
        await self._db.commit()
        return cur.rowcount

    async def _fetch(self, query: str, *args) -> list:
        async with self._db.execute(query, args) as cur:
            return list(await cur.fetchall())

    async def _fetchrow(self, query: str, *args):
        async with self._db.execute(query, args) as cur:
            return await cur.fetchone()

    def _among(self, column: str, ids: list[int]) -> tuple[str, list]:
        return (f"{column} IN ({', '.join('?' * len(ids))})", ids) if ids else ("0", [])

    # ------------------------------------------------------------------ results
    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        """Insert ``d``; return its row id (the feedback buttons carry it), or None when its user asked to be
        forgotten at or after ``since`` (the analysis began before that: nothing of it is kept)."""
        cur = await self._db.execute(
            sql.ADD_DETECTION, (*detection_values(d), d.user_id, NEVER if since is None else since)
        )
        await self._db.commit()
        return int(cur.lastrowid) if cur.rowcount == 1 else None

    async def forget_user(self, user_id: int) -> tuple[int, int]:
        clips = await self.kept_clips(user_id=user_id)
        mark, results, profile = sql.FORGET
        await self._db.execute(mark, (user_id, now()))
        cur = await self._db.execute(results, (user_id,))
        await self._db.execute(profile, (user_id,))
        await self._db.commit()
        data_dir = self.data_dir

        def delete_files() -> int:
            gone = sum(feedback.delete_clip(data_dir, c.path) for c in clips)
            return gone + feedback.delete_user_folder(data_dir, user_id)

        files = await asyncio.get_running_loop().run_in_executor(None, delete_files)
        return cur.rowcount, files

    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        stored = await self._execute(
            sql.SAVE_PROFILE, user_id, json.dumps(profile), now(), user_id, NEVER if since is None else since
        )
        return stored == 1

    # ------------------------------------------------------------------ kept clips (files)
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
        touched = await self._execute(
            "UPDATE detections SET clip_path = ? WHERE id = ? AND user_id = ?", path, detection_id, user_id
        )
        return touched == 1

    async def kept_clips(self, *, user_id: int | None = None) -> list[KeptClip]:
        """Consented clips with a known true label (all users, or one), oldest first."""
        query = (
            "SELECT id, user_id, clip_path, true_label, guild_id FROM detections WHERE clip_path IS NOT NULL"
        )
        args: list = []
        if user_id is not None:
            query += " AND user_id = ?"
            args.append(user_id)
        rows = await self._fetch(query + " ORDER BY id", *args)
        return [
            KeptClip(int(r[0]), int(r[1]), str(r[2]), str(r[3]), None if r[4] is None else int(r[4]))
            for r in rows
            if r[3]
        ]

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


def _ref(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _path(ref: str | None) -> Path | None:
    return None if ref is None else Path(ref)


async def _version(db: aiosqlite.Connection) -> int:
    await db.execute(sql.VERSION_TABLE)
    async with db.execute(sql.CURRENT_VERSION) as cur:
        row = await cur.fetchone()
    return int(row[0])


def _statements(step: str) -> list[str]:
    """A migration step's statements, one at a time (``executescript`` would commit in between)."""
    code = "\n".join(line for line in step.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


async def migrate(db: aiosqlite.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; each step commits with its version row. Returns the version."""
    version = await _version(db)
    await db.commit()
    sql.check_version(version)
    for target in range(version + 1, SCHEMA_VERSION + 1):
        await db.execute("BEGIN")
        try:
            for stmt in _statements(MIGRATIONS[target - 1]):
                await db.execute(stmt)
            await db.execute(sql.ADD_VERSION, (target,))
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
    return SCHEMA_VERSION
