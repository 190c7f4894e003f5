"""Parallel feature extraction with an on-disk cache.

A vector is stored under ``<cache>/<FeatureConfig.key>/<sha256 of the file's bytes>.npy``, so renaming or
moving files costs nothing, a changed file is re-extracted, and a retrain with the same settings reuses
every vector. The cache folder is ``SER_CACHE_DIR`` or ``~/.cache/ser``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from .audio import Limits, decode
from .augment import AUGMENT_VERSION, AUGMENTATIONS
from .augment import augment as apply_augmentation
from .features import FeatureConfig, extract
from .persist import atomic_write

#: Training clips may be longer than chat notes; they are trusted local files.
TRAIN_LIMITS = Limits(max_bytes=200 * 1024 * 1024, max_seconds=600.0, min_seconds=0.05)

ProgressFn = Callable[[int, int], None]


def default_cache_dir() -> Path:
    env = os.environ.get("SER_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ser"


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _entry(cache_dir: Path, cfg: FeatureConfig, digest: str, tag: str = "") -> Path:
    return cache_dir / cfg.key / digest[:2] / f"{digest}{tag}.npy"


def _save(path: Path, v: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, v, allow_pickle=False)
    atomic_write(path, buf.getvalue())


def cached_vector(
    cache_dir: Path | None, cfg: FeatureConfig, digest: str, tag: str, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """The vector stored for (``cfg``, content ``digest``, ``tag``), or ``compute()`` stored there now."""
    entry = _entry(cache_dir, cfg, digest, tag) if cache_dir else None
    if entry is not None and entry.is_file():
        try:
            v = np.load(entry, allow_pickle=False)
            if v.shape == (cfg.dim,):
                return v
        except (OSError, ValueError):
            pass  # a torn or foreign entry: recompute and overwrite it
    v = compute()
    if entry is not None:
        _save(entry, v)
    return v


def features_for_file(
    path: str | Path, cfg: FeatureConfig, cache_dir: Path | None, augment: str | None = None
) -> np.ndarray:
    """Feature vector of one file, from the cache when present. Shape ``(cfg.dim,)``.

    With ``augment`` (a name from ``ser_core.augment.AUGMENTATIONS``), the vector of an augmented copy whose
    random strength is seeded by the file's content and the augmentation's name: the same copy every run,
    cached beside the original's vector.
    """
    data = Path(path).read_bytes()
    digest = content_hash(data)

    def compute() -> np.ndarray:
        y = decode(data, sr=cfg.sr, limits=TRAIN_LIMITS, check_silence=False)
        if augment:
            rng = np.random.default_rng([int(digest[:16], 16), AUGMENTATIONS.index(augment)])
            y = apply_augmentation(augment, y, cfg.sr, rng)
        return extract(y, cfg)

    return cached_vector(cache_dir, cfg, digest, f".{augment}-a{AUGMENT_VERSION}" if augment else "", compute)


def forget(digests: Sequence[str], cache_dir: Path | None = None) -> int:
    """Delete every cached vector (each preset, each augmented copy, each condition) of the clips whose
    content digests are ``digests``; return how many files went. A forgotten person's kept clips leave
    nothing derived from them behind."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not root.is_dir():
        return 0
    gone = 0
    for digest in set(digests):
        if len(digest) != 32 or not all(c in "0123456789abcdef" for c in digest):
            continue  # never a pattern built from anything but a digest
        for f in root.glob(f"*/{digest[:2]}/{digest}*.npy"):
            f.unlink(missing_ok=True)
            gone += 1
    return gone


def _die_with_parent() -> None:
    """A feature worker gets SIGTERM when the process that started it dies (Linux), so a training process
    that is killed leaves no workers behind."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def warm_kernels(cfg: FeatureConfig, augment: str | None = None) -> None:
    """Compile, in this process, the numba kernels that ``cfg``'s hand-made features and ``augment`` run.

    librosa caches its numba kernels on disk, a ``guvectorize`` kernel as two files written one after the other.
    Two workers compiling the same kernel at once can leave a pair from different processes, after which every
    process that loads it segfaults, this one included, until the files are deleted (numba/numba#10128; seen
    here on a fresh install: ``compact-trim`` features of RAVDESS with two workers). Run before starting
    workers, it leaves them nothing to compile: forked workers inherit the kernels, others load complete files.
    The encoder part is skipped (it has no numba kernels, and loading it here would only cost memory)."""
    handmade = not cfg.encoder or cfg.handcrafted
    if not (handmade or augment):
        return
    t = np.arange(cfg.sr, dtype=np.float32) / cfg.sr
    y = (0.1 * np.sin(2 * np.pi * 150 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    if augment:
        y = apply_augmentation(augment, y, cfg.sr, np.random.default_rng(0))
    if handmade:
        extract(y, replace(cfg, encoder=""))


def _worker(args: tuple[str, dict, str | None, str | None]) -> np.ndarray:
    path, cfg_dict, cache, augment = args
    return features_for_file(path, FeatureConfig.from_dict(cfg_dict), Path(cache) if cache else None, augment)


def extract_files(
    paths: Sequence[str | Path],
    cfg: FeatureConfig,
    *,
    cache_dir: Path | None | bool = True,
    n_jobs: int | None = None,
    progress: bool | ProgressFn = True,
    desc: str = "features",
    augment: str | None = None,
) -> np.ndarray:
    """Feature vectors of many files (or of their ``augment``-ed copies), in order: shape
    ``(len(paths), cfg.dim)``.

    ``cache_dir=True`` uses the default cache, ``False``/``None`` disables it. ``n_jobs`` processes
    (default: all cores). ``progress`` is ``True`` for a tqdm bar on stderr, or a callback ``(done, total)``.
    """
    cache = default_cache_dir() if cache_dir is True else (Path(cache_dir) if cache_dir else None)
    n = len(paths)
    out = np.zeros((n, cfg.dim), dtype=np.float32)
    n_jobs = max(1, min(n_jobs or os.cpu_count() or 1, n or 1))
    bar = None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=desc, unit="clip", leave=False, dynamic_ncols=True)
    callback = progress if callable(progress) else None

    def tick(i: int) -> None:
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(i + 1, n)

    try:
        if n_jobs == 1 or n < 8:
            for i, p in enumerate(paths):
                out[i] = features_for_file(p, cfg, cache, augment)
                tick(i)
        else:
            args = [(str(p), cfg.to_dict(), str(cache) if cache else None, augment) for p in paths]
            warm_kernels(cfg, augment)
            with ProcessPoolExecutor(max_workers=n_jobs, initializer=_die_with_parent) as pool:
                for i, v in enumerate(pool.map(_worker, args, chunksize=8)):
                    out[i] = v
                    tick(i)
    finally:
        if bar is not None:
            bar.close()
    return out
