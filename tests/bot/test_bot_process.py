"""Starting the bot the way a user does: ``python -m bot`` in a subprocess, settings from the environment."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bot_helpers import bot_env, bot_process, expected_label, first_emotion, reap

from bot.demo import DEMO_VOICES
from bot.testing.fakediscord import FakeDiscord
from ser_core import EMOTIONS, SAMPLE_RATE, default_model_path
from ser_core.audio import decode
from ser_core.constants import RAVDESS_CODES

pytestmark = pytest.mark.timeout(90)


def test_missing_token_exits_2_with_one_line(tmp_path):
    # cwd without a .env file, so only the environment counts.
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=bot_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SER_MAX_FILE_MB", "lots"),
        ("SER_MAX_SECONDS", "-5"),
        ("SER_ADMIN_IDS", "12,abc"),
        ("SER_MODEL_PATH", "/nope"),
        ("SER_RATE_LIMIT", "-1"),
        ("SER_RATE_LIMIT", "five"),
        ("SER_DATABASE_URL", "mysql://db/ser"),
        ("SER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none"),  # valid, but nothing listens there
        ("SER_SHARD_COUNT", "0"),
        ("SER_SHARD_IDS", "0"),  # without SER_SHARD_COUNT
    ],
)
def test_invalid_setting_exits_2_with_one_line(tmp_path, name, value):
    env = bot_env(DISCORD_TOKEN="x", **{name: value})
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and name in proc.stderr


async def test_python_m_bot_replies_to_a_voice_message_and_stops_on_sigterm(
    tmp_path, model_path, model, voice_ogg
):
    async with FakeDiscord() as fake:
        env = bot_env(
            DISCORD_TOKEN="process-token",
            SER_DATA_DIR=str(tmp_path / "data"),
            SER_MODEL_PATH=str(model_path),
            **fake.env(),
        )
        proc = await bot_process(tmp_path, env)
        try:
            await fake.wait_ready(45)
            await asyncio.sleep(
                0.5
            )  # the process's own guild_ready_timeout may still be running; events queue
            note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
            reply = await fake.wait_for_reply(note["id"], timeout=30)
            assert first_emotion(reply.text) == expected_label(model, voice_ogg)
            assert (tmp_path / "data" / "ser-bot.sqlite3").is_file()
            proc.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, stderr.decode()[-2000:]
            assert b"shut down cleanly" in stderr
        finally:
            await reap(proc)


def run_demo_process(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m bot --demo`` from an empty folder, with its temp files in another empty one."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--demo"],
        cwd=cwd,
        env=bot_env(TMPDIR=str(tmp), **env),  # no DISCORD_TOKEN
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the demo leaves no data behind, only the pictures of its replies, where it says
    assert list(cwd.iterdir()) == [] and [p.name for p in tmp.iterdir()] == ["ser-bot-demo"]
    assert sorted(p.suffix for p in (tmp / "ser-bot-demo").iterdir()) == [".png"] * len(DEMO_VOICES)
    return proc


def demo_replies(stdout: str) -> dict[str, str]:
    """The demo's output, per shipped clip: the bot's reply printed under that clip's caption."""
    replies = {}
    for voice in DEMO_VOICES:
        caption = (
            f"{voice.file}, RAVDESS actor {voice.actor:02d}, acted emotion: {voice.emotion} (CC BY-NC-SA 4.0)"
        )
        assert caption in stdout  # the true emotion, actor and licence next to the reply
        after = stdout.split(caption, 1)[1].split("the bot replied:", 1)[1]
        replies[voice.file] = after.split("\n---", 1)[0].split("\ndemo:", 1)[0]
    return replies


def test_demo_runs_offline_and_prints_the_reply(tmp_path, model_path):
    proc = run_demo_process(tmp_path, SER_MODEL_PATH=str(model_path))
    replies = demo_replies(proc.stdout)
    assert len(replies) == len(DEMO_VOICES) == 3
    for reply in replies.values():
        assert first_emotion(reply) in EMOTIONS  # an emotion, not necessarily the acted one
        assert reply.count("%") >= 8  # every class's confidence
    assert "not its accuracy" in proc.stdout and "CREDITS.md" in proc.stdout


def test_the_demo_reads_as_a_terminal_transcript(tmp_path, model_path):
    """Plain text (no Markdown), the picture saved to a file it names, the buttons listed, one person per voice."""
    proc = run_demo_process(tmp_path, SER_MODEL_PATH=str(model_path))
    out = proc.stdout
    assert "**" not in out and "```" not in out and "`" not in out
    for voice in DEMO_VOICES:
        assert f"actor{voice.actor:02d} posted" in out
    pictures = [line for line in out.splitlines() if line.startswith("[picture: emotion.png")]
    assert len(pictures) == len(DEMO_VOICES)
    for line in pictures:
        path = Path(line.rsplit("saved to ", 1)[1].rstrip("]"))
        assert path.parent == tmp_path / "tmp" / "ser-bot-demo" and path.read_bytes()[:4] == b"\x89PNG"
    buttons = [line for line in out.splitlines() if line.startswith("[buttons:")]
    assert len(buttons) == len(DEMO_VOICES)
    assert all(
        "Right" in b and "Wrong" in b and "Keep my clip for training" in b and "Re-run" in b for b in buttons
    )


@pytest.mark.skipif(
    not default_model_path().is_file(),
    reason="the shipped model (ser_core/models/default.npz) is not there yet",
)
def test_demo_with_the_shipped_model(tmp_path):
    """The README's command for people without a token: ``ser-bot --demo`` with no settings at all."""
    proc = run_demo_process(tmp_path)
    for reply in demo_replies(proc.stdout).values():
        assert first_emotion(reply) in EMOTIONS


@pytest.mark.parametrize("voice", DEMO_VOICES, ids=lambda v: v.file)
def test_demo_voice_is_shipped_decodable_and_credited(voice):
    data = voice.path.read_bytes()
    assert len(data) < 40_000
    seconds = len(decode(data)) / SAMPLE_RATE
    assert 1.0 <= seconds <= 6.0
    # The file's name and the metadata agree with the RAVDESS name (03-01-EE-II-SS-RR-AA.wav).
    modality, channel, emotion, _, _, _, actor = voice.ravdess_name.removesuffix(".wav").split("-")
    assert (modality, channel) == ("03", "01")  # audio-only speech
    assert RAVDESS_CODES[emotion] == voice.emotion and voice.emotion in EMOTIONS
    assert int(actor) == voice.actor
    assert voice.file == f"{voice.emotion}-actor{voice.actor:02d}.ogg"
    credits = (voice.path.parent / "CREDITS.md").read_text(encoding="utf-8")
    row = next(line for line in credits.splitlines() if line.startswith(f"| `{voice.file}`"))
    assert voice.ravdess_name in row and voice.emotion in row and voice.licence in row
    assert voice.licence == "CC BY-NC-SA 4.0"
    assert "Livingstone SR, Russo FA (2018)" in credits and "10.1371/journal.pone.0196391" in credits


async def test_no_network_at_start_is_a_line_per_attempt_and_one_to_stop(
    tmp_path, model_path, monkeypatch, capsys, caplog
):
    """An unresolvable Discord (no DNS): one log line per attempt, a bounded back-off, then one line on stderr and
    exit 1; no traceback anywhere."""
    import logging

    from bot import __main__ as launcher
    from bot.bot import EmotionBot
    from bot.settings import Settings

    monkeypatch.setattr(EmotionBot, "LOGIN_RETRIES_S", (0.01, 0.02))
    settings = Settings(
        token="t",
        data_dir=tmp_path / "data",
        model_path=model_path,
        api_base="http://ser-bot-offline.invalid/api/v10",
        gateway_url="ws://ser-bot-offline.invalid/gateway",
    )
    import discord.gateway
    import discord.http

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)  # restored after the test
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    caplog.set_level(logging.DEBUG)
    assert await launcher.run(settings) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach Discord" in err and "after 3 attempts" in err
    attempts = [r for r in caplog.records if "cannot reach Discord" in r.getMessage()]
    assert len(attempts) == 2 and all(r.exc_info is None for r in attempts)
    assert "Traceback" not in caplog.text and "Traceback" not in err


async def test_start_up_says_nothing_about_voice_support(fake, settings, model, caplog):
    """PyNaCl and davey are for voice channels, which this bot never joins: their warnings are not shown."""
    import logging

    from bot_helpers import start_bot, stop_bot

    caplog.set_level(logging.INFO)
    bot, task = await start_bot(fake, settings, model)
    await stop_bot(bot, task)
    assert "voice will NOT be supported" not in caplog.text
    assert "ready as" in caplog.text  # the log itself was captured
    # ... and it says how to add the bot: its application's invite link with the permissions it needs
    invite = re.search(r"add it to a server: (\S+)", caplog.text)
    assert invite and f"client_id={bot.application_id}" in invite[1]
    assert "scope=bot+applications.commands" in invite[1] and "permissions=274878024704" in invite[1]
