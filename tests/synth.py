"""Synthetic test signals (no data set needed)."""

from __future__ import annotations

import numpy as np

SR = 16_000


def tone(freq: float = 220.0, seconds: float = 2.0, sr: int = SR, amp: float = 0.3, vibrato: float = 0.0,
         seed: int = 0) -> np.ndarray:
    """A voiced-speech-like test signal: a harmonic tone with slow amplitude modulation, float32."""
    t = np.arange(int(seconds * sr)) / sr
    f = freq * (1 + vibrato * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t + seed)
    return (amp * y * env / 1.5).astype(np.float32)


def noise(seconds: float = 2.0, sr: int = SR, amp: float = 0.2, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32).clip(-1, 1)
