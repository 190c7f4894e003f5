"""A small loopback fake of Discord (REST + gateway) for tests, the offline demo and the benchmark.

Re-exports what callers import, so that ``from bot.testing.fakediscord import FakeDiscord`` keeps working.
"""

from .server import (
    ALL_PERMISSIONS,
    API_PREFIX,
    DEFAULT_MEMBER_PERMISSIONS,
    EPHEMERAL_FLAG,
    MESSAGE_CONTENT_INTENT,
    VOICE_MESSAGE_FLAG,
    FakeDiscord,
    FakeGuild,
    GatewaySession,
    Record,
    Undelivered,
    point_discord_at,
)

__all__ = [
    "ALL_PERMISSIONS",
    "API_PREFIX",
    "DEFAULT_MEMBER_PERMISSIONS",
    "EPHEMERAL_FLAG",
    "MESSAGE_CONTENT_INTENT",
    "VOICE_MESSAGE_FLAG",
    "FakeDiscord",
    "FakeGuild",
    "GatewaySession",
    "Record",
    "Undelivered",
    "point_discord_at",
]
