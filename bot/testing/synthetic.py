"""A synthetic voice-like signal, for tests and the benchmark when no real speech is at hand."""

from __future__ import annotations

import numpy as np


def synthetic_voice(seconds: float = 3.0, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a gliding harmonic tone with syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * (t < seconds - 0.1)
    y = 0.3 * y / np.abs(y).max() * envelope + 0.002 * rng.standard_normal(t.size)
    return y.astype(np.float32)
