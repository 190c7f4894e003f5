"""Decoding: bytes | path | file → mono float32 at one fixed rate.

OGG (Opus, Vorbis), MP3, FLAC, WAV and the other libsndfile formats decode in-process with soundfile;
other containers (M4A/AAC, WebM, MP4, WMA, AMR, ...) go through ffmpeg. The system ffmpeg is used when on
PATH, else the one the ``imageio-ffmpeg`` wheel ships, so a pip-only install still decodes phone M4A files.

ffmpeg is run directly rather than through pydub: pydub's ``from_file`` has no time limit, buffers the whole
output with no size cap and needs ffprobe (which the wheel lacks). Here the child is killed after
``ffmpeg_timeout`` seconds and its output is capped by ``-t``.

Every limit is checked as early as the input allows: bytes before reading, the header's duration before
decoding, and decoding itself reads in blocks and stops one block past the duration limit, so a small file
that claims hours of audio never allocates more than the limit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from .constants import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, FFMPEG_TIMEOUT_S, MIN_SECONDS, SAMPLE_RATE
from .errors import (
    AudioError,
    CorruptAudioError,
    DecodeTimeoutError,
    EmptyAudioError,
    SilentAudioError,
    TooLargeError,
    TooLongError,
    TooShortError,
    TruncatedAudioError,
    UnsupportedFormatError,
)

AudioSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

#: Plausible input sample rates (Hz); anything outside is a broken header.
MIN_INPUT_RATE = 1_000
MAX_INPUT_RATE = 384_000
MAX_CHANNELS = 64

#: A clip whose loudest 50 ms is quieter than this (dBFS RMS) has nothing to analyse.
SILENCE_DBFS = -60.0

_BLOCK_S = 2.0  # decode block length: bounds memory to one block past the limit


@dataclass(frozen=True)
class Limits:
    """Input limits: bytes, seconds, and the ffmpeg wall-clock timeout (s)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = DEFAULT_MAX_SECONDS
    min_seconds: float = MIN_SECONDS
    ffmpeg_timeout: float = FFMPEG_TIMEOUT_S


DEFAULT_LIMITS = Limits()


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def read_bytes(source: AudioSource, max_bytes: int) -> bytes:
    """Read ``source`` fully, refusing more than ``max_bytes`` before reading it all."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise UnsupportedFormatError(f"File not found: {path}") from None
        except OSError as exc:
            raise UnsupportedFormatError(f"Cannot read {path}: {exc.strerror}") from None
        if size > max_bytes:
            raise TooLargeError(
                f"The file is {_mb(size)}; the limit is {_mb(max_bytes)}. Send a shorter clip."
            )
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        if not isinstance(data, bytes | bytearray):
            raise UnsupportedFormatError("The file object must be opened in binary mode.")
        data = bytes(data)
    else:
        raise TypeError(f"expected bytes, a path or a binary file, not {type(source).__name__}")
    if len(data) > max_bytes:
        raise TooLargeError(f"The file is over {_mb(max_bytes)}, the limit. Send a shorter clip.")
    if not data:
        raise EmptyAudioError("The file is empty (0 bytes). Record the note again and resend it.")
    return data


def sniff(data: bytes) -> str:
    """Guess the container from magic bytes: 'wav', 'flac', 'ogg', 'mp3', 'aac' (raw ADTS), 'mp4', 'webm',
    'aiff', 'caf', 'asf', 'amr', 'image', 'document', 'text' or 'unknown'."""
    head = data[:64]
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or _mpeg_audio_header(data[:4096]):
        return "mp3"
    if _adts_header(data[:8192]):
        return "aac"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:4] == b"caff":
        return "caf"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"
    if head[:5] == b"#!AMR":
        return "amr"
    if (
        head[:8] == b"\x89PNG\r\n\x1a\n"
        or head[:3] == b"\xff\xd8\xff"
        or head[:4] == b"GIF8"
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    ):
        return "image"
    if head[:4] in (b"%PDF", b"PK\x03\x04"):
        return "document"
    sample = data[:512]
    try:
        sample.decode("utf-8")
        if all(b >= 9 for b in sample):
            return "text"
    except UnicodeDecodeError:
        pass
    return "unknown"


_MPEG_KBPS = {  # (MPEG-1?, layer) → bitrate index 1..14 in kbit/s
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_bytes(h: bytes) -> int | None:
    """Length in bytes of the MPEG audio frame whose 4-byte header is ``h``; None if ``h`` is not one."""
    if len(h) < 4 or h[0] != 0xFF or h[1] & 0xE0 != 0xE0:
        return None
    version, layer_bits = (h[1] >> 3) & 3, (h[1] >> 1) & 3
    bitrate, rate, pad = h[2] >> 4, (h[2] >> 2) & 3, (h[2] >> 1) & 1
    if version == 1 or layer_bits == 0 or bitrate in (0, 15) or rate == 3:
        return None
    layer, v1 = 4 - layer_bits, version == 3
    kbps = _MPEG_KBPS[(v1, layer) if v1 or layer == 1 else (False, 2)][bitrate - 1]
    hz = _MPEG_RATES[version][rate]
    if layer == 1:
        return (12 * kbps * 1000 // hz + pad) * 4
    return (144 if v1 or layer == 2 else 72) * kbps * 1000 // hz + pad


def _mpeg_audio_header(data: bytes) -> bool:
    """True when ``data`` starts with an MPEG audio frame whose successor starts where its length says.

    The 11-bit sync alone matches 1 in 2,048 random files, and one legal header still 1 in 5,000."""
    n = _mpeg_frame_bytes(data[:4])
    return n is not None and (len(data) < n + 4 or _mpeg_frame_bytes(data[n : n + 4]) is not None)


def _adts_frame_bytes(h: bytes) -> int | None:
    """Length in bytes of the ADTS (raw AAC) frame whose 7-byte header is ``h``; None if ``h`` is not one."""
    if len(h) < 7 or h[0] != 0xFF or h[1] & 0xF6 != 0xF0 or (h[2] >> 2) & 0x0F > 12:
        return None
    n = ((h[3] & 0x03) << 11) | (h[4] << 3) | (h[5] >> 5)
    return n if n >= 7 else None


def _adts_header(data: bytes) -> bool:
    """True when ``data`` starts with two chained ADTS frames (or one that fills it), as ``_mpeg_audio_header``."""
    n = _adts_frame_bytes(data[:7])
    return n is not None and (len(data) < n + 7 or _adts_frame_bytes(data[n : n + 7]) is not None)


def cut_short(data: bytes, kind: str | None = None) -> bool | None:
    """Whether the file ends before its own structure says it should (an upload or copy cut short).

    OGG: every page's declared length is walked and the last page must carry the end-of-stream flag.
    WAV: the ``data`` chunk must hold the bytes its header declares. Returns None where the container says
    nothing (other formats, or an OGG whose pages are not valid: damaged rather than cut short).
    """
    kind = kind or sniff(data)
    if kind == "ogg":
        return _ogg_cut_short(data)
    if kind == "wav":
        return _wav_cut_short(data)
    return None


def _ogg_cut_short(data: bytes) -> bool | None:
    i, n, eos = 0, len(data), False
    while i < n:
        if data[i : i + 4] != b"OggS" or (i + 27 <= n and data[i + 4] != 0):
            return None  # not a page where one must start: damaged, not cut
        if i + 27 > n:
            return True
        segments = data[i + 26]
        if i + 27 + segments > n:
            return True
        end = i + 27 + segments + sum(data[i + 27 : i + 27 + segments])
        if end > n:
            return True
        eos = bool(data[i + 5] & 0x04)
        i = end
    return not eos


def _flac_seconds(data: bytes) -> float | None:
    """The length FLAC's STREAMINFO declares (s), or None when it says nothing (0 samples = unknown)."""
    if data[:4] != b"fLaC" or len(data) < 26 or data[4] & 0x7F != 0:
        return None
    field = int.from_bytes(data[18:26], "big")
    rate, total = field >> 44, field & ((1 << 36) - 1)
    return total / rate if rate and total else None


def _wav_cut_short(data: bytes) -> bool | None:
    i, n = 12, len(data)
    while i + 8 <= n:
        size = int.from_bytes(data[i + 4 : i + 8], "little")
        if data[i : i + 4] == b"data":
            # 0 and 0xFFFFFFFF mark a stream written without knowing its length: nothing to compare.
            return None if size in (0, 0xFFFFFFFF) else i + 8 + size > n
        i += 8 + size + (size & 1)
    return None


log = logging.getLogger(__name__)

_stderr_lock = threading.Lock()
_stderr_users = 0
_stderr_saved: tuple[int, BinaryIO] | None = None


def _mpg123_noise(line: bytes) -> bool:
    head = line.lstrip()
    return b"libmpg123" in head[:40] or head.startswith((b"Warning: ", b"Note: "))


@contextlib.contextmanager
def _native_stderr_filtered() -> Iterator[None]:
    """Keep libmpg123's chatter off the process's stderr.

    libsndfile decodes MP3 with libmpg123, which prints warnings about damaged streams straight to file
    descriptor 2 ("[src/libmpg123/parse.c:...] warning: ..."), so ``ser predict`` on a broken MP3 printed two
    lines instead of one. While any decode is inside this block, fd 2 points at a temporary file; when the last
    one leaves, fd 2 is restored and whatever else was written meanwhile (log lines of other threads) is
    written out, minus libmpg123's lines (logged at DEBUG). Reference-counted, so parallel decodes stay parallel.
    """
    global _stderr_users, _stderr_saved
    with _stderr_lock:
        if _stderr_users == 0:
            try:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                capture = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the last decode leaves
                saved = -1
                try:
                    saved = os.dup(2)
                    os.dup2(capture.fileno(), 2)
                except OSError:
                    capture.close()
                    if saved >= 0:
                        os.close(saved)
                    raise
                _stderr_saved = (saved, capture)
            except OSError:  # no fd 2 (a daemon) or no temp space: leave stderr alone
                _stderr_saved = None
        _stderr_users += 1
    try:
        yield
    finally:
        with _stderr_lock:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved is not None:
                saved, capture = _stderr_saved
                _stderr_saved = None
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                lines = capture.read().splitlines(keepends=True)
                capture.close()
                kept = b"".join(line for line in lines if not _mpg123_noise(line))
                if kept:
                    with contextlib.suppress(OSError):
                        os.write(2, kept)
                for line in lines:
                    if _mpg123_noise(line):
                        log.debug("libmpg123: %s", line.decode("utf-8", "replace").strip())


_LOOKS_LIKE = {"image": "an image", "document": "a document", "text": "text"}
NOT_AUDIO_TEXT = (
    "This file's content is not audio in any format I know, whatever its name says. "
    "Send a voice message or an OGG, MP3, WAV, FLAC or M4A file."
)
#: The ffmpeg demuxer each container the sniffer recognises is read with. ffmpeg is never left to guess: its
#: probing also knows playlists and scripts (HLS ``#EXTM3U``, ``ffconcat``) that open other files, so an upload
#: holding one could read the bot's own files. Bytes that are none of these never reach ffmpeg.
FFMPEG_DEMUXERS: dict[str, str] = {
    "wav": "wav",
    "flac": "flac",
    "ogg": "ogg",
    "mp3": "mp3",
    "aac": "aac",
    "mp4": "mov",
    "webm": "matroska",
    "aiff": "aiff",
    "caf": "caf",
    "asf": "asf",
    "amr": "amr",
}
_AUDIO_KINDS = set(FFMPEG_DEMUXERS)
#: What the ffmpeg child may see of the environment: nothing of the bot's (the token, database URLs).
FFMPEG_ENV = {"PATH": os.defpath, "LC_ALL": "C"}


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str | None:
    """Path of the ffmpeg to use: ``SER_FFMPEG``, then PATH, then the imageio-ffmpeg wheel's; None if none."""
    explicit = os.environ.get("SER_FFMPEG")
    if explicit:
        return explicit if Path(explicit).exists() else None
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # the wheel is optional at run time; no ffmpeg means no fallback decoding
        return None


def _too_long(seconds: float, limits: Limits) -> TooLongError:
    return TooLongError(
        f"The clip is {seconds:.0f} s long; the limit is {limits.max_seconds:.0f} s. Send a shorter clip."
    )


def _decode_soundfile(data: bytes, sr: int, limits: Limits) -> tuple[np.ndarray, bool]:
    """libsndfile path: (samples at ``sr``, fewer frames than the header declares); raises
    ``sf.LibsndfileError``/``RuntimeError`` when it cannot open the data."""
    with sf.SoundFile(io.BytesIO(data)) as f:
        in_sr, channels = int(f.samplerate), int(f.channels)
        if not MIN_INPUT_RATE <= in_sr <= MAX_INPUT_RATE:
            raise CorruptAudioError(
                f"The file's header gives an impossible sample rate ({in_sr} Hz); the file is damaged. "
                "Re-export it as WAV, MP3 or OGG."
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise CorruptAudioError(f"The file's header gives {channels} channels; the file is damaged.")
        max_in = int(limits.max_seconds * in_sr)
        # libsndfile knows the length of every format it reads from the header or a cheap scan.
        if f.frames > 0 and f.frames > max_in and f.frames < 2**62:
            raise _too_long(f.frames / in_sr, limits)
        block = max(1, int(_BLOCK_S * in_sr))
        rs = soxr.ResampleStream(in_sr, sr, 1, dtype="float32") if in_sr != sr else None
        out: list[np.ndarray] = []
        read = 0
        while True:
            chunk = f.read(block, dtype="float32", always_2d=True)
            n = chunk.shape[0]
            read += n
            if read > max_in:
                raise _too_long(read / in_sr, limits)
            last = n < block
            if n:
                if not np.isfinite(chunk).all():
                    raise CorruptAudioError(
                        "The file contains invalid samples (NaN or infinity). Re-export it from your recorder."
                    )
                mono = chunk.mean(axis=1) if channels > 1 else chunk[:, 0]
                out.append(rs.resample_chunk(mono, last=last) if rs else mono.copy())
            elif rs is not None:
                out.append(rs.resample_chunk(np.zeros(0, np.float32), last=True))
            if last:
                break
        # MP3 (Xing/LAME header) and FLAC (STREAMINFO) declare their length; 2 % slack for encoder padding.
        short = 0 < f.frames < 2**62 and read < 0.98 * f.frames - 0.05 * in_sr
    y = np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)
    return y, short


def ffmpeg_command(exe: str, kind: str, sr: int, limits: Limits, source: str = "pipe:0") -> list[str]:
    """The ffmpeg command line decoding a ``kind`` container (``sniff``) from ``source`` to mono f32le at
    ``sr`` on stdout: the demuxer forced, and only the one protocol ``source`` needs allowed."""
    try:
        demuxer = FFMPEG_DEMUXERS[kind]
    except KeyError:
        raise UnsupportedFormatError(NOT_AUDIO_TEXT) from None
    protocol = "pipe" if source.startswith("pipe:") else "file"
    extra = ["-enable_drefs", "0"] if demuxer == "mov" else []  # MP4 references to other files: off
    return [
        exe,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        protocol,
        *extra,
        "-f",
        demuxer,
        "-i",
        source,
        "-map",
        "0:a:0",
        "-vn",
        "-sn",
        "-dn",
        "-ac",
        "1",
        "-ar",
        str(sr),
        # Cap the output one second past the limit: bounded memory, and we still see "too long".
        "-t",
        f"{limits.max_seconds + 1:.3f}",
        "-f",
        "f32le",
        "pipe:1",
    ]


def _decode_ffmpeg(data: bytes, sr: int, limits: Limits, exe: str, kind: str) -> np.ndarray:
    """ffmpeg path for a ``kind`` container: mono f32le at ``sr`` on stdout, killed on timeout.

    The bytes go in through a pipe, except MP4, whose index may sit at the end of the file (phones write it
    last) where a pipe cannot seek back: that one is a private temp file and the only file ffmpeg may open."""
    with tempfile.TemporaryDirectory(prefix="ser-") as tmp:
        if kind == "mp4":
            src = Path(tmp) / "input"
            src.write_bytes(data)
            cmd, stdin = ffmpeg_command(exe, kind, sr, limits, str(src)), None
        else:
            cmd, stdin = ffmpeg_command(exe, kind, sr, limits), data
        try:
            proc = subprocess.run(
                cmd,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                capture_output=True,
                timeout=limits.ffmpeg_timeout,
                check=False,
                env=FFMPEG_ENV,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            # subprocess.run has already killed and reaped the child.
            raise DecodeTimeoutError(
                f"Decoding took longer than {limits.ffmpeg_timeout:.0f} s and was stopped. "
                "Send the clip as OGG, MP3 or WAV."
            ) from None
        except OSError as exc:
            raise UnsupportedFormatError(f"ffmpeg could not be started ({exc.strerror}).") from None
    if proc.returncode != 0:
        raise _FfmpegFailed(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""])
    y = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
    if y.size > limits.max_seconds * sr:
        raise _too_long(y.size / sr, limits)
    if not np.isfinite(y).all():
        raise CorruptAudioError("The file contains invalid samples (NaN or infinity).")
    return y


class _FfmpegFailed(Exception):
    pass


@dataclass(frozen=True)
class Decoded:
    """A decoded clip: ``samples`` [shape=(n,), float32] at the requested rate, and whether the file was cut
    short (it ended before its own structure said it would: what decoded is the start of the recording)."""

    samples: np.ndarray
    cut_short: bool = False


def cut_short_text(seconds: float) -> str:
    """The sentence for a cut-short file of which only ``seconds`` decoded, with no voice to analyse."""
    what = (
        f"only its first {seconds:.1f} s arrived, with too little voice to analyse"
        if seconds >= 0.05
        else "none of its audio arrived"
    )
    return f"The file was cut short: {what}. Send it again; if that keeps happening, record it again."


def decode(
    source: AudioSource, *, sr: int = SAMPLE_RATE, limits: Limits = DEFAULT_LIMITS, check_silence: bool = True
) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``sr`` Hz (``decode_audio`` also says whether it was cut short).

    Parameters
    ----------
    source : bytes, path or binary file
    sr : output rate (Hz)
    limits : byte, duration and timeout limits
    check_silence : raise ``SilentAudioError`` when the clip holds no sound at all

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32], samples in [-1, 1] (more for float input that clips)

    Raises
    ------
    AudioError subclasses, each with a message for the user.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, io
    >>> buf = io.BytesIO(); sf.write(buf, np.sin(np.arange(48000) / 10) * 0.3, 48000, format="WAV")
    >>> decode(buf.getvalue()).shape
    (16000,)
    """
    return decode_audio(source, sr=sr, limits=limits, check_silence=check_silence).samples


def decode_audio(
    source: AudioSource, *, sr: int = SAMPLE_RATE, limits: Limits = DEFAULT_LIMITS, check_silence: bool = True
) -> Decoded:
    """``decode``, and whether the file was cut short. A cut-short file whose decoded start is long and loud
    enough is returned (``Decoded.cut_short``); otherwise ``TruncatedAudioError`` says it was cut short."""
    data = read_bytes(source, limits.max_bytes)
    kind = sniff(data)
    if kind in ("image", "document", "text"):
        raise UnsupportedFormatError(
            f"This is not an audio file (it looks like {_LOOKS_LIKE[kind]}). "
            "Send a voice message or an audio file (OGG, MP3, WAV, FLAC, M4A)."
        )
    structure_cut = cut_short(data, kind)
    y: np.ndarray | None = None
    short = False
    quiet = _native_stderr_filtered() if kind in ("mp3", "unknown") else contextlib.nullcontext()
    try:
        with quiet:
            y, short = _decode_soundfile(data, sr, limits)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, soxr_error()):
        y = None
    if y is None or (y.size == 0 and kind not in ("wav", "flac")):
        if kind not in _AUDIO_KINDS:  # nothing we can name: ffmpeg would guess, and guessing can read files
            raise UnsupportedFormatError(NOT_AUDIO_TEXT)
        exe = ffmpeg_exe()
        if structure_cut:
            if exe is None:  # nothing else could read further into a file that ends early
                raise TruncatedAudioError(cut_short_text(0.0))
        elif exe is None:
            raise UnsupportedFormatError(
                f"Decoding this {kind.upper()} file needs ffmpeg, which is not installed. "
                "Install ffmpeg, or send OGG, MP3, WAV or FLAC."
            )
        try:
            y = _decode_ffmpeg(data, sr, limits, exe, kind)
        except _FfmpegFailed:
            if structure_cut:
                raise TruncatedAudioError(cut_short_text(0.0)) from None
            raise CorruptAudioError(
                f"The {kind.upper()} file is damaged and cannot be decoded. Record or export it again."
            ) from None
    duration = y.size / sr
    declared = _flac_seconds(data) if kind == "flac" else None
    was_cut = bool(structure_cut or short or (declared and duration < 0.98 * declared - 0.05))
    try:
        if y.size == 0:
            raise CorruptAudioError("The file holds no audio samples. Record the note again.")
        if duration < limits.min_seconds:
            raise TooShortError(
                f"The clip is only {duration:.2f} s long; at least {limits.min_seconds:.2f} s is needed. "
                "Say a full sentence."
            )
        if check_silence and peak_dbfs(y, sr) < SILENCE_DBFS:
            raise SilentAudioError("The clip is silent. Check that your microphone is on and record again.")
    except AudioError:
        if was_cut:  # "silent" or "too short" would blame the speaker for a broken upload
            raise TruncatedAudioError(cut_short_text(duration)) from None
        raise
    return Decoded(y, was_cut)


def envelope(y: np.ndarray, n: int = 256) -> np.ndarray:
    """Peak level of ``y`` in ``n`` equal bins, scaled so the loudest bin is 1 (like the 256-point waveform
    Discord stores with a voice message) [shape=(n,), float32 in [0, 1]]; zeros for silence."""
    y = np.abs(np.asarray(y, dtype=np.float32))
    if y.size == 0:
        return np.zeros(n, np.float32)
    edges = np.linspace(0, y.size, n + 1).astype(int)
    peaks = np.array([y[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)])
    top = peaks.max()
    return (peaks / top if top > 0 else peaks).astype(np.float32)


def soxr_error() -> type[Exception]:
    return getattr(soxr, "SoxrError", RuntimeError)


def peak_dbfs(y: np.ndarray, sr: int, frame_s: float = 0.05) -> float:
    """RMS level of the loudest ``frame_s`` frame, in dBFS (−inf for digital silence)."""
    n = max(1, int(frame_s * sr))
    m = y.size // n
    frames = y[None, :] if m == 0 else y[: m * n].reshape(m, n)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)).max()
    return float(20 * np.log10(rms)) if rms > 0 else float("-inf")


def encode(y: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None, **kw) -> bytes:
    """Write ``y`` (mono float) to bytes in a soundfile format (``"WAV"``, ``"FLAC"``, ``"OGG"`` + ``"OPUS"``...);
    ``kw`` goes to ``soundfile.write`` (e.g. ``compression_level``)."""
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype, **kw)
    return buf.getvalue()
