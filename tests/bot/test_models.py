"""``ModelManager`` on its own: which model is live at start, install, rollback and adopting what another
process published, over an in-memory pointer (no Discord, no database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from synth import random_model

import ser_core
from bot.models import BASE, ModelManager
from bot.storage import ModelPointer
from ser_core import ModelError


class PointerStorage:
    """The model calls of ``Storage``: a pointer, and model files by reference. ``shared`` keeps published
    files in a store of its own (as PostgreSQL keeps rows), so the candidate file may go."""

    def __init__(self, store: Path, *, shared: bool = False) -> None:
        self.store = store
        self.shared = shared
        self.pointer: ModelPointer | None = None
        self.published: list[tuple[str, str | None]] = []  # (version, previous)

    async def model_pointer(self) -> ModelPointer | None:
        return self.pointer

    async def model_file(self, ref: str | None) -> Path | None:
        if ref is None or ref == BASE:
            return None
        return self.store / f"{ref}.npz" if self.shared else Path(ref)

    async def publish_model(self, path: Path, version: str, *, previous: str | None) -> str:
        ref = version if self.shared else str(path)
        if self.shared:
            shutil.copy(path, self.store / f"{version}.npz")
        self.published.append((version, previous))
        self.pointer = ModelPointer(ref, previous)
        return ref

    async def point_model(self, current: str | None, previous: str | None) -> None:
        self.pointer = ModelPointer(current, previous)


def save_model(folder: Path, version: str, seed: int) -> Path:
    model = random_model(seed=seed, card={"data": "random (tests)", "version": version})
    path = folder / f"{version}.npz"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    broken = folder / "broken.npz"
    broken.write_bytes(b"not a model")
    return {
        "base": save_model(folder, "base", 0),
        "one": save_model(folder, "one", 1),
        "two": save_model(folder, "two", 2),
        "broken": broken,
    }


@pytest.fixture(autouse=True)
def shipped(monkeypatch, files):
    """The base model stands in for the model shipped with ser_core."""
    monkeypatch.setattr(ser_core, "default_model_path", lambda: files["base"])


@pytest.fixture
def storage(tmp_path) -> PointerStorage:
    return PointerStorage(tmp_path)


def candidate(files, name: str, tmp_path: Path) -> Path:
    """A copy of a model file, as the training process leaves one."""
    path = tmp_path / f"candidate-{name}.npz"
    shutil.copy(files[name], path)
    return path


async def test_start_serves_the_shipped_model_without_a_pointer(storage, files):
    manager = ModelManager(storage)
    model = await manager.start()
    assert model.version == "base" and manager.model is model
    assert manager.ref == str(files["base"].resolve())


async def test_start_serves_what_the_pointer_names_and_skips_one_that_does_not_load(storage, files, caplog):
    storage.pointer = ModelPointer(str(files["one"]), None)
    manager = ModelManager(storage)
    assert (await manager.start()).version == "one" and manager.ref == str(files["one"])

    storage.pointer = ModelPointer(str(files["broken"]), str(files["one"]))
    manager = ModelManager(storage)
    assert (await manager.start()).version == "base"
    assert any("does not load" in r.getMessage() for r in caplog.records)


async def test_a_fixed_model_path_wins_over_the_pointer(storage, files, caplog):
    storage.pointer = ModelPointer(str(files["one"]), None)
    manager = ModelManager(storage, fixed=files["two"])
    assert (await manager.start()).version == "two"
    assert any("SER_MODEL_PATH is set" in r.getMessage() for r in caplog.records)
    assert await manager.refresh() is False  # and it never adopts another process's model


async def test_install_publishes_with_the_old_model_to_roll_back_to_then_rollback_restores_it(
    storage, files, tmp_path
):
    manager = ModelManager(storage)
    await manager.start()
    base_ref = manager.ref
    new = await manager.install(candidate(files, "one", tmp_path), "one")
    assert new.version == "one" and manager.model is new
    assert storage.published == [("one", base_ref)] and storage.pointer.previous == base_ref

    back = await manager.rollback()
    assert back.version == "base" and manager.ref == base_ref
    # the pointer now names the rolled-back-from model as previous: a second rollback undoes the first
    assert storage.pointer == ModelPointer(base_ref, str(tmp_path / "candidate-one.npz"))
    assert (await manager.rollback()).version == "one"


async def test_a_candidate_that_does_not_load_changes_nothing(storage, files, tmp_path):
    manager = ModelManager(storage)
    before = await manager.start()
    with pytest.raises(ModelError):
        await manager.install(candidate(files, "broken", tmp_path), "broken")
    assert manager.model is before and storage.published == [] and storage.pointer is None


async def test_rollback_without_a_previous_model_says_so(storage):
    manager = ModelManager(storage)
    await manager.start()
    with pytest.raises(ModelError, match="no previous model"):
        await manager.rollback()


async def test_shared_storage_keeps_the_published_model_and_the_candidate_file_goes(files, tmp_path):
    storage = PointerStorage(tmp_path, shared=True)
    manager = ModelManager(storage)
    await manager.start()
    assert manager.ref == BASE  # the start model is named, not a path: each machine has its own file
    path = candidate(files, "one", tmp_path)
    await manager.install(path, "one")
    assert not path.exists() and manager.ref == "one" and storage.pointer == ModelPointer("one", BASE)


async def test_refresh_adopts_what_another_process_published(storage, files):
    manager = ModelManager(storage)
    await manager.start()
    assert await manager.refresh() is False  # nothing changed

    storage.pointer = ModelPointer(str(files["two"]), None)  # another process installed "two"
    assert await manager.refresh() is True and manager.model.version == "two"
    assert await manager.refresh() is False

    storage.pointer = ModelPointer(str(files["broken"]), str(files["two"]))
    assert await manager.refresh() is False and manager.model.version == "two"  # still serving
