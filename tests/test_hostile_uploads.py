"""Uploads that try to make ffmpeg read files of ours: playlists and concat scripts must never reach it.

With Debian 12's ffmpeg (what the Docker image installs) an unforced ``ffmpeg -i upload`` follows an HLS
playlist to a local file and decodes it: the bot answered with another user's kept clip. Here every ffmpeg on
the machine (the system one when installed, and the imageio-ffmpeg wheel's) is tried.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ser_core import audio
from ser_core.audio import FFMPEG_DEMUXERS, Limits, decode_audio, encode, ffmpeg_command, sniff
from ser_core.errors import AudioError, UnsupportedFormatError


def _ffmpegs() -> list:
    found = []
    system = shutil.which("ffmpeg")
    if system:
        found.append(pytest.param(system, id="system"))
    try:
        import imageio_ffmpeg

        found.append(pytest.param(imageio_ffmpeg.get_ffmpeg_exe(), id="wheel"))
    except Exception:  # pragma: no cover - the wheel is a dependency
        pass
    return found


@pytest.fixture
def secret(tmp_path) -> Path:
    """A kept clip of someone else's: 2 s of a loud tone as OGG/Opus."""
    t = np.arange(96_000) / 48_000
    path = tmp_path / "feedback" / "111" / "1.ogg"
    path.parent.mkdir(parents=True)
    path.write_bytes(encode((0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 48_000, "OGG", "OPUS"))
    return path


def hostile_uploads(target: Path) -> dict[str, bytes]:
    """Scripts naming ``target``; a control byte keeps the sniffer from calling them text."""
    return {
        "hls": b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
        + str(target).encode()
        + b"\n#EXT-X-ENDLIST\n#\x01\n",
        "hls-file-url": b"#EXTM3U\n#EXTINF:10,\nfile://"
        + str(target).encode()
        + b"\n#EXT-X-ENDLIST\n#\x02\n",
        "ffconcat": b"ffconcat version 1.0\nfile '" + str(target).encode() + b"'\n#\x01\n",
        "concat-relative": b"ffconcat version 1.0\nfile 'feedback/111/1.ogg'\n#\x01\n",
    }


@pytest.mark.parametrize("exe", _ffmpegs())
def test_playlists_and_concat_lists_are_refused_before_ffmpeg(exe, secret, monkeypatch):
    calls = []
    real_run = subprocess.run

    def spy(cmd, *a, **kw):
        calls.append(cmd)
        return real_run(cmd, *a, **kw)

    monkeypatch.setattr(audio, "ffmpeg_exe", lambda: exe)
    monkeypatch.setattr(audio.subprocess, "run", spy)
    monkeypatch.chdir(secret.parents[2])  # where a relative name in a script would point
    for name, data in hostile_uploads(secret).items():
        assert sniff(data) == "unknown", name
        with pytest.raises(UnsupportedFormatError, match="not audio"):
            decode_audio(data)
    assert calls == []  # ffmpeg never saw them


@pytest.mark.parametrize("exe", _ffmpegs())
@pytest.mark.parametrize("kind", sorted(FFMPEG_DEMUXERS))
def test_ffmpeg_forced_to_a_named_demuxer_never_follows_a_script(exe, kind, secret, monkeypatch):
    """Even if a script did reach ffmpeg under a container's name, the forced demuxer reads it as that
    container and fails; the secret's tone never comes out."""
    monkeypatch.chdir(secret.parents[2])
    for name, data in hostile_uploads(secret).items():
        try:
            y = audio._decode_ffmpeg(data, 16_000, Limits(), exe, kind)
        except (audio._FfmpegFailed, AudioError):
            continue
        assert y.size < 1600, f"{kind} read {y.size} samples out of the {name} script"


@pytest.mark.parametrize("exe", _ffmpegs())
def test_ffmpeg_command_allows_one_protocol_and_forces_the_demuxer(exe):
    cmd = ffmpeg_command(exe, "webm", 16_000, Limits())
    assert cmd[cmd.index("-protocol_whitelist") + 1] == "pipe"
    assert cmd[cmd.index("-f") + 1] == "matroska" and cmd.index("-f") < cmd.index("-i")
    mp4 = ffmpeg_command(exe, "mp4", 16_000, Limits(), "/tmp/x/input")
    assert mp4[mp4.index("-protocol_whitelist") + 1] == "file" and "-enable_drefs" in mp4
    with pytest.raises(UnsupportedFormatError):
        ffmpeg_command(exe, "unknown", 16_000, Limits())


def test_the_ffmpeg_child_sees_no_secret(tmp_path, monkeypatch):
    """The child that parses untrusted bytes gets an environment of its own, without the token or URLs."""
    dump = tmp_path / "environ"
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\ncat /proc/$$/environ > {dump}\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("DISCORD_TOKEN", "token-that-must-not-leak")
    monkeypatch.setenv("SER_DATABASE_URL", "postgresql://u:pw@host/db")
    monkeypatch.setattr(audio, "ffmpeg_exe", lambda: str(fake))
    with pytest.raises(AudioError):
        decode_audio(b"\x1a\x45\xdf\xa3" + bytes(4000))  # a (broken) WebM: ffmpeg's turn
    env = dict(kv.split("=", 1) for kv in dump.read_bytes().decode().split("\0") if "=" in kv)
    assert "DISCORD_TOKEN" not in env and "SER_DATABASE_URL" not in env
    assert not any("token-that-must-not-leak" in v or "pw@" in v for v in env.values())
    assert set(env) <= {"PATH", "LC_ALL", "PWD", "SHLVL", "_"}, env
    assert os.environ["DISCORD_TOKEN"] == "token-that-must-not-leak"  # the bot's own is untouched


def test_raw_aac_is_named_and_decoded(tmp_path):
    """Raw ADTS AAC (``.aac`` from some recorders) has a name now, so it still decodes."""
    exe = audio.ffmpeg_exe()
    assert exe
    wav = tmp_path / "a.wav"
    t = np.arange(32_000) / 16_000
    wav.write_bytes(encode((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000, "WAV"))
    out = tmp_path / "a.aac"
    subprocess.run([exe, "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(out)], check=True)
    data = out.read_bytes()
    assert sniff(data) == "aac"
    assert abs(decode_audio(data).samples.size / 16_000 - 2.0) < 0.2  # AAC adds priming frames
