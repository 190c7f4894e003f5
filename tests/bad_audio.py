"""A corpus of bad (and a few awkward but valid) audio files, generated here: nothing is downloaded.

Each case names the file as a user would upload it, the content type Discord would declare, the bytes, and the
expected outcome: the exact ``ser_core.errors`` class, or ``None`` for "analysed". Used by
``tests/test_robustness.py`` (``Model.predict`` and ``ser predict``) and ``tests/bot/test_bot_robustness.py``
(the bot's reply); tests/ is on ``sys.path``, as for ``synth``.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import soundfile as sf

from ser_core.audio import encode
from ser_core.conditions import coloured_noise
from ser_core.errors import (
    CorruptAudioError,
    EmptyAudioError,
    NoSpeechError,
    SerError,
    SilentAudioError,
    TooLongError,
    TooShortError,
    TruncatedAudioError,
    UnsupportedFormatError,
)

#: The duration limit the corpus is judged against (the bot's and ``ser predict``'s default).
MAX_SECONDS = 120.0


@dataclass(frozen=True)
class Case:
    id: str
    filename: str
    content_type: str | None
    data: bytes
    expected: type[SerError] | None  # None: analysed

    @property
    def analysed(self) -> bool:
        return self.expected is None


def voice(seconds: float, sr: int, *, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A voice-like harmonic glide with syllable-rate modulation (float64, mono)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return amp * y / np.abs(y).max() * env + 0.002 * rng.standard_normal(t.size)


def room_noise(seconds: float, sr: int, *, seed: int = 0) -> np.ndarray:
    """No voice at all: pink and brown noise (an air conditioner, traffic) with a little hiss, at −35 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = coloured_noise(n, 1.0, rng) + coloured_noise(n, 2.0, rng) + 0.3 * coloured_noise(n, 0.0, rng)
    return 10 ** (-35 / 20) * x / np.sqrt(np.mean(x**2))


def _wav(y: np.ndarray, sr: int, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype=subtype)
    return buf.getvalue()


def wav_header(*, rate: int, data_bytes: int, channels: int = 1, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM WAV header that *claims* ``rate`` and ``data_bytes`` (whatever follows)."""
    block = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", min(0xFFFFFFFF, 36 + data_bytes))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits)
        + b"data"
        + struct.pack("<I", min(0xFFFFFFFF, data_bytes))
    )


def png() -> bytes:
    """A valid 1x1 PNG."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def long_flac(seconds: float, sr: int = 8_000) -> bytes:
    """A long, loud, slowly warbling tone as 16-bit FLAC: compresses well and encodes in a blink
    (400 s of Opus takes libopus over ten seconds here; libsndfile's Vorbis encoder crashes on it)."""
    t = np.arange(int(seconds * sr)) / sr
    return encode(0.3 * np.sin(2 * np.pi * (200 * t + 5 * np.sin(2 * np.pi * 0.5 * t))), sr, "FLAC")


@lru_cache(maxsize=1)
def corpus() -> tuple[Case, ...]:
    """Every case, built once per process (about a second)."""
    rng = np.random.default_rng(1234)
    ogg = encode(voice(3.0, 48_000, seed=1), 48_000, "OGG", "OPUS")
    mp3 = encode(voice(3.0, 44_100, seed=2), 44_100, "MP3")
    pcm = (voice(2.0, 16_000, seed=3) * 32767).astype("<i2").tobytes()
    t10 = np.arange(10 * 16_000) / 16_000
    nan_inf = voice(2.0, 16_000, seed=4).astype(np.float32)
    nan_inf[1000], nan_inf[5000] = np.nan, np.inf
    stereo = np.stack([voice(2.0, 96_000, seed=5), voice(2.0, 96_000, seed=6)], axis=1)
    return (
        Case("empty", "voice-message.ogg", "audio/ogg", b"", EmptyAudioError),
        Case("random-ogg", "noise.ogg", "audio/ogg", rng.bytes(40_000), UnsupportedFormatError),
        Case("random-mp3", "noise.mp3", "audio/mpeg", rng.bytes(40_000), UnsupportedFormatError),
        Case("random-wav", "noise.wav", "audio/wav", rng.bytes(40_000), UnsupportedFormatError),
        Case("ogg-opus-cut-in-header", "cut.ogg", "audio/ogg", ogg[:60], TruncatedAudioError),
        Case("ogg-opus-cut-midway", "cut-half.ogg", "audio/ogg", ogg[: len(ogg) // 2], None),
        Case("mp3-cut-in-first-frame", "cut.mp3", "audio/mpeg", mp3[:300], CorruptAudioError),
        Case("mp3-cut-midway", "cut-half.mp3", "audio/mpeg", mp3[: len(mp3) // 2], None),
        Case(
            "text-as-mpeg",
            "song.mp3",
            "audio/mpeg",
            b"Hello, this is not audio at all.\n" * 40,
            UnsupportedFormatError,
        ),
        Case("png-as-ogg", "voice-message.ogg", "audio/ogg", png(), UnsupportedFormatError),
        Case("one-sample", "one.wav", "audio/wav", _wav(np.array([0.5]), 16_000, "PCM_16"), TooShortError),
        Case("50-ms", "short.wav", "audio/wav", _wav(voice(0.05, 16_000), 16_000, "PCM_16"), TooShortError),
        Case(
            "10-s-digital-silence",
            "silence.wav",
            "audio/wav",
            _wav(np.zeros(160_000), 16_000, "PCM_16"),
            SilentAudioError,
        ),
        Case(
            "5-s-room-noise-no-voice",
            "voice-message.ogg",
            "audio/ogg",
            encode(room_noise(5.0, 48_000, seed=7), 48_000, "OGG", "OPUS"),
            NoSpeechError,
        ),
        Case(
            "10-s-clipping-square",
            "square.wav",
            "audio/wav",
            _wav(np.sign(np.sin(2 * np.pi * 200 * t10)), 16_000, "PCM_16"),
            None,
        ),
        Case("float-wav-nan-inf", "nan.wav", "audio/wav", _wav(nan_inf, 16_000, "FLOAT"), CorruptAudioError),
        Case(
            "header-7-hz",
            "slow.wav",
            "audio/wav",
            wav_header(rate=7, data_bytes=len(pcm)) + pcm,
            CorruptAudioError,
        ),
        Case(
            "header-10-mhz",
            "fast.wav",
            "audio/wav",
            wav_header(rate=10_000_000, data_bytes=len(pcm)) + pcm,
            CorruptAudioError,
        ),
        # The header claims 2**32-1 bytes (37 hours at 16 kHz); 2 s follow. Only what is there is decoded.
        Case(
            "header-claims-hours",
            "hours.wav",
            "audio/wav",
            wav_header(rate=16_000, data_bytes=2**32 - 1) + pcm,
            None,
        ),
        Case("400-s-over-120-s-limit", "long.flac", "audio/flac", long_flac(400.0), TooLongError),
        Case("96-khz-24-bit-stereo", "studio.wav", "audio/wav", _wav(stereo, 96_000, "PCM_24"), None),
        Case("8-khz-8-bit", "phone.wav", "audio/wav", _wav(voice(2.0, 8_000), 8_000, "PCM_U8"), None),
    )


CASE_IDS = tuple(c.id for c in corpus())


def case(case_id: str) -> Case:
    return next(c for c in corpus() if c.id == case_id)


def tiny_model(path):
    """Fit and save a tiny model on random vectors of the 'rich' preset's size (results do not depend on the
    shipped model); returns the saved path."""
    from synth import random_model

    random_model().save(path)
    return path
