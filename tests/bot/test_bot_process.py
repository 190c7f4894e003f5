"""Starting the bot the way a user does: ``python -m bot`` in a subprocess, settings from the environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bot_helpers import expected_label, first_emotion

from bot.fakediscord import FakeDiscord
from ser_core import default_model_path

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(90)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not (k.startswith("SER_") or k == "DISCORD_TOKEN")}
    env.update(extra)
    return env


def test_missing_token_exits_2_with_one_line(tmp_path):
    # cwd without a .env file, so only the environment counts.
    proc = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
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
    ],
)
def test_invalid_setting_exits_2_with_one_line(tmp_path, name, value):
    env = clean_env(PYTHONPATH=str(ROOT), DISCORD_TOKEN="x", **{name: value})
    proc = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and name in proc.stderr


async def test_python_m_bot_replies_to_a_voice_message_and_stops_on_sigterm(
    tmp_path, model_path, model, voice_ogg
):
    async with FakeDiscord() as fake:
        env = clean_env(
            PYTHONPATH=str(ROOT),
            DISCORD_TOKEN="process-token",
            SER_DATA_DIR=str(tmp_path / "data"),
            SER_MODEL_PATH=str(model_path),
            **fake.env(),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
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
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_demo_runs_offline_and_prints_the_reply(tmp_path, model_path):
    env = clean_env(PYTHONPATH=str(ROOT), SER_MODEL_PATH=str(model_path))  # no DISCORD_TOKEN
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    reply = proc.stdout.split("the bot replied:", 1)[1]
    assert first_emotion(reply) is not None
    assert reply.count("%") >= 8  # every class's confidence
    assert list(tmp_path.iterdir()) == []  # the demo leaves no data behind


@pytest.mark.skipif(
    not default_model_path().is_file(),
    reason="the shipped model (ser_core/models/default.npz) is not there yet",
)
def test_demo_with_the_shipped_model(tmp_path):
    """The README's command for people without a token: ``ser-bot --demo`` with no settings at all."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "--demo"],
        cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert first_emotion(proc.stdout.split("the bot replied:", 1)[1]) is not None
