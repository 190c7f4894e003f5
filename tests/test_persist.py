"""``persist.atomic_write``: the old file or the new one, never half, and no temp file left behind."""

from __future__ import annotations

import os

import pytest

from ser_core.persist import atomic_write


@pytest.mark.parametrize("durable", [False, True])
def test_writes_replaces_and_creates_the_folder(tmp_path, durable):
    path = tmp_path / "a" / "b" / "f.bin"
    assert atomic_write(path, b"one", durable=durable) == path and path.read_bytes() == b"one"
    atomic_write(path, b"two", durable=durable)
    assert path.read_bytes() == b"two" and os.listdir(path.parent) == ["f.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    atomic_write(path, b"old")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new", durable=True)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.json"]
