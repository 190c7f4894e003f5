"""Which model is live: ``SER_DATA_DIR/models/current.json`` → {"path": ..., "previous": ...}.

A swap writes the new model file first, then replaces the small pointer file atomically (temp file +
``os.replace``), so a bot killed at any moment restarts with either the old or the new model, never half of
one. A pointer to a missing or damaged file is ignored at start-up (with a log line) and the shipped model
serves instead. Paths inside the models folder are stored by name (the folder can move, e.g. a Docker
volume); ``None`` means the model shipped with ser_core.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ser_core import Model, ModelError, load_model
from ser_core.persist import atomic_write

log = logging.getLogger(__name__)

MODELS_DIR = "models"
POINTER = "current.json"


@dataclass(frozen=True)
class Pointer:
    path: Path | None  # None: the shipped model
    previous: Path | None


class ModelStore:
    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / MODELS_DIR
        self.pointer_path = self.dir / POINTER

    def candidate_path(self, version: str) -> Path:
        if not version.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"bad model version {version!r}")
        return self.dir / f"candidate-{version}.npz"

    def read(self) -> Pointer | None:
        """The pointer, or None if there is none or it is unreadable (logged)."""
        try:
            raw = json.loads(self.pointer_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.error("ignoring %s: %s", self.pointer_path, exc)
            return None
        if not isinstance(raw, dict):
            log.error("ignoring %s: not a JSON object", self.pointer_path)
            return None
        return Pointer(self._decode(raw.get("path")), self._decode(raw.get("previous")))

    def write(self, path: Path | None, previous: Path | None) -> None:
        """Atomically point at ``path`` (None: shipped), remembering ``previous``."""
        body = json.dumps({"path": self._encode(path), "previous": self._encode(previous)}, indent=1)
        atomic_write(self.pointer_path, (body + "\n").encode("utf-8"), durable=True, prefix=".current-")

    def promote(self, candidate: Path, version: str) -> Path:
        """Move a candidate into place as ``model-<version>.npz`` (same folder: an atomic rename)."""
        target = self.dir / f"model-{version}.npz"
        if Path(candidate).resolve().parent != self.dir.resolve():
            raise ValueError(f"candidate {candidate} is not in {self.dir}")
        os.replace(candidate, target)
        return target

    def clean_stale(self) -> int:
        """Delete candidates and job files of runs that never finished (the bot was stopped meanwhile)."""
        if not self.dir.is_dir():
            return 0
        stale = [
            *self.dir.glob("candidate-*.npz"),
            *self.dir.glob(".job-*.json"),
            *self.dir.glob(".current-*"),
        ]
        for f in stale:
            f.unlink(missing_ok=True)
        return len(stale)

    def load_current(self) -> tuple[Model, Path | None] | None:
        """The model the pointer names and its path, or None (no pointer, or it does not load: logged)."""
        ptr = self.read()
        if ptr is None:
            return None
        try:
            return load_model(ptr.path), ptr.path
        except ModelError as exc:
            log.error(
                "the model named by %s does not load (%s); using the shipped model", self.pointer_path, exc
            )
            return None
        except Exception:  # a hostile or damaged file must not keep the bot from starting
            log.exception("the model named by %s does not load; using the shipped model", self.pointer_path)
            return None

    def _encode(self, path: Path | None) -> str | None:
        if path is None:
            return None
        path = Path(path).resolve()
        return path.name if path.parent == self.dir.resolve() else str(path)

    def _decode(self, value) -> Path | None:
        if not value or not isinstance(value, str):
            return None
        p = Path(value)
        return p if p.is_absolute() else self.dir / p.name
