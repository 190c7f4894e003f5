"""Persistence behind one interface (``base.Storage``) with two drivers: SQLite for one process (the default,
no server) and PostgreSQL for several shard processes. ``await Storage.open(path_or_url)`` picks one."""

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
from .sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStorage

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
