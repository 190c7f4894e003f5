"""``ser-bot --demo``: the real bot, a loopback fake Discord, one synthetic voice message, the reply."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from .settings import Settings, SettingsError

log = logging.getLogger(__name__)


def synthetic_voice(seconds: float = 3.0, sr: int = 48_000, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a gliding harmonic tone with syllable-rate amplitude modulation."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) * (t < seconds - 0.1)
    y = 0.3 * y / np.abs(y).max() * envelope + 0.002 * rng.standard_normal(t.size)
    return y.astype(np.float32)


async def run_demo(settings: Settings, *, timeout: float = 60.0) -> int:
    from ser_core.audio import encode

    from . import __main__ as launcher
    from .bot import EmotionBot
    from .fakediscord import FakeDiscord
    from .storage import Storage

    try:
        model = launcher.load(settings)
    except SettingsError as exc:
        print(f"ser-bot --demo: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ser-bot-demo-") as tmp:
        demo_settings = dataclasses.replace(
            settings, token="demo-token", data_dir=Path(tmp), dev_guild_id=None
        )
        async with FakeDiscord() as fake:
            fake.install()
            storage = await Storage.open(demo_settings.db_path)
            bot = EmotionBot(settings=demo_settings, model=model, storage=storage)
            async with bot:
                runner = asyncio.create_task(bot.start(demo_settings.token))
                try:
                    ready = asyncio.create_task(bot.wait_until_ready())
                    await asyncio.wait({ready, runner}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    if not ready.done():
                        ready.cancel()
                        if runner.done() and runner.exception():
                            raise runner.exception()
                        raise TimeoutError("the bot did not connect to the fake Discord")
                    audio = encode(synthetic_voice(), 48_000, "OGG", "OPUS")
                    note = await fake.send_message(attachments=[fake.voice_attachment(audio, 3.0)])
                    print(f"demo: posted a 3 s synthetic voice message ({len(audio)} bytes) to #general")
                    reply = await fake.wait_for_reply(note["id"], timeout)
                finally:
                    await bot.close()
                    runner.cancel()
    print("demo: the bot replied:\n")
    print(reply.text or "(empty reply)")
    return 0
