"""The fake's vocabulary: Discord's constants, what the bot sent (``Record``), the guilds, gateway sessions."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import NamedTuple

API_PREFIX = "/api/v10"
MESSAGE_CONTENT_INTENT = 1 << 15
VOICE_MESSAGE_FLAG = 1 << 13
EPHEMERAL_FLAG = 1 << 6
ALL_PERMISSIONS = (1 << 50) - 1
DEFAULT_MEMBER_PERMISSIONS = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 31)
)  # view/send/...


@dataclass
class Record:
    """One thing the bot sent: a channel message, an interaction callback, a follow-up or an edit."""

    kind: str  # "message" | "callback" | "followup" | "edit"
    payload: dict
    files: list[tuple[str, bytes]] = field(default_factory=list)
    channel_id: int | None = None
    interaction_id: int | None = None
    token: str | None = None
    message_id: int | None = None
    guild_id: int | None = None  # the guild of the channel (None in direct messages)
    at: float = field(default_factory=time.perf_counter)

    @property
    def _message(self) -> dict:
        """The message fields: a callback carries them under ``data``, everything else at the top."""
        data = self.payload.get("data", self.payload) if self.kind == "callback" else self.payload
        return data or {}

    @property
    def content(self) -> str:
        return self._message.get("content") or ""

    @property
    def embeds(self) -> list[dict]:
        return self._message.get("embeds") or []

    @property
    def flags(self) -> int:
        return int(self._message.get("flags") or 0)

    @property
    def components(self) -> list[dict]:
        return self._message.get("components") or []

    @property
    def custom_ids(self) -> list[str]:
        """Every component custom id in this message, in order."""
        return [cid for _, cid in walk_components(self.components)]

    @property
    def reply_to(self) -> int | None:
        ref = self.payload.get("message_reference")
        return int(ref["message_id"]) if ref and ref.get("message_id") else None

    @property
    def text(self) -> str:
        """Content, then each embed's title, description, fields and footer, in reading order."""
        parts = [self.content]
        for e in self.embeds:
            parts += [e.get("title") or "", e.get("description") or ""]
            parts += [f"{f.get('name', '')}\n{f.get('value', '')}" for f in e.get("fields") or []]
            parts.append((e.get("footer") or {}).get("text") or "")
        return "\n".join(p for p in parts if p)


@dataclass(frozen=True)
class FakeGuild:
    """One guild of the fake: its id, its text channels and the shard that serves it.

    Besides "general" and "voice-notes": a public thread of #general (``thread_id``, "a-thread") and a
    channel only the "staff" role may see (``staff_channel_id``, "staff-only")."""

    id: int
    channel_id: int  # "general"
    other_channel_id: int  # "voice-notes"
    name: str
    shard: int
    # Derived from ``id`` (see __post_init__): distinct in every guild, and not drawn from the fake's id counter.
    role_id: int = field(init=False)  # the "speakers" role, for role-gated settings
    staff_role_id: int = field(init=False)  # the role that may see #staff-only
    thread_id: int = field(init=False)  # a public thread in #general
    staff_channel_id: int = field(init=False)  # a text channel that @everyone may not see, the staff role may

    def __post_init__(self) -> None:
        offsets = {
            "role_id": 7_000_000,
            "staff_role_id": 7_000_001,
            "thread_id": 8_000_000,
            "staff_channel_id": 9_000_000,
        }
        for name, offset in offsets.items():
            object.__setattr__(self, name, self.id + offset)  # frozen: the dataclass way to set it once

    def channel_name(self, channel_id: int) -> str:
        return {
            self.channel_id: "general",
            self.thread_id: "a-thread",
            self.staff_channel_id: "staff-only",
        }.get(channel_id, "voice-notes")

    @property
    def channel_ids(self) -> tuple[int, ...]:
        return (self.channel_id, self.other_channel_id, self.thread_id, self.staff_channel_id)


class Undelivered(NamedTuple):
    """A gateway event ``dispatch`` dropped because no live socket serves its shard."""

    event: str
    shard: int
    data: dict


@dataclass(eq=False)
class GatewaySession:
    """One gateway session (one shard of one client; ``fake.sessions`` by id): what RESUME brings back.
    ``seq`` is the sequence number of the last event sent on it."""

    session_id: str
    shard_id: int
    shard_count: int
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def walk_components(components: list[dict]):
    """(type, custom_id) of every interactive component, depth first (action rows hold the rest)."""
    for c in components:
        if c.get("custom_id"):
            yield int(c.get("type", 0)), str(c["custom_id"])
        yield from walk_components(c.get("components") or [])


def int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
