"""Files that are either whole or absent: the one atomic write every saver in the project goes through."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(
    path: str | os.PathLike, data: bytes, *, durable: bool = False, prefix: str = ".tmp-"
) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``, so a reader, or a
    process killed at any moment, sees the old file or the new one, never half of one. ``durable`` also
    fsyncs before the rename (for what must survive a power cut: models, the live-model pointer). The folder
    is created; a failed write leaves no temp file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
