"""Plain logic the cogs use: attachment choice and pre-checks, rate limiting, permissions, stats.

Nothing here talks to Discord; attachments are anything with ``filename``, ``content_type``, ``size`` and
``duration`` attributes (``discord.Attachment`` has them), so tests call these functions directly.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from ser_core.constants import AUDIO_EXTENSIONS

VOICE_MESSAGE_FLAG = 1 << 13


class AttachmentLike(Protocol):
    filename: str
    content_type: str | None
    size: int
    duration: float | None


# ---------------------------------------------------------------------------------------------- attachments
def is_audio(att: AttachmentLike) -> bool:
    """An attachment worth analysing automatically: ``audio/*``, or a known audio extension without a
    more specific (image, text, video) content type."""
    ctype = (att.content_type or "").split(";")[0].strip().lower()
    if ctype.startswith("audio/"):
        return True
    ext = PurePosixPath(att.filename or "").suffix.lower()
    return ext in AUDIO_EXTENSIONS and ctype in ("", "application/octet-stream")


def pick_audio(attachments: Sequence[AttachmentLike]) -> AttachmentLike | None:
    """The first audio attachment of a message (a voice message has exactly one), or None."""
    return next((a for a in attachments if is_audio(a)), None)


def precheck(att: AttachmentLike, *, max_bytes: int, max_seconds: float) -> str | None:
    """Refuse from Discord's metadata before downloading; return the user-facing reason, or None if fine."""
    if att.size is not None and att.size <= 0:
        return "The file is empty (0 bytes). Record the note again and resend it."
    if att.size is not None and att.size > max_bytes:
        return precheck_size(att.size, max_bytes)
    if att.duration is not None and att.duration > max_seconds:
        return (
            f"The clip is {att.duration:.0f} s long; the limit is {max_seconds:.0f} s. Send a shorter clip."
        )
    return None


def precheck_size(size: int, max_bytes: int) -> str:
    return f"The file is {human_size(size)}; the limit is {human_size(max_bytes)}. Send a shorter clip."


def human_size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


# ---------------------------------------------------------------------------------------------- rate limit
@dataclass
class RateLimiter:
    """Per-key token bucket: ``capacity`` notes, refilled at ``capacity / per`` notes per second; 0 = no limit."""

    capacity: int = 5
    per: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)

    def hit(self, key: int) -> float:
        """Take one token for ``key``. Returns 0.0 if allowed, else the seconds until the next token."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        rate = self.capacity / self.per
        tokens, last = self._buckets.get(key, (float(self.capacity), now))
        tokens = min(float(self.capacity), tokens + (now - last) * rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > 10_000:
                self._prune(now, rate)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / rate

    def _prune(self, now: float, rate: float) -> None:
        full = [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= self.capacity]
        for k in full:
            del self._buckets[k]


# ---------------------------------------------------------------------------------------------- permissions
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5


def can_manage_modes(permissions: int) -> bool:
    """Changing a channel's or the server's mode needs Manage Server (Administrator implies it)."""
    return bool(permissions & (ADMINISTRATOR | MANAGE_GUILD))


def is_operator(user_id: int, admin_ids: Iterable[int], owner_ids: Iterable[int]) -> bool:
    """Retraining and rollback change the model every server shares, so they belong to the bot's operators:
    ``SER_ADMIN_IDS`` and the application's owner (or its team's admins and developers). A server's
    Administrator permission says nothing about the other servers and does not count."""
    return user_id in set(admin_ids) or user_id in set(owner_ids)


# ---------------------------------------------------------------------------------------------- channels
def mode_channel_id(channel, channel_id: int) -> int:
    """The channel whose mode applies to ``channel`` (id ``channel_id``): a thread follows its parent."""
    parent = getattr(channel, "parent_id", None)
    return int(parent) if parent else int(channel_id)


def visible_channels(guild, member, channel_ids: Iterable[int]) -> set[int]:
    """The channels (and threads) of ``channel_ids`` in which ``member`` may read the messages, by
    ``guild``'s cached channels and roles (``discord.Guild``/``Member``). A channel the bot no longer sees
    (deleted, an archived thread) and a private thread count as unreadable: their results are shown to their
    authors only."""
    out = set()
    for cid in channel_ids:
        channel = guild.get_channel_or_thread(int(cid))
        if channel is None or getattr(channel, "is_private", lambda: False)():
            continue
        perms = channel.permissions_for(member)
        if perms.view_channel and perms.read_message_history:
            out.add(int(cid))
    return out


# ---------------------------------------------------------------------------------------------- stats
@dataclass(frozen=True)
class Stats:
    total: int
    counts: dict[str, int]  # label → count, most common first
    days: list[dt.date]  # every day of the range, oldest first
    per_day: dict[str, list[int]]  # label → count per day (aligned with ``days``)
    mean_confidence: float


def aggregate(
    rows: Iterable[tuple[float, str, float]], *, days: int, labels: Sequence[str], now: float | None = None
) -> Stats:
    """Aggregate (unix time, label, confidence) rows over the last ``days`` days (UTC calendar days).

    Labels outside ``labels`` (e.g. from an older model) are appended in order of appearance.
    """
    now = time.time() if now is None else now
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    day_list = [today - dt.timedelta(days=days - 1 - i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    order = list(labels)
    per_day: dict[str, list[int]] = {lab: [0] * days for lab in order}
    counts: Counter[str] = Counter()
    conf_sum = 0.0
    for ts, label, conf in rows:
        day = dt.datetime.fromtimestamp(ts, dt.timezone.utc).date()
        if day not in index:
            continue
        if label not in per_day:
            order.append(label)
            per_day[label] = [0] * days
        per_day[label][index[day]] += 1
        counts[label] += 1
        conf_sum += conf
    total = sum(counts.values())
    ranked = dict(sorted(counts.items(), key=lambda kv: (-kv[1], order.index(kv[0]))))
    return Stats(
        total=total,
        counts=ranked,
        days=day_list,
        per_day={lab: per_day[lab] for lab in order},
        mean_confidence=conf_sum / total if total else 0.0,
    )
