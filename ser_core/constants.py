"""Constants shared by every module: labels, rates, limits."""

from __future__ import annotations

#: The eight RAVDESS emotions, in RAVDESS code order (code 01 .. 08).
EMOTIONS: tuple[str, ...] = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")

#: RAVDESS emotion code (third name field) -> label.
RAVDESS_CODES: dict[str, str] = {f"{i:02d}": e for i, e in enumerate(EMOTIONS, start=1)}

#: Every signal is decoded to this rate before features (Hz).
SAMPLE_RATE = 16_000

#: Default limits for one input.
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
DEFAULT_MAX_SECONDS = 120.0
MIN_SECONDS = 0.25

#: Wall-clock limit for one external ffmpeg decode (s).
FFMPEG_TIMEOUT_S = 30.0

#: The six actor-disjoint folds of the speaker-independent protocol (RAVDESS actor ids).
ACTOR_FOLDS: tuple[tuple[str, ...], ...] = (
    ("01", "11", "20", "21"),
    ("04", "10", "12", "14"),
    ("08", "09", "19", "23"),
    ("03", "05", "07", "24"),
    ("02", "15", "16", "18"),
    ("06", "13", "17", "22"),
)

#: File extensions the decoder accepts (lower case, with dot).
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".wav",
        ".flac",
        ".m4a",
        ".aac",
        ".mp4",
        ".webm",
        ".wma",
        ".amr",
        ".aif",
        ".aiff",
        ".caf",
        ".3gp",
        ".mka",
        ".weba",
    }
)
