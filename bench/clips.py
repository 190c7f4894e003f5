"""The test inputs: a Discord-like voice note (and a 30 s one), a 48 kHz WAV, an MP3 and an M4A.

Made from real RAVDESS speech when ``SER_RAVDESS_DIR`` is set, else from a synthetic voice-like signal.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser_core.audio import ffmpeg_exe

RATE = 48_000  # Hz, what Discord records voice messages at
SHORT_S = 3.4
LONG_S = 30.0

#: name → (file name, ffmpeg encoder arguments, seconds); None: written by soundfile as 16-bit WAV.
CASES: dict[str, tuple[str, list[str] | None, float]] = {
    "voice note 3.4 s (OGG/Opus 32 kbit/s)": ("voice.ogg", ["-c:a", "libopus", "-b:a", "32k"], SHORT_S),
    "voice note 30 s (OGG/Opus 32 kbit/s)": ("voice30.ogg", ["-c:a", "libopus", "-b:a", "32k"], LONG_S),
    "WAV 48 kHz 3.4 s": ("clip.wav", None, SHORT_S),
    "MP3 64 kbit/s 3.4 s": ("clip.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"], SHORT_S),
    "M4A (AAC 64 kbit/s) 3.4 s": ("clip.m4a", ["-c:a", "aac", "-b:a", "64k"], SHORT_S),
}
VOICE_NOTE = next(iter(CASES))
LONG_NOTE = list(CASES)[1]


def speech(seconds: float, ravdess: Path | None) -> tuple[np.ndarray, str]:
    """(mono float32 at ``RATE``, where it came from): RAVDESS clips of actor 01 back to back, else synthetic."""
    if ravdess is not None:
        paths = sorted((ravdess / "Actor_01").glob("03-01-0[2-8]-02-*"))  # strong-intensity, emotional
        parts, n = [], 0
        for p in paths:
            y, sr = sf.read(p, dtype="float32")
            parts.append(soxr.resample(y, sr, RATE))
            n += parts[-1].size
            if n >= seconds * RATE:
                break
        return np.concatenate(parts)[: int(seconds * RATE)], f"RAVDESS {paths[0].parent.name}"
    from bot.testing.synthetic import synthetic_voice

    return synthetic_voice(seconds, RATE, seed=3), "synthetic voice-like signal"


def make_clips(folder: Path, ravdess: Path | None, cases: dict = CASES) -> tuple[dict[str, Path], str]:
    """Write each case into ``folder``; returns ({case: path}, source). Cases needing a missing ffmpeg are left out."""
    exe = ffmpeg_exe()
    out, source = {}, ""
    for name, (fname, codec, seconds) in cases.items():
        y, source = speech(seconds, ravdess)
        path = folder / fname
        if codec is None:
            sf.write(path, y, RATE, subtype="PCM_16")
        elif exe is None:
            continue
        else:
            wav = folder / f"src-{fname}.wav"
            sf.write(wav, y, RATE, subtype="FLOAT")
            cmd = [
                exe,
                "-nostdin",
                "-y",
                "-loglevel",
                "error",
                "-i",
                str(wav),
                "-ac",
                "1",
                "-ar",
                str(RATE),
                *codec,
                str(path),
            ]
            subprocess.run(cmd, check=True, timeout=60)
            wav.unlink()
        out[name] = path
    return out, source
