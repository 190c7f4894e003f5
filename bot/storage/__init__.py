"""Persistence behind one interface (``base.Storage``) with two drivers: SQLite for one process (the default,
no server) and PostgreSQL for several shard processes (the ``postgres`` extra: asyncpg).
``await Storage.open(path_or_url)`` picks one.

``base`` is the contract; ``sql`` the statements and the one numbered list of migrations (``migrations/*.sql``)
both drivers share; ``sqlite`` and ``postgres`` the drivers; ``copy`` moves a SQLite deployment to PostgreSQL."""

from .base import (
    DEFAULT_MODE,
    MODES,
    STORAGE_ERRORS,
    Detection,
    KeptClip,
    ModelPointer,
    Storage,
    TranscriptSettings,
    now,
)
from .sql import SCHEMA_VERSION
from .sqlite import MIGRATIONS, SqliteStorage

__all__ = [
    "DEFAULT_MODE",
    "MIGRATIONS",
    "MODES",
    "SCHEMA_VERSION",
    "STORAGE_ERRORS",
    "Detection",
    "KeptClip",
    "ModelPointer",
    "SqliteStorage",
    "Storage",
    "TranscriptSettings",
    "now",
]
