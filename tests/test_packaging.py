"""What ships beside the code: the licence, and a compose file that refuses to start without a token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_code_is_mit_and_the_model_keeps_its_corpora_licence():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert "CC BY-NC-SA 4.0" in text  # the shipped model and the demo clips are not MIT
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"]["text"].startswith("MIT") and "LICENSE" in project["license"]["text"]


def test_compose_refuses_to_start_without_a_token():
    """``${VAR:?message}``: Compose stops with the message instead of starting shards that restart in a loop."""
    compose = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    (line,) = [line for line in compose.splitlines() if re.match(r"\s*DISCORD_TOKEN:", line)]
    assert re.search(r"\$\{DISCORD_TOKEN:\?[^}]*DISCORD_TOKEN[^}]*\}", line), line


def test_asyncpg_is_the_postgres_extra_and_the_migrations_ship():
    """SQLite needs no server and no driver beyond the default install; CI (``.[dev]``) tests PostgreSQL too.
    The migrations are package data, or an installed bot could not create its tables."""
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project = config["project"]
    assert not any(d.startswith("asyncpg") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("asyncpg") for d in extras["postgres"])
    assert any(re.fullmatch(r"ser-bot\[.*\bpostgres\b.*\]", d) for d in extras["dev"])
    patterns = config["tool"]["setuptools"]["package-data"]["bot"]
    sql = sorted((ROOT / "bot").glob("storage/migrations/*"))
    assert sql and all(any(f.relative_to(ROOT / "bot").match(p) for p in patterns) for f in sql), sql
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG SER_EXTRAS=postgres" in dockerfile and 'pip install ".[${SER_EXTRAS}]"' in dockerfile
    assert "SER_EXTRAS: postgres" in (ROOT / "compose.yaml").read_text(encoding="utf-8")


def test_every_file_the_code_reads_ships_in_the_package(tmp_path):
    """A wheel holds what ``build_py`` copies: every data file under ``ser_core/`` and ``bot/`` (the model, the
    language table, the migrations, the demo voices) must be among them, or an installed bot fails at run time
    where the checkout worked."""
    import subprocess
    import sys

    egg, lib = tmp_path / "egg", tmp_path / "lib"
    egg.mkdir()
    # A fresh egg-info: the checkout's own (from ``pip install -e``) lists files an earlier config shipped.
    setup = [sys.executable, "-c", "from setuptools import setup; setup()", "-q"]
    run = subprocess.run(
        [*setup, "egg_info", "--egg-base", egg, "build_py", "--build-lib", lib],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    shipped = {p.relative_to(lib) for p in lib.rglob("*") if p.is_file()}
    data = {
        p.relative_to(ROOT)
        for package in ("ser_core", "bot")
        for p in (ROOT / package).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc")
    }
    assert {Path("ser_core/models/default.npz"), Path("ser_core/whisper_languages.json")} <= data
    assert data - shipped == set()
