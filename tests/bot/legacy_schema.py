"""The schemas as the code before issue 22 made them, frozen here so that the upgrade tests do not depend on
today's migrations: a database built from these must open with today's code and keep its rows.

Then each driver numbered its own steps. PostgreSQL's were ``POSTGRES_ORDER``; SQLite's the same without
``shared`` (the tables only several processes need), in SQLite's types.
"""

from __future__ import annotations

import sqlite3

#: What each step created, in PostgreSQL's types (one statement a line).
STEPS: dict[str, tuple[str, ...]] = {
    "results": (
        "CREATE TABLE detections (id BIGSERIAL PRIMARY KEY, guild_id BIGINT, channel_id BIGINT,"
        " user_id BIGINT NOT NULL, message_id BIGINT, created_at DOUBLE PRECISION NOT NULL, label TEXT NOT NULL,"
        " confidence DOUBLE PRECISION NOT NULL, probabilities TEXT NOT NULL, duration_s DOUBLE PRECISION NOT NULL,"
        " model_version TEXT NOT NULL)",
        "CREATE TABLE channel_settings (channel_id BIGINT PRIMARY KEY, guild_id BIGINT,"
        " listen INTEGER NOT NULL DEFAULT 1)",
    ),
    "indexes": (
        "CREATE INDEX detections_guild_user_time ON detections (guild_id, user_id, created_at)",
        "CREATE INDEX detections_user ON detections (user_id)",
    ),
    "feedback": (
        "ALTER TABLE detections ADD COLUMN feedback TEXT",
        "ALTER TABLE detections ADD COLUMN true_label TEXT",
        "ALTER TABLE detections ADD COLUMN clip_path TEXT",
        "CREATE TABLE speaker_profiles (user_id BIGINT PRIMARY KEY, profile TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)",
    ),
    "modes": (
        "ALTER TABLE channel_settings ADD COLUMN mode TEXT",
        "UPDATE channel_settings SET mode = CASE WHEN listen = 0 THEN 'off' ELSE 'auto' END",
        "CREATE TABLE guild_settings (guild_id BIGINT PRIMARY KEY, mode TEXT NOT NULL)",
        "CREATE TABLE optouts (user_id BIGINT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL)",
    ),
    "shared": (
        "CREATE TABLE clips (detection_id BIGINT PRIMARY KEY REFERENCES detections (id) ON DELETE CASCADE,"
        " user_id BIGINT NOT NULL, ext TEXT NOT NULL, data BYTEA NOT NULL)",
        "CREATE TABLE models (version TEXT PRIMARY KEY, sha256 TEXT NOT NULL, data BYTEA NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE model_pointer (id INTEGER PRIMARY KEY CHECK (id = 1), current TEXT, previous TEXT,"
        " updated_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE retrain_status (id INTEGER PRIMARY KEY CHECK (id = 1), status TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)",
    ),
    "auto_role": ("ALTER TABLE guild_settings ADD COLUMN auto_role_id BIGINT",),
    "forgotten": (
        "CREATE TABLE forgotten (user_id BIGINT PRIMARY KEY, at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE bot_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE INDEX detections_guild_channel ON detections (guild_id, channel_id)",
    ),
    "transcripts": (
        "ALTER TABLE channel_settings ADD COLUMN transcripts INTEGER",
        "ALTER TABLE guild_settings ADD COLUMN transcripts INTEGER",
        "ALTER TABLE guild_settings ADD COLUMN language TEXT",
    ),
}
POSTGRES_ORDER = (
    "results",
    "indexes",
    "feedback",
    "modes",
    "shared",
    "auto_role",
    "forgotten",
    "transcripts",
)
SQLITE_ORDER = tuple(step for step in POSTGRES_ORDER if step != "shared")

#: Rows a bot stored once a step had run (SQL both databases read alike; ``shared``: PostgreSQL only).
ROWS: dict[str, str] = {
    "results": "INSERT INTO detections (guild_id, channel_id, user_id, message_id, created_at, label, confidence,"
    " probabilities, duration_s, model_version) VALUES (1, 5, 10, 3, 1000.0, 'sad', 0.75, '{\"sad\": 1.0}', 2.0,"
    " 'v-old'); INSERT INTO channel_settings (channel_id, guild_id, listen) VALUES (5, 1, 0)",
    "feedback": "UPDATE detections SET feedback = 'wrong', true_label = 'angry' WHERE id = 1;"
    " INSERT INTO speaker_profiles VALUES (10, '{\"n\": 4}', 1000.0)",
    "modes": "INSERT INTO guild_settings (guild_id, mode) VALUES (1, 'request'); INSERT INTO optouts VALUES (11, 1.0)",
    "shared": "UPDATE detections SET clip_path = 'db:1' WHERE id = 1;"
    " INSERT INTO clips VALUES (1, 10, '.ogg', 'OggS'::bytea);"
    " INSERT INTO model_pointer VALUES (1, 'r1', 'base', 1.0)",
    "auto_role": "UPDATE guild_settings SET auto_role_id = 77 WHERE guild_id = 1",
    "forgotten": "INSERT INTO forgotten VALUES (99, 2000.0); INSERT INTO bot_state VALUES ('retrain_ended', '5.5')",
    "transcripts": "UPDATE guild_settings SET transcripts = 1, language = 'pl' WHERE guild_id = 1;"
    " UPDATE channel_settings SET transcripts = 0 WHERE channel_id = 5",
}


def script(order: tuple[str, ...], version: int, *, sqlite: bool) -> str:
    """Steps 1 to ``version`` of ``order``, each with its version row and then the rows a bot stored."""
    lines = ["CREATE TABLE schema_version (version INTEGER NOT NULL)"]
    for number, step in enumerate(order[:version], 1):
        lines += [*STEPS[step], f"INSERT INTO schema_version (version) VALUES ({number})"]
        lines += [ROWS[step]] if step in ROWS else []
    text = ";\n".join(lines) + ";"
    if sqlite:  # the words SQLite's migrations used for these types
        text = text.replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY").replace("BIGINT", "INTEGER")
        text = text.replace("DOUBLE PRECISION", "REAL")
    return text


def make_sqlite(path, version: int) -> tuple[str, ...]:
    """A SQLite file at (old) ``version`` with its rows; the steps it has."""
    con = sqlite3.connect(path)
    con.executescript(script(SQLITE_ORDER, version, sqlite=True))
    con.commit()
    con.close()
    return SQLITE_ORDER[:version]


async def make_postgres(url: str, version: int) -> tuple[str, ...]:
    """An empty PostgreSQL database ``url`` brought to (old) ``version`` with its rows; the steps it has."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(script(POSTGRES_ORDER, version, sqlite=False))
    finally:
        await conn.close()
    return POSTGRES_ORDER[:version]
