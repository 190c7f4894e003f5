"""Synthetic test signals (no data set needed)."""

from __future__ import annotations

import numpy as np

SR = 16_000


def tone(
    freq: float = 220.0,
    seconds: float = 2.0,
    sr: int = SR,
    amp: float = 0.3,
    vibrato: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A voiced-speech-like test signal: a harmonic tone with slow amplitude modulation, float32."""
    t = np.arange(int(seconds * sr)) / sr
    f = freq * (1 + vibrato * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t + seed)
    return (amp * y * env / 1.5).astype(np.float32)


def noise(seconds: float = 2.0, sr: int = SR, amp: float = 0.2, seed: int = 0) -> np.ndarray:
    return (
        (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32).clip(-1, 1)
    )


def random_model(
    *,
    seed: int = 0,
    n: int = 96,
    hidden: tuple[int, ...] = (16,),
    max_iter: int = 30,
    fit_seed: int = 0,
    speakers: int = 0,
    min_evidence: float = 1.0,
    card: dict | None = None,
    preset: str = "rich",
):
    """A tiny model fitted on ``n`` random vectors of the 'rich' preset's size, labels cycling through the
    eight emotions (``preset``'s size): fast, independent of the shipped model, and its predictions differ
    between clips.
    With ``speakers`` > 0 it also gets an adapted head (``fit_adaptive``) that answers from ``min_evidence``."""
    from ser_core import EMOTIONS
    from ser_core.adapt import AdaptConfig
    from ser_core.presets import get_preset
    from ser_core.train import MLPParams, fit, fit_adaptive

    cfg = get_preset(preset)
    X = np.random.default_rng(seed).standard_normal((n, cfg.dim))
    y = [EMOTIONS[i % len(EMOTIONS)] for i in range(n)]
    params = MLPParams(hidden=hidden, max_iter=max_iter)
    card = card if card is not None else {"data": "random (tests)"}
    if speakers:
        groups = np.array([f"s{i % speakers}" for i in range(n)])
        return fit_adaptive(
            X,
            y,
            groups,
            features=cfg,
            params=params,
            seed=fit_seed,
            adapt=AdaptConfig(min_evidence=min_evidence),
            card=card,
        )
    return fit(X, y, features=cfg, params=params, seed=fit_seed, card=card)
