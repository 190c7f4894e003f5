"""Augmentation of training clips: pure functions, signal → signal, deterministic for a given ``rng``.

Applied to training folds only (``dataset`` augments the rows of training clips after the split; test clips
are never augmented). Each augmentation draws its own strength from ``rng``:

- ``opus``: OGG/Opus round trip at 48 kHz mono, libsndfile compression level 0.5–1.0 (about 16–40 kbit/s).
- ``pitch``: pitch shift by ±1–3 semitones, tempo kept (librosa's phase vocoder + resampling).
- ``speed``: speed perturbation by 0.9–1.1 (tempo and pitch together, as in Kaldi recipes); length changes.
- ``noise``: additive noise at 5–30 dB SNR: white, pink or brown, or "self-babble" (time-reversed, shifted
  copies of the clip itself, so no other speaker's voice enters a training clip).
- ``gain``: ±3–12 dB, clipped to full scale where it would clip.
- ``reverb``: a synthetic room (exponentially decaying noise, RT60 0.15–0.7 s) convolved with the clip.
- ``mix``: a chain as a phone in a room would produce it: speed (p = 0.5) or pitch (p = 0.25), reverb (0.3),
  noise (0.6), gain (0.5), then the Opus round trip (0.8); at least one of them.
"""

from __future__ import annotations

import numpy as np
import soxr
from scipy.signal import fftconvolve

from .conditions import add_noise, coloured_noise, gain, opus_roundtrip
from .errors import ConfigError

AUGMENTATIONS = ("opus", "pitch", "speed", "noise", "gain", "reverb", "mix")
#: The order in which ``mix`` applies its parts, with the probability of each.
MIX_CHAIN = (("speed", 0.5), ("pitch", 0.25), ("reverb", 0.3), ("noise", 0.6), ("gain", 0.5), ("opus", 0.8))
#: Bump when an augmentation changes what it computes: cached vectors of augmented copies are keyed by it.
AUGMENT_VERSION = 1


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """``y`` [shape=(n,)] shifted by ``semitones`` at the same tempo and RMS; shape (n,), float32."""
    import librosa

    out = librosa.effects.pitch_shift(y.astype(np.float32), sr=sr, n_steps=semitones, res_type="soxr_hq")
    # The phase vocoder loses about a third of the level; restore it so that pitch is all that changes.
    out *= np.sqrt(np.mean(y.astype(np.float64) ** 2) / (np.mean(out.astype(np.float64) ** 2) + 1e-20))
    return np.clip(out, -1, 1).astype(np.float32)


def speed(y: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """``y`` played ``factor`` times faster (pitch rises with it): shape ``(round(n / factor),)``, float32."""
    if factor <= 0:
        raise ConfigError(f"speed factor must be positive, got {factor}")
    # Resampling from sr to sr/factor and playing back at sr is exactly a tape-speed change.
    return soxr.resample(y.astype(np.float32), sr, sr / factor).astype(np.float32)


def room_impulse(sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path followed by Gaussian noise decaying 60 dB in
    ``rt60`` seconds (diffuse tail starting 2–10 ms later, 10–3 dB below the direct path). Shape
    ``(≈ rt60 · sr,)``."""
    n = max(2, int(rt60 * sr))
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)  # amplitude falls 60 dB (10^-3) at t = rt60
    onset = int(rng.uniform(0.002, 0.010) * sr)
    tail[: onset + 1] = 0.0
    tail *= 10 ** (-rng.uniform(3, 10) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)
    tail[0] = 1.0
    return tail.astype(np.float32)


def reverb(y: np.ndarray, sr: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """``y`` [shape=(n,)] in a synthetic room of reverberation time ``rt60`` s; same length and RMS."""
    wet = fftconvolve(y.astype(np.float64), room_impulse(sr, rt60, rng))[: y.size]
    rms_in = np.sqrt(np.mean(y.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(wet**2)) + 1e-12
    return np.clip(wet * (rms_in / rms_out), -1, 1).astype(np.float32)


def self_babble(y: np.ndarray, rng: np.random.Generator, voices: int = 4) -> np.ndarray:
    """Babble made of the clip itself: ``voices`` time-reversed copies at random circular shifts, unit RMS,
    shape (n,). Speech-like in spectrum and rhythm, yet adds no other speaker to the clip."""
    rev = y[::-1].astype(np.float64)
    out = sum(np.roll(rev, int(rng.integers(0, max(1, y.size)))) for _ in range(voices))
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def augment(name: str, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Apply augmentation ``name`` (one of ``AUGMENTATIONS``) with a strength drawn from ``rng``."""
    if name == "opus":
        return opus_roundtrip(y, sr, level=float(rng.uniform(0.5, 1.0)))
    if name == "pitch":
        return pitch_shift(y, sr, float(rng.choice([-1, 1]) * rng.uniform(1.0, 3.0)))
    if name == "speed":
        return speed(y, sr, float(rng.uniform(0.9, 1.1)))
    if name == "noise":
        kind = int(rng.integers(0, 4))
        noise = self_babble(y, rng) if kind == 3 else coloured_noise(y.size, float(kind), rng)
        return add_noise(y, noise, float(rng.uniform(5.0, 30.0)))
    if name == "gain":
        return gain(y, float(rng.choice([-1, 1]) * rng.uniform(3.0, 12.0)))
    if name == "reverb":
        return reverb(y, sr, float(rng.uniform(0.15, 0.7)), rng)
    if name == "mix":
        draws = rng.random(len(MIX_CHAIN))
        chosen = [part for (part, p), u in zip(MIX_CHAIN, draws, strict=True) if u < p]
        if not chosen:
            chosen = [MIX_CHAIN[int(rng.integers(0, len(MIX_CHAIN)))][0]]
        if "speed" in chosen and "pitch" in chosen:
            chosen.remove("pitch")  # speed already moves the pitch
        for part in chosen:
            y = augment(part, y, sr, rng)
        return y
    raise ConfigError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}")


def parse_augment(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"opus,noise"`` → ``("opus", "noise")``; ``"none"``/empty → ``()``; ``ConfigError`` naming unknown ones."""
    if spec is None:
        return ()
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names in (["none"], []):
        return ()
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(
            f"unknown augmentation {', '.join(map(repr, unknown))}; choose from: "
            f"{', '.join(AUGMENTATIONS)} (or none)"
        )
    return tuple(dict.fromkeys(names))
