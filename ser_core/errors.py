"""The one error hierarchy of ``ser_core``.

Every message is written for the person who sent the audio: it says what is wrong and what to do.
Callers (the CLI, the bot) show ``str(err)`` to users and log anything that is not a ``SerError``.

::

    SerError
    ├── AudioError (ValueError)          the input cannot be analysed
    │   ├── EmptyAudioError              zero bytes
    │   ├── UnsupportedFormatError       not audio, or a container nothing here can decode
    │   ├── CorruptAudioError            audio, but broken (NaN samples, absurd rate, unreadable)
    │   │   └── TruncatedAudioError      cut short, and too little of it decoded to analyse
    │   ├── TooLargeError                more bytes than the limit
    │   ├── TooLongError                 longer than the duration limit
    │   ├── TooShortError                shorter than the minimum duration
    │   ├── SilentAudioError             no sound at all (digital silence)
    │   ├── NoSpeechError                sound, but no voice in it (noise only, see ``vad.has_speech``)
    │   └── DecodeTimeoutError           the external decoder ran past its time limit
    ├── ModelError                       model file missing, incompatible or tampered with
    ├── DatasetError                     a data folder that cannot be used for training
    └── ConfigError (ValueError)         a bad option (unknown preset, unknown class name, ...)
"""

from __future__ import annotations

__all__ = [
    "SerError",
    "AudioError",
    "EmptyAudioError",
    "UnsupportedFormatError",
    "CorruptAudioError",
    "TruncatedAudioError",
    "TooLargeError",
    "TooLongError",
    "TooShortError",
    "SilentAudioError",
    "NoSpeechError",
    "DecodeTimeoutError",
    "ModelError",
    "DatasetError",
    "ConfigError",
]


class SerError(Exception):
    """Base class of every error ``ser_core`` raises on purpose."""


class AudioError(SerError, ValueError):
    """The audio cannot be analysed; the message says why and what to do."""


class EmptyAudioError(AudioError):
    pass


class UnsupportedFormatError(AudioError):
    pass


class CorruptAudioError(AudioError):
    pass


class TruncatedAudioError(CorruptAudioError):
    """The file ends before its own structure says it should, and too little of it decoded to analyse."""


class TooLargeError(AudioError):
    pass


class TooLongError(AudioError):
    pass


class TooShortError(AudioError):
    pass


class SilentAudioError(AudioError):
    pass


class NoSpeechError(AudioError):
    pass


class DecodeTimeoutError(AudioError):
    pass


class ModelError(SerError):
    """A model file that cannot be used."""


class DatasetError(SerError):
    """A data folder that cannot be used."""


class ConfigError(SerError, ValueError):
    """A bad option value."""
