"""Move a one-process deployment to PostgreSQL: copy a SQLite database (and its ``SER_DATA_DIR``) into an empty
PostgreSQL database.

    python -m bot.storage.copy data/ser-bot.sqlite3 postgresql://ser@db-host:5432/ser

Everything the bot stores comes along: results with their ids (so the buttons under old replies keep
working), feedback, kept clips (read from ``SER_DATA_DIR/feedback/``), voice profiles, channel and server
modes, opt-outs, and the live model if a retrain or rollback had chosen one. The SQLite file is only read,
upgraded to the current schema first if it is older; the target must be empty of results.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .. import feedback
from .base import DETECTION_COLUMNS, Storage
from .sqlite import SqliteStorage

if TYPE_CHECKING:
    from .postgres import PostgresStorage

log = logging.getLogger(__name__)

#: Tables copied row by row, with their columns (the same names in both schemas).
TABLES: dict[str, tuple[str, ...]] = {
    "detections": DETECTION_COLUMNS,
    "channel_settings": ("channel_id", "guild_id", "listen", "mode", "transcripts"),
    "guild_settings": ("guild_id", "mode", "auto_role_id", "transcripts", "language"),
    "optouts": ("user_id", "created_at"),
    "speaker_profiles": ("user_id", "profile", "updated_at"),
}


class CopyError(Exception):
    """The copy cannot be made; one sentence saying why."""


async def copy_sqlite(src: Path, url: str) -> dict[str, int]:
    """Copy the SQLite database ``src`` (its folder is the data folder) into the PostgreSQL database ``url``.
    Returns how many rows (or files) of each kind were copied."""
    if not Path(src).is_file():
        raise CopyError(f"{src} is not a file")
    source = await SqliteStorage.open(src)  # upgrades an old schema in place first, as the bot would
    try:
        target = await Storage.open(url)
    except BaseException:
        await source.close()  # its thread would keep the process alive after the one-line error
        raise
    from .postgres import PostgresStorage  # only now: asyncpg is the postgres extra (Storage.open says so)

    assert isinstance(target, PostgresStorage)
    counts: dict[str, int] = {}
    try:
        if await target.count():
            raise CopyError("the PostgreSQL database already holds results; copy into an empty one")
        async with target._acquire() as conn, conn.transaction():
            for table, cols in TABLES.items():
                async with source._db.execute(f"SELECT {', '.join(cols)} FROM {table}") as cur:
                    rows = [tuple(r) for r in await cur.fetchall()]
                marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
                await conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
                counts[table] = len(rows)
            # new results continue after the copied ids
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('detections', 'id'),"
                " COALESCE((SELECT MAX(id) FROM detections), 0) + 1, false)"
            )
            clips = 0
            for clip in await source.kept_clips():
                try:
                    data = feedback.resolve_clip(source.data_dir, clip.path).read_bytes()
                except (ValueError, OSError) as exc:
                    log.warning("kept clip %s not copied: %s", clip.path, exc)
                    await conn.execute(
                        "UPDATE detections SET clip_path = NULL WHERE id = $1", clip.detection_id
                    )
                    continue
                await conn.execute(
                    "INSERT INTO clips (detection_id, user_id, ext, data) VALUES ($1, $2, $3, $4)",
                    clip.detection_id,
                    clip.user_id,
                    feedback.extension_for(data),
                    data,
                )
                await conn.execute(
                    "UPDATE detections SET clip_path = $1 WHERE id = $2",
                    f"db:{clip.detection_id}",
                    clip.detection_id,
                )
                clips += 1
            counts["kept clips"] = clips
        counts["live model"] = await _copy_live_model(source, target)
    finally:
        await source.close()
        await target.close()
    return counts


async def _copy_live_model(source: SqliteStorage, target: PostgresStorage) -> int:
    """Publish the model ``current.json`` names, if it is a retrained one (not the shipped model)."""
    from ser_core import default_model_path, load_model

    from .postgres import BASE

    pointer = await source.model_pointer()
    if pointer is None or pointer.current is None:
        return 0
    path = Path(pointer.current)
    if path.resolve() == default_model_path().resolve() or not path.is_file():
        return 0
    version = load_model(path).version
    await target.publish_model(path, version, previous=BASE)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.storage.copy", description=__doc__.split("\n\n")[0])
    parser.add_argument("sqlite", type=Path, help="the SQLite file (SER_DATA_DIR/ser-bot.sqlite3)")
    parser.add_argument("url", help="the empty PostgreSQL database (postgresql://...)")
    args = parser.parse_args(argv)
    if not args.url.startswith(("postgresql://", "postgres://")):
        print("copy: the target must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(copy_sqlite(args.sqlite, args.url))
    except CopyError as exc:
        print(f"copy: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an unreachable server, a wrong password: one line, not a traceback
        print(f"copy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("copied: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
