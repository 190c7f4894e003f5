"""Feedback on results and consented training clips: the short-lived clip cache and safe clip paths.

Nothing here talks to Discord. A clip file's name is built only from integers (the user id and the result
row id) and an extension chosen from the audio's magic bytes out of a fixed allow-list, so nothing a user
controls (an attachment's file name, say ``../../x.ogg``) ever reaches the file system.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ser_core.audio import sniff
from ser_core.persist import atomic_write

#: Container (as ``ser_core.audio.sniff`` names it) → the extension a kept clip gets.
EXTENSIONS: dict[str, str] = {
    "wav": ".wav",
    "flac": ".flac",
    "ogg": ".ogg",
    "mp3": ".mp3",
    "aac": ".aac",
    "mp4": ".m4a",
    "webm": ".webm",
    "aiff": ".aiff",
    "caf": ".caf",
    "asf": ".wma",
    "amr": ".amr",
}
FALLBACK_EXTENSION = ".audio"
FEEDBACK_DIR = "feedback"


def extension_for(data: bytes) -> str:
    """The allow-listed extension for audio ``data`` (from its magic bytes, never from a file name)."""
    return EXTENSIONS.get(sniff(data), FALLBACK_EXTENSION)


def clip_relpath(user_id: int, detection_id: int, ext: str) -> str:
    """``feedback/<user_id>/<detection_id><ext>`` (relative to the data folder); ValueError for anything
    that is not a positive integer or an allow-listed extension."""
    uid, did = int(user_id), int(detection_id)
    if uid <= 0 or did <= 0:
        raise ValueError("ids must be positive integers")
    if ext not in EXTENSIONS.values() and ext != FALLBACK_EXTENSION:
        raise ValueError(f"extension {ext!r} is not allowed")
    return f"{FEEDBACK_DIR}/{uid}/{did}{ext}"


def resolve_clip(data_dir: Path, relpath: str) -> Path:
    """The absolute path of a stored clip; ValueError if it would leave ``data_dir/feedback``."""
    root = (Path(data_dir) / FEEDBACK_DIR).resolve()
    path = (Path(data_dir) / relpath).resolve()
    if root not in path.parents:
        raise ValueError(f"clip path {relpath!r} is outside {root}")
    return path


def write_clip(data_dir: Path, relpath: str, data: bytes) -> Path:
    """Write ``data`` atomically (``ser_core.persist.atomic_write``) at ``relpath`` under the data folder."""
    return atomic_write(resolve_clip(data_dir, relpath), data)


def delete_clip(data_dir: Path, relpath: str) -> bool:
    """Delete one stored clip; True if a file went. Paths outside the feedback folder are ignored."""
    try:
        path = resolve_clip(data_dir, relpath)
    except ValueError:
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def delete_user_folder(data_dir: Path, user_id: int) -> int:
    """Delete every file in ``feedback/<user_id>/`` (and the folder); return how many files went."""
    folder = Path(data_dir) / FEEDBACK_DIR / str(int(user_id))
    if not folder.is_dir():
        return 0
    n = 0
    for f in folder.iterdir():
        if f.is_file():
            f.unlink(missing_ok=True)
            n += 1
    with contextlib.suppress(OSError):
        folder.rmdir()
    return n


@dataclass
class ClipCache:
    """The bytes of recently analysed notes, keyed by result row id, so a later "keep my clip" can save
    them. Bounded in entries, total bytes and age; nothing here outlives the process."""

    max_entries: int = 64
    max_bytes: int = 128 * 1024 * 1024
    ttl_s: float = 15 * 60
    clock: Callable[[], float] = time.monotonic
    _items: OrderedDict[int, tuple[bytes, float, int | None]] = field(default_factory=OrderedDict)
    _size: int = 0

    def put(self, key: int, data: bytes, *, owner: int | None = None) -> None:
        self.pop(key)
        if len(data) > self.max_bytes:
            return
        self._items[key] = (data, self.clock(), owner)
        self._size += len(data)
        self._prune()

    def forget_owner(self, owner: int) -> int:
        """Drop every clip of ``owner`` (``/emotion forget``); return how many went."""
        keys = [k for k, (_, _, o) in self._items.items() if o == owner]
        for k in keys:
            self.pop(k)
        return len(keys)

    def get(self, key: int) -> bytes | None:
        self._prune()
        item = self._items.get(key)
        return None if item is None else item[0]

    def pop(self, key: int) -> bytes | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self._size -= len(item[0])
        return item[0]

    def __len__(self) -> int:
        return len(self._items)

    def _prune(self) -> None:
        cutoff = self.clock() - self.ttl_s
        while self._items:
            key, (_, at, _) = next(iter(self._items.items()))
            if at >= cutoff and len(self._items) <= self.max_entries and self._size <= self.max_bytes:
                break
            self.pop(key)
