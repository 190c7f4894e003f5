"""A fresh PostgreSQL database per test, on the server ``SER_TEST_POSTGRES_URL`` names (default: the one this
project's machines run on 127.0.0.1:5432 with trust auth). Tests that need one skip with a one-line reason
where none is reachable. ``SER_TEST_DRIVER=postgres`` runs every bot test on PostgreSQL instead of SQLite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
from functools import lru_cache

ADMIN_URL = os.environ.get("SER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def driver() -> str:
    return os.environ.get("SER_TEST_DRIVER", "sqlite")


@lru_cache(maxsize=1)
def unreachable() -> str | None:
    """Why no test database can be made here (one line), or None."""
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"

    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=3)
        await conn.close()

    try:  # in a thread of its own: callers may be inside a running event loop
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as exc:
        return f"no PostgreSQL at {ADMIN_URL.rsplit('@', 1)[-1]} ({type(exc).__name__})"
    return None


def url_of(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def create_database() -> str:
    """A new empty database; its URL."""
    import asyncpg

    name = f"ser_test_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url_of(name)


@contextlib.asynccontextmanager
async def fresh_database(*, required_by: str | None = None):
    """The URL of a new empty database, dropped at the end. Where no server is reachable the test is skipped
    with the one-line reason, or failed when ``required_by`` names what demanded one."""
    import pytest

    reason = unreachable()
    if reason:
        if required_by:
            pytest.fail(f"{required_by} but {reason}")
        pytest.skip(reason)
    url = await create_database()
    try:
        yield url
    finally:
        await drop_database(url)


async def drop_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[-1]
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        with contextlib.suppress(Exception):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def cut_connections(url: str) -> int:
    """Terminate every session on ``url``'s database, as a server restart does; how many."""
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        return len(
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                url.rsplit("/", 1)[-1],
            )
        )
    finally:
        await conn.close()
