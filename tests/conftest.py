"""Shared fixtures: synthetic audio made in the test, and the optional RAVDESS folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from synth import tone


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Keep the feature cache of the test run out of the user's home."""
    old = os.environ.get("SER_CACHE_DIR")
    os.environ["SER_CACHE_DIR"] = str(tmp_path_factory.mktemp("ser-cache"))
    yield
    if old is None:
        os.environ.pop("SER_CACHE_DIR", None)
    else:
        os.environ["SER_CACHE_DIR"] = old


@pytest.fixture
def speechlike():
    return tone(180.0, 2.5, vibrato=0.02)


@pytest.fixture(scope="session")
def ravdess_dir() -> Path:
    """The RAVDESS folder from SER_RAVDESS_DIR; tests using it skip cleanly without it."""
    d = os.environ.get("SER_RAVDESS_DIR")
    if not d or not Path(d).is_dir():
        pytest.skip("SER_RAVDESS_DIR is not set to the RAVDESS folder")
    return Path(d)


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The folder holding the corpora (ravdess/, nemo/, savee/, emodb/) from SER_CORPORA_DIR; tests using it skip
    cleanly without it."""
    d = os.environ.get("SER_CORPORA_DIR")
    if not d or not (Path(d) / "nemo").is_dir():
        pytest.skip("SER_CORPORA_DIR is not set to the folder holding ravdess/ and nemo/")
    return Path(d)
