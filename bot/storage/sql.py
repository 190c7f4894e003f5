"""The SQL both drivers run, written once.

- Statements are written in SQLite's ``?`` style; ``numbered`` turns them into asyncpg's ``$1, $2…``.
- The schema's migrations are package data, ``migrations/NNN_name.sql``, one numbering for both drivers.
  They are written in PostgreSQL's types; SQLite declares the few that differ its own way (``SQLITE_TYPES``,
  the same affinity). A step only one driver needs is ``NNN_name.<driver>.sql``: the other records the version
  with nothing to do.
- ``SqlStorage`` is the part of the storage contract that is one statement on either database; a driver adds
  how it runs a statement, its dialect's two differences and what it keeps its own way (clips, models, locks).
"""

from __future__ import annotations

import abc
import functools
import json
import re
from collections.abc import Awaitable, Callable
from importlib import resources

from .base import (
    DEFAULT_MODE,
    MODES,
    NEW_DETECTION_COLUMNS,
    Detection,
    Scope,
    Storage,
    TranscriptSettings,
    check_feedback,
    check_mode,
    check_transcripts,
    detection_from_row,
    now,
    profile_from_json,
    valid_id,
)

DIALECTS = ("sqlite", "postgres")
#: What a PostgreSQL type in a migration is declared as in SQLite (the words SQLite's schemas always used).
SQLITE_TYPES = {
    "BIGSERIAL PRIMARY KEY": "INTEGER PRIMARY KEY",  # SQLite's row id: numbered by the database
    "BIGINT": "INTEGER",
    "DOUBLE PRECISION": "REAL",
}
_MIGRATION_NAME = re.compile(r"(\d{3})_\w+?(?:\.(sqlite|postgres))?\.sql")


@functools.lru_cache(maxsize=2)
def migrations(dialect: str) -> tuple[str, ...]:
    """``[i]`` upgrades schema version ``i`` to ``i + 1`` on ``dialect`` (``"sqlite"``, ``"postgres"``)."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect={dialect!r} must be one of {DIALECTS}")
    steps: dict[int, str] = {}
    for file in (resources.files(__package__) / "migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(file.name)
        if match is None:
            continue
        number, only = int(match[1]), match[2]
        text = file.read_text(encoding="utf-8") if only in (None, dialect) else ""
        steps[number] = steps.get(number, "") + text
    if sorted(steps) != list(range(1, len(steps) + 1)):
        raise RuntimeError(f"the migrations are not numbered 1 to {len(steps)}: {sorted(steps)}")
    if dialect == "sqlite":
        steps = {n: _sqlite_types(text) for n, text in steps.items()}
    return tuple(steps[n] for n in sorted(steps))


def _sqlite_types(text: str) -> str:
    for pg, lite in SQLITE_TYPES.items():
        text = re.sub(rf"\b{pg}\b", lite, text)
    return text


#: The version every database is brought to when opened.
SCHEMA_VERSION = len(migrations("postgres"))
#: The table that records which migration steps ran (a row per step), and how it is read and written.
VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"
ADD_VERSION = "INSERT INTO schema_version (version) VALUES (?)"


def check_version(version: int) -> None:
    """RuntimeError for a database a newer bot has migrated."""
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {version}, newer than this bot ({SCHEMA_VERSION}); upgrade the bot"
        )


async def prepared(connection, prepare: Callable[[], Awaitable[object]]):
    """``connection`` (or pool) once ``await prepare()`` has set it up (migrated it); closed if that failed."""
    try:
        await prepare()
    except BaseException:
        await connection.close()
        raise
    return connection


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered ``$1, $2…`` (asyncpg's style); one without any stays as
    it is. These statements hold no ``?`` in a string literal or as an operator, so a plain split is enough."""
    first, *rest = sql.split("?")
    return first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))


#: Holds an insert back when its user was forgotten at or after a time (arguments: the user id, the time;
#: ``base.NEVER`` for a store that no forget can have come after).
UNLESS_FORGOTTEN = "WHERE NOT EXISTS (SELECT 1 FROM forgotten WHERE user_id = ? AND at >= ?)"
#: A new result (arguments: ``detection_values``, then ``UNLESS_FORGOTTEN``'s).
ADD_DETECTION = (
    f"INSERT INTO detections ({', '.join(NEW_DETECTION_COLUMNS)})"
    f" SELECT {', '.join('?' * len(NEW_DETECTION_COLUMNS))} {UNLESS_FORGOTTEN}"
)
#: Store a voice profile or replace the one there (arguments: user id, profile JSON, now, then
#: ``UNLESS_FORGOTTEN``'s).
SAVE_PROFILE = (
    f"INSERT INTO speaker_profiles (user_id, profile, updated_at) SELECT ?, ?, ? {UNLESS_FORGOTTEN}"
    " ON CONFLICT (user_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at"
)
#: ``forget_user``, in order (arguments: the user id and now; the user id; the user id).
FORGET = (
    "INSERT INTO forgotten (user_id, at) VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
    "DELETE FROM detections WHERE user_id = ?",
    "DELETE FROM speaker_profiles WHERE user_id = ?",
)


class SqlStorage(Storage):
    """What both drivers do with one statement each. A driver runs a statement through ``_execute``,
    ``_fetch`` and ``_fetchrow`` (``?`` placeholders), and says how its dialect compares with a value that
    may be NULL (``SAME``) and tests membership in a list (``_among``)."""

    #: ``column SAME ?`` is true when both are NULL too.
    SAME = "IS"

    @abc.abstractmethod
    async def _execute(self, query: str, *args) -> int:
        """Run ``query`` (committed); the number of rows it touched."""

    @abc.abstractmethod
    async def _fetch(self, query: str, *args) -> list:
        """Every row ``query`` returns (each indexes by position and by column name)."""

    @abc.abstractmethod
    async def _fetchrow(self, query: str, *args):
        """The first row ``query`` returns, or None."""

    async def _fetchval(self, query: str, *args):
        """The first column of the first row ``query`` returns, or None."""
        row = await self._fetchrow(query, *args)
        return None if row is None else row[0]

    @abc.abstractmethod
    def _among(self, column: str, ids: list[int]) -> tuple[str, list]:
        """A condition that ``column`` is one of ``ids`` (maybe none), and its arguments."""

    # ------------------------------------------------------------------ results
    async def get(self, detection_id: int) -> Detection | None:
        if not valid_id(detection_id):
            return None
        rows = await self._select("SELECT * FROM detections WHERE id = ?", detection_id)
        return rows[0] if rows else None

    async def replace_result(self, detection_id: int, d: Detection) -> bool:
        touched = await self._execute(
            "UPDATE detections SET label = ?, confidence = ?, probabilities = ?, model_version = ?,"
            " feedback = NULL WHERE id = ?",
            d.label,
            d.confidence,
            json.dumps(d.probabilities, sort_keys=True),
            d.model_version,
            detection_id,
        )
        return touched == 1

    async def set_feedback(self, detection_id: int, *, user_id: int, feedback: str, true_label: str) -> bool:
        check_feedback(feedback)
        touched = await self._execute(
            "UPDATE detections SET feedback = ?, true_label = ? WHERE id = ? AND user_id = ?",
            feedback,
            true_label,
            detection_id,
            user_id,
        )
        return touched == 1

    async def _detections(
        self, scope: Scope, *, since: float | None = None, limit: int = 10
    ) -> list[Detection]:
        where, args = self._scope(scope)
        if since is None:  # history: the latest, newest first
            return await self._select(
                f"SELECT * FROM detections WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                *args,
                limit,
            )
        return await self._select(
            f"SELECT * FROM detections WHERE {where} AND created_at >= ? ORDER BY created_at, id",
            *args,
            since,
        )

    def _scope(self, scope: Scope) -> tuple[str, list]:
        """The WHERE clause (and its arguments) of ``scope``'s rows."""
        sql, args = f"guild_id {self.SAME} ?", [scope.guild_id]
        if scope.user_id is not None:
            sql += " AND user_id = ?"
            args.append(scope.user_id)
        if scope.channels is not None:
            visible, ids = self._among("channel_id", sorted({int(c) for c in scope.channels}))
            args += ids
            if scope.own is not None:
                visible = f"({visible} OR user_id = ?)"
                args.append(scope.own)
            sql += f" AND {visible}"
        return sql, args

    async def _select(self, sql: str, *args) -> list[Detection]:
        return [detection_from_row(r) for r in await self._fetch(sql, *args)]

    async def channels(self, guild_id: int) -> list[int]:
        rows = await self._fetch(
            "SELECT DISTINCT channel_id FROM detections WHERE guild_id = ? AND channel_id IS NOT NULL",
            guild_id,
        )
        return [int(r[0]) for r in rows]

    async def count(self, *, user_id: int | None = None) -> int:
        if user_id is None:
            return int(await self._fetchval("SELECT COUNT(*) FROM detections"))
        return int(await self._fetchval("SELECT COUNT(*) FROM detections WHERE user_id = ?", user_id))

    # ------------------------------------------------------------------ voice profiles
    async def get_profile(self, user_id: int) -> dict | None:
        return profile_from_json(
            await self._fetchval("SELECT profile FROM speaker_profiles WHERE user_id = ?", user_id)
        )

    # ------------------------------------------------------------------ modes, roles, transcripts
    async def _upsert(self, table: str, row: dict, *, update: str) -> int:
        """Insert ``row`` into ``table``; where its first column's value is there already, set ``update``."""
        cols = ", ".join(row)
        return await self._execute(
            f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})"
            f" ON CONFLICT ({next(iter(row))}) DO UPDATE SET {update} = excluded.{update}",
            *row.values(),
        )

    async def set_channel_mode(self, channel_id: int, guild_id: int | None, mode: str | None) -> None:
        check_mode(mode, inherit=True)
        await self._upsert(
            "channel_settings", {"channel_id": channel_id, "guild_id": guild_id, "mode": mode}, update="mode"
        )

    async def set_guild_mode(self, guild_id: int, mode: str) -> None:
        check_mode(mode)
        await self._upsert("guild_settings", {"guild_id": guild_id, "mode": mode}, update="mode")

    async def modes(self, channel_id: int, guild_id: int | None) -> tuple[str | None, str]:
        row = await self._fetchrow(  # one round trip for both
            "SELECT (SELECT mode FROM channel_settings WHERE channel_id = ?),"
            " (SELECT mode FROM guild_settings WHERE guild_id = ?)",
            channel_id,
            guild_id,
        )
        own = row[0] if row[0] in MODES else None
        return own, (row[1] if row[1] in MODES else DEFAULT_MODE)

    # A server's row needs a mode: one made by the settings below gets the default.
    async def set_auto_role(self, guild_id: int, role_id: int | None) -> None:
        row = {"guild_id": guild_id, "mode": DEFAULT_MODE, "auto_role_id": role_id}
        await self._upsert("guild_settings", row, update="auto_role_id")

    async def auto_role(self, guild_id: int) -> int | None:
        role = await self._fetchval("SELECT auto_role_id FROM guild_settings WHERE guild_id = ?", guild_id)
        return None if role is None else int(role)

    async def set_auto_transcripts(self, channel_id: int | None, guild_id: int, on: bool | None) -> None:
        value = None if on is None else int(bool(on))
        if channel_id is None:
            check_transcripts(on)
            row = {"guild_id": guild_id, "mode": DEFAULT_MODE, "transcripts": value}
            await self._upsert("guild_settings", row, update="transcripts")
        else:
            row = {"channel_id": channel_id, "guild_id": guild_id, "transcripts": value}
            await self._upsert("channel_settings", row, update="transcripts")

    async def set_transcript_language(self, guild_id: int, language: str | None) -> None:
        row = {"guild_id": guild_id, "mode": DEFAULT_MODE, "language": language}
        await self._upsert("guild_settings", row, update="language")

    async def transcript_settings(self, channel_id: int, guild_id: int) -> TranscriptSettings:
        own, server, language = await self._fetchrow(  # one round trip for all three
            "SELECT (SELECT transcripts FROM channel_settings WHERE channel_id = ?),"
            " (SELECT transcripts FROM guild_settings WHERE guild_id = ?),"
            " (SELECT language FROM guild_settings WHERE guild_id = ?)",
            channel_id,
            guild_id,
            guild_id,
        )
        return TranscriptSettings(None if own is None else bool(own), bool(server), language)

    # ------------------------------------------------------------------ opt-outs
    async def set_opted_out(self, user_id: int, out: bool) -> bool:
        if out:
            touched = await self._execute(
                "INSERT INTO optouts (user_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                user_id,
                now(),
            )
        else:
            touched = await self._execute("DELETE FROM optouts WHERE user_id = ?", user_id)
        return touched == 1

    async def opted_out(self, user_id: int) -> bool:
        return await self._fetchval("SELECT 1 FROM optouts WHERE user_id = ?", user_id) is not None

    # ------------------------------------------------------------------ the bot's own state
    async def get_state(self, key: str) -> str | None:
        value = await self._fetchval("SELECT value FROM bot_state WHERE key = ?", key)
        return None if value is None else str(value)

    async def set_state(self, key: str, value: str) -> None:
        await self._upsert("bot_state", {"key": key, "value": value}, update="value")
