"""``ser-bot --demo``: the real bot, a loopback fake Discord, three real RAVDESS voice messages, the replies.

The clips ship in ``bot/testing/voices/`` (credits and the rule that chose them: ``CREDITS.md`` there). The shipped
model was trained on all of RAVDESS, these clips included, so the demo shows the bot at work; it does not
measure accuracy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import sys
import tempfile
from pathlib import Path

from .settings import Settings, SettingsError

log = logging.getLogger(__name__)

VOICES_DIR = Path(__file__).parent / "testing" / "voices"
RAVDESS_LICENCE = "CC BY-NC-SA 4.0"


@dataclasses.dataclass(frozen=True)
class DemoVoice:
    """One shipped clip: its file in ``testing/voices/``, its RAVDESS origin and the emotion the actor acted."""

    file: str
    ravdess_name: str
    actor: int
    emotion: str
    licence: str = RAVDESS_LICENCE

    @property
    def path(self) -> Path:
        return VOICES_DIR / self.file

    @property
    def caption(self) -> str:
        return f"{self.file}, RAVDESS actor {self.actor:02d}, acted emotion: {self.emotion} ({self.licence})"


# Rule (CREDITS.md): strong intensity, statement 01, repetition 01; angry, sad, happy by actors 01, 02, 03.
DEMO_VOICES: tuple[DemoVoice, ...] = (
    DemoVoice("angry-actor01.ogg", "03-01-05-02-01-01-01.wav", 1, "angry"),
    DemoVoice("sad-actor02.ogg", "03-01-04-02-01-01-02.wav", 2, "sad"),
    DemoVoice("happy-actor03.ogg", "03-01-03-02-01-01-03.wav", 3, "happy"),
)


def plain(markdown: str) -> str:
    """Discord Markdown as terminal text: no ``**bold**``, no code fences, no inline backticks."""
    text = re.sub(r"```[a-z]*\n?", "", markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", text)
    return text.replace("`", "").strip()


def transcript(reply, picture: Path) -> str:
    """A reply as a terminal reads it: its text and embed in plain text, its picture saved to ``picture``
    (named), and its buttons listed."""
    lines = [plain(reply.content)] if reply.content else []
    for embed in reply.embeds:
        lines += [plain(embed.get("title") or ""), plain(embed.get("description") or "")]
        for f in embed.get("fields") or []:
            lines.append(f"{plain(f.get('name', ''))}:\n{plain(f.get('value', ''))}")
        footer = (embed.get("footer") or {}).get("text")
        if footer:
            lines.append(plain(footer))
    for name, data in reply.files:
        if name.endswith(".png"):
            picture.parent.mkdir(parents=True, exist_ok=True)
            picture.write_bytes(data)
            lines.append(f"[picture: {name}, {len(data) // 1024} kB, saved to {picture}]")
    buttons = [
        f"{(c.get('emoji') or {}).get('name', '')} {c.get('label', '')}".strip()
        for row in reply.components
        for c in row.get("components") or []
        if c.get("type") == 2
    ]
    if buttons:
        lines.append("[buttons: " + " | ".join(f"[{b}]" for b in buttons) + "]")
    return "\n".join(line for line in lines if line)


async def run_demo(settings: Settings, *, timeout: float = 60.0) -> int:
    from ser_core import SAMPLE_RATE
    from ser_core.audio import decode

    from .app import open_bot
    from .testing.fakediscord import FakeDiscord

    clips = [(voice, voice.path.read_bytes()) for voice in DEMO_VOICES]
    with tempfile.TemporaryDirectory(prefix="ser-bot-demo-") as tmp:
        # A throw-away SQLite folder and one process, whatever the settings say: the demo stores nothing.
        demo_settings = dataclasses.replace(
            settings,
            token="demo-token",
            data_dir=Path(tmp),
            dev_guild_id=None,
            database_url=None,
            shard_count=None,
            shard_ids=None,
        )
        async with FakeDiscord() as fake:
            fake.install()
            try:
                bot = await open_bot(demo_settings)
            except SettingsError as exc:
                print(f"ser-bot --demo: {exc}", file=sys.stderr)
                return 2
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
                    pictures = Path(tempfile.gettempdir()) / "ser-bot-demo"
                    for i, (voice, audio) in enumerate(clips, 1):
                        seconds = len(decode(audio)) / SAMPLE_RATE
                        # One demo user per voice: three actors are three people, each with a profile of their own.
                        speaker = fake.user(fake.new_id(), f"actor{voice.actor:02d}")
                        note = await fake.send_message(
                            attachments=[fake.voice_attachment(audio, seconds)], author=speaker
                        )
                        reply = await fake.wait_for_reply(note["id"], timeout)
                        print(f"\n--- voice message {i}/{len(clips)}: {voice.caption}")
                        print(f"{speaker['username']} posted {seconds:.1f} s to #general; the bot replied:\n")
                        print(transcript(reply, pictures / f"reply-{i}-{voice.emotion}.png"), flush=True)
                finally:
                    await bot.close()
                    runner.cancel()
    print(
        "\ndemo: the shipped model was trained on all of RAVDESS, these clips included, so this shows the bot"
        " at work, not its accuracy. Credits: bot/testing/voices/CREDITS.md"
    )
    return 0
