"""Decoding: every supported input decodes to mono float32 at 16 kHz; every bad input raises its error."""

from __future__ import annotations

import io
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from synth import SR, tone

from ser_core import audio
from ser_core.audio import Limits, decode, encode, ffmpeg_exe, sniff
from ser_core.errors import (
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


def _write(y: np.ndarray, sr: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _ffmpeg_encode(wav: bytes, ext: str, *args: str) -> bytes:
    """Encode with ffmpeg into a real file (the MP4/M4A muxer needs to seek, as phone recorders do)."""
    exe = ffmpeg_exe()
    assert exe, "ffmpeg (system or imageio-ffmpeg) must be available"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"out.{ext}"
        subprocess.run(
            [exe, "-loglevel", "error", "-f", "wav", "-i", "-", *args, str(out)],
            input=wav,
            capture_output=True,
            check=True,
            timeout=60,
        )
        return out.read_bytes()


@pytest.mark.parametrize(
    ("fmt", "subtype", "sr"),
    [
        ("WAV", "PCM_16", 16000),
        ("WAV", "PCM_24", 96000),
        ("WAV", "PCM_32", 44100),
        ("WAV", "FLOAT", 22050),
        ("WAV", "PCM_U8", 8000),
        ("FLAC", None, 48000),
        ("OGG", "OPUS", 48000),
        ("OGG", "VORBIS", 44100),
        ("MP3", None, 44100),
    ],
)
def test_formats_decode_to_16k_mono(fmt, subtype, sr):
    y = tone(300, 1.5, sr=sr)
    out = decode(_write(y, sr, fmt, subtype))
    assert out.dtype == np.float32 and out.ndim == 1
    # Lossy codecs pad a few ms; the duration must still match closely.
    assert abs(out.size / SR - 1.5) < 0.08
    # The tone's energy survives (not silence, not garbage).
    assert 0.05 < np.sqrt(np.mean(out**2)) < 0.5


def test_stereo_is_downmixed():
    left, right = tone(200, 1.0, sr=44100), tone(500, 1.0, sr=44100)
    out = decode(_write(np.stack([left, right], axis=1), 44100, "WAV"))
    expected = decode(_write((left + right) / 2, 44100, "WAV"))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_resampled_signal_keeps_its_pitch():
    out = decode(_write(np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000) * 0.5, 48000, "WAV"))
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SR / out.size - 1000) < 2


@pytest.mark.parametrize("ext", ["m4a", "webm"])
def test_containers_libsndfile_cannot_read_go_through_ffmpeg(ext):
    wav = _write(tone(250, 1.2, sr=48000), 48000, "WAV")
    data = _ffmpeg_encode(wav, ext, *(["-c:a", "aac"] if ext == "m4a" else ["-c:a", "libopus"]))
    assert sniff(data) in ("mp4", "webm")
    out = decode(data)
    assert abs(out.size / SR - 1.2) < 0.1


def test_file_path_and_file_object(tmp_path):
    data = _write(tone(), SR, "FLAC")
    p = tmp_path / "x.flac"
    p.write_bytes(data)
    a, b, c = decode(p), decode(str(p)), decode(io.BytesIO(data))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


# ------------------------------------------------------------------------------------- bad input


def test_empty():
    with pytest.raises(EmptyAudioError, match="empty"):
        decode(b"")


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"hello, this is not audio at all\n" * 20, "text"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "image"),
        (b"%PDF-1.4\n" + bytes(100), "document"),
    ],
)
def test_not_audio_is_named(data, what):
    with pytest.raises(UnsupportedFormatError, match=what):
        decode(data)


def test_random_bytes_are_unsupported():
    with pytest.raises((UnsupportedFormatError, CorruptAudioError)):
        decode(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())


def test_opus_cut_before_any_audio_page_says_cut_short():
    data = _write(tone(200, 3.0, sr=48000), 48000, "OGG", "OPUS")
    with pytest.raises(TruncatedAudioError, match="cut short: none of its audio arrived"):
        decode(data[: len(data) // 3])


@pytest.mark.parametrize(("fmt", "subtype"), [("OGG", "OPUS"), ("WAV", None), ("FLAC", None), ("MP3", None)])
def test_cut_short_file_is_analysed_as_far_as_it_goes_and_says_so(fmt, subtype):
    data = _write(tone(200, 4.0, sr=48000), 48000, fmt, subtype)
    whole = audio.decode_audio(data)
    assert not whole.cut_short and whole.samples.size / SR == pytest.approx(4.0, abs=0.1)
    half = audio.decode_audio(data[: len(data) // 2])
    assert half.cut_short and 0.5 < half.samples.size / SR < 3.0  # OGG: whole pages only


def test_cut_short_during_the_silence_before_speaking_says_cut_short_not_silent():
    y = np.concatenate([np.zeros(3 * 48000, np.float32), tone(200, 3.0, sr=48000)])
    data = _write(y, 48000, "OGG", "OPUS")
    with pytest.raises(TruncatedAudioError, match=r"only its first [1-3]\.\d s arrived"):
        decode(data[: len(data) // 4])
    with pytest.raises(SilentAudioError):  # a whole file that is silent is still called silent
        decode(_write(np.zeros(48000, np.float32), 48000, "OGG", "OPUS"))


def test_ogg_pages_with_garbage_are_damaged_not_cut_short():
    data = b"OggS" + bytes(range(256)) * 8
    assert audio.cut_short(data) is None
    with pytest.raises(CorruptAudioError, match="OGG file is damaged") as info:
        decode(data)
    assert not isinstance(info.value, TruncatedAudioError)


def test_random_bytes_are_not_called_a_damaged_mp3():
    # Seed 1 starts with ff e4 22 79: a legal MPEG audio header, which a sync-word check called MP3.
    data = np.random.default_rng(1).bytes(20_000)
    with pytest.raises(
        UnsupportedFormatError, match="not audio in any format I know, whatever its name says"
    ):
        decode(data)
    rng = np.random.default_rng(7)
    assert sum(sniff(rng.bytes(4096)) == "mp3" for _ in range(3000)) == 0


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
@pytest.mark.parametrize("kbps", [32, 128])
def test_mp3_without_id3_tag_is_still_recognised(rate, kbps):
    wav = _write(tone(200, 1.0, sr=48000), 48000, "WAV")
    mp3 = _ffmpeg_encode(
        wav, "mp3", "-ar", str(rate), "-b:a", f"{kbps}k", "-write_xing", "0", "-id3v2_version", "0"
    )
    assert mp3[:3] != b"ID3" and sniff(mp3) == "mp3"


def test_truncated_mp3_decodes_what_is_there():
    data = _write(tone(200, 3.0, sr=48000), 48000, "MP3")
    out = audio.decode_audio(data[: len(data) // 3])
    assert 0.5 < out.samples.size / SR < 1.5 and out.cut_short


def test_too_short():
    with pytest.raises(TooShortError, match="at least"):
        decode(_write(tone(200, 0.1), SR, "WAV"))


def test_one_sample_is_too_short():
    with pytest.raises((TooShortError, CorruptAudioError)):
        decode(_write(np.array([0.5], np.float32), SR, "WAV"))


def test_silent():
    with pytest.raises(SilentAudioError, match="silent"):
        decode(_write(np.zeros(SR * 2, np.float32), SR, "WAV"))


def test_too_long_is_refused_from_the_header():
    data = _write(tone(200, 5.0), SR, "WAV")
    with pytest.raises(TooLongError, match="limit is 3 s"):
        decode(data, limits=Limits(max_seconds=3))


def test_too_large():
    with pytest.raises(TooLargeError, match="limit"):
        decode(bytes(2000), limits=Limits(max_bytes=1000))


def test_too_large_path_checked_before_reading(tmp_path):
    p = tmp_path / "big.wav"
    p.write_bytes(bytes(5000))
    with pytest.raises(TooLargeError):
        decode(p, limits=Limits(max_bytes=1000))


def test_nan_samples_are_corrupt():
    y = tone(200, 1.0)
    y[100] = np.nan
    with pytest.raises(CorruptAudioError, match="NaN"):
        decode(_write(y, SR, "WAV", "FLOAT"))


def _wav_with_rate(rate: int, n: int = 16000) -> bytes:
    pcm = (tone(200, n / SR) * 32767).astype("<i2").tobytes()
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(pcm))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", len(pcm))
    )
    return header + pcm


@pytest.mark.parametrize("rate", [7, 10_000_000])
def test_absurd_sample_rate_is_corrupt(rate):
    with pytest.raises(CorruptAudioError, match="impossible sample rate"):
        decode(_wav_with_rate(rate))


def test_header_claiming_hours_with_little_data():
    data = bytearray(_wav_with_rate(SR, 8000))
    data[40:44] = struct.pack("<I", 0x7FFFFFF0)  # data chunk "length": ~18 h at 16 kHz 16-bit
    # libsndfile trusts the file size over the header: exactly the 0.5 s that is there is decoded.
    assert decode(bytes(data)).size == 8000


def test_unknown_container_without_ffmpeg(monkeypatch):
    data = _ffmpeg_encode(_write(tone(), SR, "WAV"), "m4a", "-c:a", "aac")
    monkeypatch.setattr(audio, "ffmpeg_exe", lambda: None)
    with pytest.raises(UnsupportedFormatError, match="needs ffmpeg"):
        decode(data)


def test_ffmpeg_timeout_kills_the_decoder():
    data = _ffmpeg_encode(_write(tone(200, 3.0), SR, "WAV"), "m4a", "-c:a", "aac")
    with pytest.raises(DecodeTimeoutError, match="longer than"):
        decode(data, limits=Limits(ffmpeg_timeout=0.001))


def test_ffmpeg_output_capped_by_duration_limit():
    data = _ffmpeg_encode(_write(tone(200, 6.0), SR, "WAV"), "m4a", "-c:a", "aac")
    with pytest.raises(TooLongError):
        decode(data, limits=Limits(max_seconds=2))


def test_encode_round_trip():
    y = tone(220, 1.0)
    np.testing.assert_allclose(decode(encode(y, SR, "WAV", "FLOAT")), y, atol=1e-6)
