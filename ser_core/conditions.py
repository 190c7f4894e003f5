"""Deployment conditions applied to test clips: what Discord and real rooms do to a voice.

Pure functions, signal → signal at the same rate, deterministic for a given ``rng``:

- ``discord``: round trip through OGG/Opus at 48 kHz mono, about 32 kbit/s, as voice messages are recorded.
- ``noisy20`` / ``noisy10``: ``discord`` plus noise at 20 / 10 dB SNR, half coloured (pink or brown) and half
  babble mixed from *training* speakers only (``babble_bank`` refuses test speakers).
- ``gain+12`` / ``gain-12``: ±12 dB, clipped to full scale where it would clip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import soxr

from .audio import decode, encode
from .errors import ConfigError

CONDITIONS = ("clean", "discord", "noisy20", "noisy10", "gain+12", "gain-12")
DISCORD_RATE = 48_000
#: libsndfile's Opus compression level that gives about 32 kbit/s for speech.
DISCORD_OPUS_LEVEL = 0.9


def opus_roundtrip(y: np.ndarray, sr: int, level: float = DISCORD_OPUS_LEVEL) -> np.ndarray:
    """Encode ``y`` [shape=(n,)] as a 48 kHz mono OGG/Opus voice message (libsndfile compression ``level``
    in [0, 1]; the default gives ~32 kbit/s) and decode it back to ``sr``; the result has the same length."""
    up = soxr.resample(y.astype(np.float32), sr, DISCORD_RATE)
    data = encode(np.clip(up, -1, 1), DISCORD_RATE, "OGG", "OPUS", compression_level=level)
    out = decode(data, sr=sr, check_silence=False)
    return _fit_length(out, y.size)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if x.size >= n else np.pad(x, (0, n - x.size))


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^exponent (1 = pink, 2 = brown), unit RMS, shape (n,)."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n=n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def babble_bank(
    signals: Sequence[np.ndarray], speakers: Sequence[str], test_speakers: set[str]
) -> list[np.ndarray]:
    """Signals usable for babble: ``ConfigError`` if any comes from a test speaker."""
    leaked = sorted(set(speakers) & set(test_speakers))
    if leaked:
        raise ConfigError(f"babble must come from training speakers only; got test speakers {leaked}")
    return list(signals)


def babble(bank: Sequence[np.ndarray], n: int, rng: np.random.Generator, voices: int = 5) -> np.ndarray:
    """Sum of ``voices`` random excerpts of ``bank`` (cycled to length ``n``), unit RMS, shape (n,)."""
    out = np.zeros(n, dtype=np.float64)
    for i in rng.choice(len(bank), size=min(voices, len(bank)), replace=False):
        s = np.resize(bank[i], n + bank[i].size)
        start = int(rng.integers(0, bank[i].size))
        out += s[start : start + n]
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def add_noise(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y + k·noise`` with ``k`` set so that signal power / noise power = ``snr_db``; clipped to ±1."""
    ps = np.mean(y.astype(np.float64) ** 2)
    pn = np.mean(noise.astype(np.float64) ** 2) + 1e-20
    k = np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    return np.clip(y + k * noise[: y.size], -1, 1).astype(np.float32)


def gain(y: np.ndarray, db: float) -> np.ndarray:
    """``y`` scaled by ``db`` decibels, clipped to full scale."""
    return np.clip(y * 10 ** (db / 20), -1, 1).astype(np.float32)


def apply(
    name: str, y: np.ndarray, sr: int, rng: np.random.Generator, bank: Sequence[np.ndarray] = ()
) -> np.ndarray:
    """Apply condition ``name`` (one of ``CONDITIONS``) to ``y``."""
    if name == "clean":
        return y
    if name == "discord":
        return opus_roundtrip(y, sr)
    if name in ("noisy20", "noisy10"):
        if not bank:
            raise ConfigError("noisy conditions need a babble bank of training clips")
        noise = (
            coloured_noise(y.size, float(rng.choice([1.0, 2.0])), rng)
            if rng.random() < 0.5
            else babble(bank, y.size, rng)
        )
        return opus_roundtrip(add_noise(y, noise, 20.0 if name == "noisy20" else 10.0), sr)
    if name in ("gain+12", "gain-12"):
        return gain(y, 12.0 if name == "gain+12" else -12.0)
    raise ConfigError(f"unknown condition {name!r}; choose from {', '.join(CONDITIONS)}")
