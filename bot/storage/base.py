"""The storage interface every driver implements, and the records it deals in.

Two drivers: ``sqlite`` (one process, a file in ``SER_DATA_DIR``, no server: the default) and ``postgres``
(several shard processes on one or more machines sharing one PostgreSQL). The bot talks to ``Storage`` only;
``Storage.open(target)`` picks the driver from the target (a path, or a ``postgresql://`` URL).
"""

from __future__ import annotations

import abc
import asyncio
import json
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

#: How a channel treats voice notes: reply to every one, only when asked (menu, /emotion analyze), never.
MODES: tuple[str, ...] = ("auto", "request", "off")
DEFAULT_MODE = "auto"


def _storage_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.Error, OSError, ConnectionError, asyncio.TimeoutError]
    try:  # the PostgreSQL driver's errors, when it is installed
        import asyncpg

        # InternalClientError: a connection cut in the middle of a query ("cannot switch to state ...")
        errors += [asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError]
    except ImportError:
        pass
    return tuple(errors)


#: Why a ``postgresql://`` target cannot open, and the fix: asyncpg is the ``postgres`` extra.
POSTGRES_MISSING = "the PostgreSQL driver (asyncpg) is not installed: pip install 'ser-bot[postgres]'"

#: What a database that is read-only, full, locked, corrupt, gone or unreachable raises.
STORAGE_ERRORS: tuple[type[Exception], ...] = _storage_errors()


@dataclass(frozen=True)
class Detection:
    guild_id: int | None  # None: a direct message with the bot
    channel_id: int | None
    user_id: int
    message_id: int | None
    created_at: float
    label: str
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    model_version: str
    id: int | None = None
    feedback: str | None = None  # "right" | "wrong" | None
    true_label: str | None = None
    clip_path: str | None = None  # where the kept clip is (driver-specific), only with the user's consent


@dataclass(frozen=True)
class KeptClip:
    """A clip a user consented to keep for training (``path``: the driver's reference to it)."""

    detection_id: int
    user_id: int
    path: str
    label: str
    guild_id: int | None = None  # the server it was sent in (None: a direct message)


@dataclass(frozen=True)
class ModelPointer:
    """Which model is live and which served before it (for rollback). A reference is a model file (SQLite:
    a path) or a published version (PostgreSQL); None means the model shipped with ser_core."""

    current: str | None
    previous: str | None


@dataclass(frozen=True)
class TranscriptSettings:
    """Transcripts in one channel: ``own`` the channel's setting (None: the server's), ``server`` the server's
    default (off unless set), ``language`` the server's pinned language (None: detected per note)."""

    own: bool | None = None
    server: bool = False
    language: str | None = None

    @property
    def auto(self) -> bool:
        return self.server if self.own is None else self.own


class Scope(NamedTuple):
    """Which results ``history`` and ``since`` read: those of ``guild_id`` (None: direct messages), of
    ``user_id`` if given, and if ``channels`` is given only from those channels, plus every one of ``own``."""

    guild_id: int | None
    user_id: int | None = None
    channels: Collection[int] | None = None
    own: int | None = None


def now() -> float:
    return time.time()


#: ``since`` for a store that no forget can have come after (the analysis was not timed).
NEVER = float("inf")
#: Row ids and Discord snowflakes fit a signed 64-bit integer; anything larger is not ours.
MAX_ID = 2**63 - 1


def valid_id(value: int) -> bool:
    """Whether ``value`` can be a row id (a custom id's number is the user's to choose)."""
    return isinstance(value, int) and 0 < value <= MAX_ID


def content_digest(data: bytes) -> str:
    """The digest the feature cache names a clip's vectors by (``ser_core.cache.content_hash``)."""
    from ser_core.cache import content_hash

    return content_hash(data)


#: The ``detections`` table's columns: ``Detection``'s fields, in order (both schemas name them alike).
DETECTION_COLUMNS = tuple(f.name for f in fields(Detection))
#: What a new result inserts: everything before its id (the database's); feedback and a clip come later.
NEW_DETECTION_COLUMNS = DETECTION_COLUMNS[: DETECTION_COLUMNS.index("id")]


# What both drivers do the same way with what they read and are given.
def detection_from_row(r) -> Detection:
    """A ``detections`` row (an ``aiosqlite.Row`` or an ``asyncpg.Record``: both index by column name)."""
    return Detection(
        **{c: r[c] for c in DETECTION_COLUMNS} | {"probabilities": json.loads(r["probabilities"])}
    )


def detection_values(d: Detection) -> tuple:
    """What ``add_detection`` inserts, in ``NEW_DETECTION_COLUMNS`` order (the probabilities as JSON)."""
    return tuple(
        json.dumps(d.probabilities, sort_keys=True) if c == "probabilities" else getattr(d, c)
        for c in NEW_DETECTION_COLUMNS
    )


def profile_from_json(raw: str | None) -> dict | None:
    """A stored voice profile, or None if there is none or it is not a JSON object."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def check_mode(mode: str | None, *, inherit: bool = False) -> None:
    """ValueError unless ``mode`` is one of ``MODES`` (or None, where ``inherit`` allows it)."""
    if not (mode in MODES or (inherit and mode is None)):
        raise ValueError(f"mode={mode!r} must be one of {MODES}")


def check_transcripts(on: bool | None) -> None:
    """ValueError unless a server's automatic-transcript default is on or off (only a channel inherits)."""
    if not isinstance(on, bool):
        raise ValueError(f"a server's transcripts setting must be True or False, not {on!r}")


def check_feedback(feedback: str) -> None:
    if feedback not in ("right", "wrong"):
        raise ValueError(f"feedback={feedback!r} must be 'right' or 'wrong'")


class Storage(abc.ABC):
    """Results, feedback, kept clips, voice profiles, modes, opt-outs, the live model's pointer and the one
    retraining run, behind one interface. Every method may raise one of ``STORAGE_ERRORS``."""

    #: True when several processes share this storage (model changes arrive by notification).
    shared: bool = False

    @classmethod
    async def open(cls, target: str | Path) -> Storage:
        """``postgresql://…`` → the PostgreSQL driver; anything else is a SQLite file path."""
        if str(target).startswith(("postgresql://", "postgres://")):
            try:
                from .postgres import PostgresStorage
            except ImportError as exc:
                if exc.name != "asyncpg":
                    raise
                raise ImportError(POSTGRES_MISSING, name="asyncpg") from None

            return await PostgresStorage.open(str(target))
        from .sqlite import SqliteStorage

        return await SqliteStorage.open(target)

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    # ------------------------------------------------------------------ results
    @abc.abstractmethod
    async def add_detection(self, d: Detection, *, since: float | None = None) -> int | None:
        """Insert ``d``; return its row id (the buttons carry it), or None if its user asked to be forgotten
        at or after ``since`` (when the analysis began): a note in flight during ``forget_user`` is not kept."""

    @abc.abstractmethod
    async def get(self, detection_id: int) -> Detection | None: ...

    @abc.abstractmethod
    async def replace_result(self, detection_id: int, d: Detection) -> bool:
        """A re-run's answer for row ``detection_id``: label, probabilities and model change; the verdict on the
        old answer is cleared (the true label and a kept clip stay). False if the row is gone."""

    @abc.abstractmethod
    async def set_feedback(self, detection_id: int, *, user_id: int, feedback: str, true_label: str) -> bool:
        """Store the author's verdict on a result; False if the row is gone or not theirs."""

    async def history(
        self,
        guild_id: int | None,
        *,
        user_id: int | None = None,
        limit: int = 10,
        channels: Collection[int] | None = None,
        own: int | None = None,
    ) -> list[Detection]:
        """The latest detections in ``guild_id`` (None: direct messages) of ``user_id`` if given, newest
        first. A server's rows never include direct messages, and direct messages never a server's.
        ``channels``: only rows from these channels (those the asker can read), and every row of ``own``."""
        return await self._detections(Scope(guild_id, user_id, channels, own), limit=limit)

    async def since(
        self,
        guild_id: int | None,
        since: float,
        *,
        user_id: int | None = None,
        channels: Collection[int] | None = None,
        own: int | None = None,
    ) -> list[Detection]:
        """Detections in ``guild_id`` (None: direct messages) at or after ``since`` (unix time), oldest first;
        ``channels`` and ``own`` as in ``history``."""
        return await self._detections(Scope(guild_id, user_id, channels, own), since=since)

    @abc.abstractmethod
    async def _detections(
        self, scope: Scope, *, since: float | None = None, limit: int = 10
    ) -> list[Detection]:
        """The rows of ``scope`` at or after ``since``, oldest first; without ``since``, the latest ``limit``
        of them, newest first."""

    @abc.abstractmethod
    async def channels(self, guild_id: int) -> list[int]:
        """The channels of ``guild_id`` that results were stored in."""

    @abc.abstractmethod
    async def count(self, *, user_id: int | None = None) -> int: ...

    @abc.abstractmethod
    async def forget_user(self, user_id: int) -> tuple[int, int]:
        """Delete every result, kept clip and the voice profile of ``user_id`` (all servers and DMs), and
        remember when (``add_detection``'s ``since``); return (results deleted, clips deleted)."""

    # ------------------------------------------------------------------ kept clips
    @abc.abstractmethod
    async def keep_clip(self, detection_id: int, *, user_id: int, data: bytes) -> str | None:
        """Keep ``data`` as the training clip of the author's result; its reference, or None if the row is
        gone or not theirs."""

    @abc.abstractmethod
    async def drop_clip(self, detection_id: int, *, user_id: int) -> bool:
        """Delete the kept clip of that result; False if there was none."""

    @abc.abstractmethod
    async def kept_clips(self, *, user_id: int | None = None) -> list[KeptClip]:
        """Consented clips with a known true label (all users, or one), oldest first."""

    @abc.abstractmethod
    async def training_clips(self, folder: Path) -> list[dict]:
        """Every kept clip as a training clip ``{"path", "emotion", "speaker", "guild"}`` (the user id is the
        speaker; ``guild`` the server it was sent in, None for a DM), oldest first, as files a training process
        can read; a driver that keeps clips elsewhere writes them into ``folder``."""

    @abc.abstractmethod
    async def kept_clip_digests(self, user_id: int) -> list[str]:
        """The feature-cache digests (``content_digest``) of ``user_id``'s kept clips."""

    # ------------------------------------------------------------------ voice profiles
    @abc.abstractmethod
    async def get_profile(self, user_id: int) -> dict | None: ...

    @abc.abstractmethod
    async def save_profile(self, user_id: int, profile: dict, *, since: float | None = None) -> bool:
        """Store ``user_id``'s voice profile, unless they were forgotten at or after ``since``; True if stored."""

    # ------------------------------------------------------------------ modes and opt-outs
    @abc.abstractmethod
    async def set_channel_mode(self, channel_id: int, guild_id: int | None, mode: str | None) -> None:
        """``mode`` for one channel; None: the channel follows its server's default again."""

    @abc.abstractmethod
    async def set_guild_mode(self, guild_id: int, mode: str) -> None:
        """The default mode of every channel of ``guild_id`` that has none of its own."""

    @abc.abstractmethod
    async def modes(self, channel_id: int, guild_id: int | None) -> tuple[str | None, str]:
        """(the channel's own mode or None, the server's default); the effective one is the first set."""

    async def mode(self, channel_id: int, guild_id: int | None) -> str:
        """The effective mode of a channel: its own, else its server's default, else ``DEFAULT_MODE``."""
        own, default = await self.modes(channel_id, guild_id)
        return own or default

    @abc.abstractmethod
    async def set_auto_role(self, guild_id: int, role_id: int | None) -> None:
        """Only members with ``role_id`` are analysed automatically in ``guild_id`` (None: everyone)."""

    @abc.abstractmethod
    async def auto_role(self, guild_id: int) -> int | None: ...

    # ------------------------------------------------------------------ transcripts
    @abc.abstractmethod
    async def set_auto_transcripts(self, channel_id: int | None, guild_id: int, on: bool | None) -> None:
        """Whether a transcript follows every reply automatically: in one channel (``on`` None: it follows
        the server again), or by default in every channel of ``guild_id`` (``channel_id`` None; ``on`` a bool)."""

    @abc.abstractmethod
    async def set_transcript_language(self, guild_id: int, language: str | None) -> None:
        """The language every transcript in ``guild_id`` is decoded in (a Whisper code; None: detect it)."""

    @abc.abstractmethod
    async def transcript_settings(self, channel_id: int, guild_id: int) -> TranscriptSettings:
        """The channel's own automatic-transcript setting, the server's, and the server's pinned language."""

    @abc.abstractmethod
    async def set_opted_out(self, user_id: int, out: bool) -> bool:
        """Record (or lift) ``user_id``'s opt-out; True if that changed anything."""

    @abc.abstractmethod
    async def opted_out(self, user_id: int) -> bool: ...

    # ------------------------------------------------------------------ the bot's own state
    @abc.abstractmethod
    async def get_state(self, key: str) -> str | None:
        """A small value the bot keeps for itself (e.g. ``"retrain_ended"``), or None."""

    @abc.abstractmethod
    async def set_state(self, key: str, value: str) -> None: ...

    # ------------------------------------------------------------------ the live model
    @abc.abstractmethod
    async def model_pointer(self) -> ModelPointer | None:
        """Which model is live (None: nothing was ever installed, serve the shipped one)."""

    @abc.abstractmethod
    async def publish_model(self, path: Path, version: str, *, previous: str | None) -> str:
        """Make the model file ``path`` (version ``version``) the live one for every process sharing this
        storage, remembering ``previous`` (a reference); return the new model's reference."""

    @abc.abstractmethod
    async def point_model(self, current: str | None, previous: str | None) -> None:
        """Point at an already published model (rollback)."""

    @abc.abstractmethod
    async def model_file(self, ref: str | None) -> Path | None:
        """A local file holding the model ``ref`` (None for the shipped model), fetched if need be."""

    async def watch_models(self, changed) -> None:  # noqa: B027 - a no-op for a single process
        """Call ``await changed()`` whenever another process changes the live model, and after reconnecting
        (notifications missed meanwhile are not replayed). Single-process drivers never call it."""

    # ------------------------------------------------------------------ one retraining run at a time
    async def try_lock_retrain(self) -> bool:
        """Claim the one retraining slot across every process sharing this storage (the caller also keeps
        its own in-process slot); False if another process holds it."""
        return True

    async def unlock_retrain(self) -> None:  # noqa: B027 - nothing to release for a single process
        """Release the slot claimed by ``try_lock_retrain``."""

    async def set_retrain_status(self, status: dict | None) -> None:  # noqa: B027
        """Publish the running retrain's progress (``{"preset", "line"}``) for other processes; None: ended."""

    async def retrain_status(self) -> dict | None:
        """The progress another process published for a run it is holding the slot for, or None."""
        return None
