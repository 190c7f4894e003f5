"""Helpers shared by the bot tests (a uniquely named module: tests/ is not a package)."""

from __future__ import annotations

import asyncio
import contextlib
import re

from bot.bot import EmotionBot
from bot.fakediscord import FakeDiscord
from bot.logic import RateLimiter
from bot.settings import Settings
from bot.storage import Storage
from ser_core import EMOTIONS, Limits

EMOTION_WORD = re.compile(r"\b(" + "|".join(EMOTIONS) + r")\b", re.IGNORECASE)


def first_emotion(text: str) -> str | None:
    m = EMOTION_WORD.search(text)
    return m.group(1).lower() if m else None


def expected_label(model, data: bytes) -> str:
    return model.predict(data, limits=Limits()).label


async def start_bot(
    fake: FakeDiscord, settings: Settings, model, **kwargs
) -> tuple[EmotionBot, asyncio.Task]:
    storage = await Storage.open(settings.db_path)
    kwargs.setdefault("rate_limiter", RateLimiter(capacity=1000, per=1.0))
    bot = EmotionBot(settings=settings, model=model, storage=storage, guild_ready_timeout=0.05, **kwargs)
    task = asyncio.create_task(bot.start(settings.token))
    await fake.wait_ready(15)
    await asyncio.wait_for(bot.wait_until_ready(), 10)
    return bot, task


async def stop_bot(bot: EmotionBot, task: asyncio.Task) -> None:
    await asyncio.wait_for(bot.close(), 20)
    # The connect loop may end with the closed socket's error; only its ending matters here.
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, 10)
