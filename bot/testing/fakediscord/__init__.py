"""A small loopback fake of Discord (REST + gateway) for tests, the offline demo and the benchmark.

It speaks just enough of the real protocol for the real discord.py client: ``GET /gateway[/bot]``,
``/users/@me``, ``/oauth2/applications/@me``, command sync, channel messages (JSON and multipart with files),
interaction callbacks and webhook follow-ups, attachment downloads it serves itself, and a JSON websocket
gateway (HELLO, IDENTIFY → READY + GUILD_CREATE, heartbeats, RESUME). Everything the bot sends is recorded in
``records``; ``wait_for`` awaits a record matching a predicate. Messages the bot creates are kept in
``messages`` (with their components), so ``click`` can press a button or choose in a select menu
(a MESSAGE_COMPONENT interaction); edits (``PATCH`` of channel and webhook messages, UPDATE_MESSAGE
callbacks) are recorded as ``"edit"`` / ``"callback"`` records.

Usage::

    fake = FakeDiscord()
    await fake.start()
    fake.install()                     # point discord.py's REST and gateway URLs here (same process)
    ...start the bot, then await fake.wait_ready()
    msg = await fake.send_message(attachments=[fake.voice_attachment(ogg_bytes, 3.0)])
    reply = await fake.wait_for_reply(msg["id"])

Faults on demand: ``rate_limit`` answers the next matching REST calls with a Discord 429 (``retry_after`` in the
body and ``X-RateLimit-*`` / ``Retry-After`` headers); ``drop_gateway`` closes the websocket with a close code
(4000 and 1001 are resumable: the client comes back with RESUME, recorded in ``resumes``); ``valid_token``
makes ``/users/@me`` answer 401 to any other token, as Discord does for a wrong one.

Sharding: ``FakeDiscord(shard_count=N, guild_count=G)`` serves G guilds (each with its own "general" and
"voice-notes" channels, listed in ``guilds``; ``guild_id`` / ``channel_id`` / ``other_channel_id`` are the first
one's) spread over N shards by Discord's rule ``(guild_id >> 22) % N`` (``shard_of``): guild k lands on shard
k mod N. IDENTIFY must carry ``shard: [id, N]`` (absent means ``[0, 1]``), or the socket is closed with 4011
(too few shards: sharding required) or 4010 (invalid shard), recorded in ``refused``. Each connection has its own
session (id, sequence numbers, RESUME), READY and GUILD_CREATE cover only its shard's guilds, and ``dispatch``
sends a guild event only to the sockets of the guild's shard and a direct message only to shard 0; an event
whose shard has no live socket is dropped, as Discord would, and kept in ``undelivered``. ``connected_shards``,
``wait_ready(shards=...)`` and ``wait_connected`` follow the shards' connections.

Unknown routes answer 404 with a JSON error and are logged (``fake.unknown``); it never answers 5xx, which
the client would retry for many seconds.

Layout: ``models`` (constants, ``Record``, ``FakeGuild``, sessions), ``state`` (ids, guilds, payloads),
``rest`` (HTTP routes, downloads, 429s), ``gateway`` (websocket sessions, shards, ``dispatch``), ``driver``
(acting as users, awaiting records), ``server`` (``FakeDiscord`` and ``point_discord_at``). Imported only by
``ser-bot --demo``, the tests and the benchmark.
"""

from .models import (
    ALL_PERMISSIONS,
    API_PREFIX,
    DEFAULT_MEMBER_PERMISSIONS,
    EPHEMERAL_FLAG,
    MESSAGE_CONTENT_INTENT,
    VOICE_MESSAGE_FLAG,
    FakeGuild,
    GatewaySession,
    Record,
    Undelivered,
)
from .server import FakeDiscord, point_discord_at

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
