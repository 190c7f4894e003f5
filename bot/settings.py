"""Settings: the environment (and a ``.env`` file) → one frozen ``Settings``, validated once at start."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A missing or invalid setting; the message is one line for the person starting the bot."""


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)  # never in a log line, a traceback's locals or an error reply
    data_dir: Path = Path("./data")
    model_path: Path | None = None  # None: the model shipped with ser_core
    dev_guild_id: int | None = None
    max_file_mb: float = 25.0
    max_seconds: float = 120.0
    #: The bot's operators besides the application's owner or team: they alone retrain and roll back the
    #: model every server shares (a server's administrators do not).
    admin_ids: frozenset[int] = field(default_factory=frozenset)
    #: Notes analysed per minute per person (a token bucket); 0 turns the limit off.
    rate_limit: int = 5
    #: Minutes between the end of one retraining run and the start of the next (0: none).
    retrain_cooldown_min: float = 15.0
    #: Kept clips one person (and one server) may put into a retrain: one voice or one community cannot
    #: steer the model every server shares. The newest are used.
    clips_per_user: int = 20
    clips_per_server: int = 100
    #: ``postgresql://…``: shared storage for several shard processes; None: SQLite in ``data_dir``.
    database_url: str | None = field(default=None, repr=False)  # may hold a password
    #: Discord shards in all (None: as Discord recommends) and the ones this process runs (None: all).
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    ravdess_dir: Path | None = None
    #: More corpus folders that retraining uses beside ``ravdess_dir`` (e.g. nEMO), from SER_TRAIN_DIRS.
    train_dirs: tuple[Path, ...] = ()
    # Loopback fake Discord (tests, demo, benchmark); not for users.
    api_base: str | None = None
    gateway_url: str | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def training_data(self) -> list[Path]:
        """The corpus folders a retrain learns from: ``ravdess_dir`` then ``train_dirs``."""
        return [d for d in (self.ravdess_dir, *self.train_dirs) if d is not None]

    @property
    def db_path(self) -> Path:
        return self.data_dir / "ser-bot.sqlite3"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require_token: bool = True) -> Settings:
        """Read and validate every ``SER_*`` setting and ``DISCORD_TOKEN``; raise ``SettingsError``."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        token = get("DISCORD_TOKEN")
        if token is None and require_token:
            raise SettingsError(
                "DISCORD_TOKEN is not set: put the bot token in the environment or in a .env file "
                "(see .env.example), or run `ser-bot --demo` to try the bot offline."
            )
        model_path = _path(get("SER_MODEL_PATH"))
        if model_path is not None and not model_path.is_file():
            raise SettingsError(f"SER_MODEL_PATH={model_path} does not exist or is not a file.")
        ravdess_dir = _path(get("SER_RAVDESS_DIR"))
        if ravdess_dir is not None and not ravdess_dir.is_dir():
            raise SettingsError(f"SER_RAVDESS_DIR={ravdess_dir} is not a folder.")
        train_dirs = _train_dirs(get("SER_TRAIN_DIRS"))
        data_dir = _path(get("SER_DATA_DIR")) or Path("./data")
        if data_dir.exists() and not data_dir.is_dir():
            raise SettingsError(f"SER_DATA_DIR={data_dir} exists but is not a folder.")
        return cls(
            token=token or "",
            data_dir=data_dir,
            model_path=model_path,
            dev_guild_id=_snowflake("SER_DEV_GUILD_ID", get("SER_DEV_GUILD_ID")),
            max_file_mb=_number("SER_MAX_FILE_MB", get("SER_MAX_FILE_MB"), 25.0, 0.01, 500.0),
            max_seconds=_number("SER_MAX_SECONDS", get("SER_MAX_SECONDS"), 120.0, 1.0, 3600.0),
            admin_ids=_id_list("SER_ADMIN_IDS", get("SER_ADMIN_IDS")),
            rate_limit=_whole("SER_RATE_LIMIT", get("SER_RATE_LIMIT"), 5, 0, 10_000),
            retrain_cooldown_min=_number(
                "SER_RETRAIN_COOLDOWN_MIN", get("SER_RETRAIN_COOLDOWN_MIN"), 15.0, 0.0, 7 * 24 * 60
            ),
            clips_per_user=_whole("SER_CLIPS_PER_USER", get("SER_CLIPS_PER_USER"), 20, 0, 100_000),
            clips_per_server=_whole("SER_CLIPS_PER_SERVER", get("SER_CLIPS_PER_SERVER"), 100, 0, 1_000_000),
            database_url=_database_url(get("SER_DATABASE_URL")),
            **_shards(get("SER_SHARD_COUNT"), get("SER_SHARD_IDS")),
            ravdess_dir=ravdess_dir,
            train_dirs=train_dirs,
            api_base=_url("SER_DISCORD_API_BASE", get("SER_DISCORD_API_BASE"), ("http://", "https://")),
            gateway_url=_url("SER_DISCORD_GATEWAY", get("SER_DISCORD_GATEWAY"), ("ws://", "wss://")),
        )


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def _train_dirs(value: str | None) -> tuple[Path, ...]:
    """``SER_TRAIN_DIRS``: folders separated by ``os.pathsep`` or commas; each must exist and may train."""
    from ser_core.datasets import corpus_info, corpus_name

    if value is None:
        return ()
    dirs = tuple(Path(p.strip()).expanduser() for p in value.replace(os.pathsep, ",").split(",") if p.strip())
    for d in dirs:
        if not d.is_dir():
            raise SettingsError(f"SER_TRAIN_DIRS names {d}, which is not a folder.")
        info = corpus_info(corpus_name(d))
        if not info.may_train:
            raise SettingsError(
                f"SER_TRAIN_DIRS names {d}: {info.title} is for evaluation only ({info.licence})."
            )
    return dirs


def _number(name: str, value: str | None, default: float, lo: float, hi: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a number.") from None
    if not lo <= number <= hi:
        raise SettingsError(f"{name}={value!r} is out of range; use a number from {lo:g} to {hi:g}.")
    return number


def _whole(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise SettingsError(f"{name}={value!r} is not valid; use a whole number from {lo} to {hi}.")
    return int(value)


def _shards(count: str | None, ids: str | None) -> dict:
    """``SER_SHARD_COUNT`` and ``SER_SHARD_IDS`` (e.g. ``0,1``): ids need the count, and each is below it."""
    if ids is not None and count is None:
        raise SettingsError("SER_SHARD_IDS needs SER_SHARD_COUNT (how many shards there are in all).")
    shard_count = None if count is None else _whole("SER_SHARD_COUNT", count, 1, 1, 100_000)
    if ids is None:
        return {"shard_count": shard_count, "shard_ids": None}
    parts = [p.strip() for p in ids.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) < (shard_count or 0) for p in parts):
        raise SettingsError(
            f"SER_SHARD_IDS={ids!r} must list shard numbers from 0 to {(shard_count or 1) - 1}, e.g. 0,1."
        )
    return {"shard_count": shard_count, "shard_ids": tuple(sorted({int(p) for p in parts}))}


def _snowflake(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise SettingsError(f"{name}={value!r} is not a Discord id (a positive whole number).")
    return int(value)


def _id_list(name: str, value: str | None) -> frozenset[int]:
    if value is None:
        return frozenset()
    ids = set()
    for part in value.split(","):
        part = part.strip()
        if part:
            ids.add(_snowflake(name, part))
    return frozenset(ids)


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if not value.startswith(schemes):
        raise SettingsError(f"{name}={mask_url(value)!r} must start with {' or '.join(schemes)}.")
    return value.rstrip("/")


def _database_url(value: str | None) -> str | None:
    url = _url("SER_DATABASE_URL", value, ("postgresql://", "postgres://"))
    if url is not None and importlib.util.find_spec("asyncpg") is None:  # the postgres extra, not a default
        raise SettingsError(
            "SER_DATABASE_URL is set but the PostgreSQL driver (asyncpg) is not installed: "
            "pip install 'ser-bot[postgres]'."
        )
    return url


def mask_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***`` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    auth, at, host = rest.rpartition("@")
    if not at:
        return url
    user, colon, _ = auth.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"
