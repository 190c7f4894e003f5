"""Helpers shared by the bot tests (a uniquely named module: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from pathlib import Path

from bot.app import build_bot
from bot.bot import EmotionBot
from bot.logic import RateLimiter
from bot.settings import Settings
from bot.storage import Detection
from bot.testing.fakediscord import FakeDiscord
from ser_core import EMOTIONS, Limits

#: The project's root: ``python -m bot`` subprocesses import the checkout, not an installed copy.
ROOT = Path(__file__).resolve().parents[2]
EMOTION_WORD = re.compile(r"\b(" + "|".join(EMOTIONS) + r")\b", re.IGNORECASE)


def first_emotion(text: str) -> str | None:
    m = EMOTION_WORD.search(text)
    return m.group(1).lower() if m else None


def expected_label(model, data: bytes) -> str:
    return model.predict(data, limits=Limits()).label


def bot_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m bot`` subprocess: this one without any ``SER_*`` setting or token
    (so the user's own cannot leak in), importing this checkout, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("SER_") or k == "DISCORD_TOKEN")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


async def bot_process(cwd: Path, env: dict[str, str], *, stdout=asyncio.subprocess.PIPE):
    """``python -m bot`` started in ``cwd`` with ``env`` (see ``bot_env``); stderr is piped for the tests'
    messages. Stop it with ``reap``."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=env, stdout=stdout, stderr=asyncio.subprocess.PIPE
    )


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if the test left it running, and wait for it."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


@contextlib.asynccontextmanager
async def serving(monkeypatch, **kwargs):
    """A started ``FakeDiscord(**kwargs)`` that discord.py in this process talks to; at the end it is closed
    and must have known every route the clients called."""
    import discord.gateway
    import discord.http
    import yarl

    fake = FakeDiscord(**kwargs)
    await fake.start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await asyncio.wait_for(fake.close(), 10)
    assert not fake.unknown, f"the clients called routes the fake does not know: {fake.unknown}"


def det(user: int, t: float, label: str = "sad", *, guild: int | None = 1) -> Detection:
    """A stored result of ``user`` at unix time ``t`` in channel 2 of ``guild`` (None: a DM)."""
    return Detection(
        guild_id=guild,
        channel_id=2,
        user_id=user,
        message_id=int(t),
        created_at=t,
        label=label,
        confidence=0.5,
        probabilities={label: 0.5, "calm": 0.5},
        duration_s=2.0,
        model_version="v",
    )


async def start_bot(
    fake: FakeDiscord, settings: Settings, model, **kwargs
) -> tuple[EmotionBot, asyncio.Task]:
    kwargs.setdefault("rate_limiter", RateLimiter(capacity=1000, per=1.0))
    if kwargs["rate_limiter"] is None:  # let the bot build it from the settings
        del kwargs["rate_limiter"]
    bot = await build_bot(settings, model=model, guild_ready_timeout=0.05, **kwargs)
    task = asyncio.create_task(bot.start(settings.token))
    await fake.wait_ready(15)
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    return bot, task


async def stop_bot(bot: EmotionBot, task: asyncio.Task) -> None:
    await asyncio.wait_for(bot.close(), 20)
    # The connect loop may end with the closed socket's error; only its ending matters here.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)


def tone(freq: float, seconds: float, *, amp: float = 0.3, sr: int = 16_000, seed: int = 0):
    """A harmonic tone with a little noise (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = sum(np.sin(2 * np.pi * k * freq * t) / k for k in range(1, 4))
    y = amp * y / np.abs(y).max() + 0.003 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def noise(seconds: float, *, amp: float = 0.15, sr: int = 16_000, seed: int = 0):
    import numpy as np

    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def make_labelled_folder(root, per_speaker: int = 4, seconds: float = 1.2):
    """3 speakers x 3 clearly different sounds x ``per_speaker`` clips of ``seconds``, with labels.csv (like
    tests/test_cli.py)."""
    from ser_core.audio import encode

    root.mkdir(parents=True, exist_ok=True)
    rows = ["path,emotion,speaker"]
    for spk in range(3):
        for i in range(per_speaker):
            s = spk * 100 + i
            clips = {
                "sad": tone(110 + 3 * i, seconds, amp=0.1, seed=s),
                "angry": tone(320 + 5 * i, seconds, amp=0.6, seed=s),
                "fearful": noise(seconds, amp=0.15, seed=s),
            }
            for lab, y in clips.items():
                name = f"{lab}_{spk}_{i}.wav"
                (root / name).write_bytes(encode(y, 16_000, "WAV"))
                rows.append(f"{name},{lab},spk{spk}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
