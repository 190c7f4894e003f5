"""Fixtures for the bot tests: a tiny model, synthetic audio, the loopback fake Discord and a running bot."""

from __future__ import annotations

import pg
import pytest
from bot_helpers import serving, start_bot, stop_bot
from synth import random_model

from bot.settings import Settings
from bot.testing.synthetic import synthetic_voice
from ser_core import load_model
from ser_core.audio import encode


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    """A tiny model trained on random vectors: fast, and its predictions differ between clips."""
    model = random_model()
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def model(model_path):
    return load_model(model_path)


@pytest.fixture(scope="session")
def voice_ogg() -> bytes:
    return encode(synthetic_voice(2.5, seed=1), 48_000, "OGG", "OPUS")


@pytest.fixture(scope="session")
def mp3_bytes() -> bytes:
    return encode(synthetic_voice(2.0, seed=2), 48_000, "MP3")


@pytest.fixture
async def postgres_url():
    """A fresh PostgreSQL database for this test (dropped after); skipped where no server is reachable."""
    async with pg.fresh_database() as url:
        yield url


@pytest.fixture
async def database_url():
    """None (SQLite in the data folder) or, with ``SER_TEST_DRIVER=postgres``, a fresh PostgreSQL database."""
    if pg.driver() != "postgres":
        yield None
        return
    async with pg.fresh_database(required_by="SER_TEST_DRIVER=postgres") as url:
        yield url


@pytest.fixture
def settings(tmp_path, model_path, database_url) -> Settings:
    return Settings(
        token="test-token",
        data_dir=tmp_path / "data",
        model_path=model_path,
        admin_ids=frozenset({42}),
        database_url=database_url,
        retrain_cooldown_min=0.0,  # the cooldown has a test of its own
    )


@pytest.fixture
async def fake(monkeypatch):
    async with serving(monkeypatch) as fake:
        yield fake


@pytest.fixture
async def bot(fake, settings, model):
    bot, task = await start_bot(fake, settings, model)
    yield bot
    await stop_bot(bot, task)
