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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import itertools
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

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
    def content(self) -> str:
        data = self.payload.get("data", self.payload) if self.kind == "callback" else self.payload
        return data.get("content") or ""

    @property
    def embeds(self) -> list[dict]:
        data = self.payload.get("data", self.payload) if self.kind == "callback" else self.payload
        return data.get("embeds") or []

    @property
    def flags(self) -> int:
        data = self.payload.get("data", self.payload) if self.kind == "callback" else self.payload
        return int((data or {}).get("flags") or 0)

    @property
    def components(self) -> list[dict]:
        data = self.payload.get("data", self.payload) if self.kind == "callback" else self.payload
        return (data or {}).get("components") or []

    @property
    def custom_ids(self) -> list[str]:
        """Every component custom id in this message, in order."""
        return [cid for _, cid in _walk_components(self.components)]

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

    def channel_name(self, channel_id: int) -> str:
        return {
            self.channel_id: "general",
            self.thread_id: "a-thread",
            self.staff_channel_id: "staff-only",
        }.get(channel_id, "voice-notes")

    @property
    def role_id(self) -> int:
        """The guild's "speakers" role, for role-gated settings."""
        return self.id + 7_000_000

    @property
    def staff_role_id(self) -> int:
        """The role that may see #staff-only."""
        return self.id + 7_000_001

    @property
    def thread_id(self) -> int:
        """A public thread in #general."""
        return self.id + 8_000_000

    @property
    def staff_channel_id(self) -> int:
        """A text channel that @everyone may not see, the staff role may."""
        return self.id + 9_000_000

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


class FakeDiscord:
    def __init__(
        self,
        *,
        allow_message_content: bool = True,
        heartbeat_interval_ms: int = 41_250,
        valid_token: str | None = None,
        shard_count: int = 1,
        guild_count: int = 1,
    ) -> None:
        if shard_count < 1 or guild_count < 1:
            raise ValueError(f"shard_count and guild_count must be >= 1, not {shard_count}, {guild_count}")
        self.allow_message_content = allow_message_content
        self.valid_token = valid_token  # None: any token logs in
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.shard_count = shard_count
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self.app_id = self.new_id()
        self.bot_user = self.user(self.app_id, "ser-bot", bot=True)
        self.guilds: list[FakeGuild] = []
        for k in range(guild_count):
            gid = self._guild_snowflake(k)
            name = "Fake Guild" if k == 0 else f"Fake Guild {k + 1}"
            self.guilds.append(FakeGuild(gid, self.new_id(), self.new_id(), name, self.shard_of(gid)))
        self._guild_by_id = {g.id: g for g in self.guilds}
        self._guild_by_channel = {c: g for g in self.guilds for c in g.channel_ids}
        first = self.guilds[0]
        self.guild_id = first.id
        self.channel_id = first.channel_id
        # a second text channel of the guild (per-channel settings)
        self.other_channel_id = first.other_channel_id
        self.dm_channel_id = self.new_id()  # the owner's direct-message channel with the bot
        self.owner = self.user(self.new_id(), "owner")
        self.records: list[Record] = []
        self.commands: dict[str, list[dict]] = {}  # "global" or guild id → last bulk overwrite
        self.unknown: list[str] = []
        self.identifies: list[dict] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.messages: dict[int, dict] = {}  # every message posted (by the bot or a test) or edited, by id
        self._interaction_messages: dict[int, int] = {}  # component interaction id → its message id
        self._originals: dict[str, int] = {}  # interaction token → id of its response message
        self.expired_tokens: set[str] = set()  # webhook calls with these answer 404 Unknown Webhook
        self.downloads: list[str] = []
        self.resumes: list[dict] = []  # RESUME payloads received
        self.rate_limited: list[str] = []  # "METHOD /path" of every call answered 429
        self._rate_limits: list[list] = []  # [method, path predicate, retry_after, remaining, global]
        self.refused: list[tuple[int, dict]] = []  # (close code, IDENTIFY payload) of every refused IDENTIFY
        self.undelivered: list[Undelivered] = []  # events dropped: their shard had no live socket
        self.ready_shards: set[int] = set()  # shards that were sent READY (at least once)
        self._interactions: dict[str, dict] = {}  # token → INTERACTION_CREATE payload
        self._interaction_tokens: dict[int, str] = {}  # interaction id → its token
        self.port: int | None = None
        self._open: set[web.WebSocketResponse] = set()  # every gateway socket, identified or not
        # identified or resumed sockets → their session
        self._live: dict[web.WebSocketResponse, GatewaySession] = {}
        self.sessions: dict[str, GatewaySession] = {}  # session id → session (READY's), for RESUME
        self._changed = asyncio.Condition()
        self._gateway_changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for ws in list(self._open):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def env(self) -> dict[str, str]:
        """Environment variables that point a ``ser-bot`` process at this fake."""
        return {"SER_DISCORD_API_BASE": self.api_base, "SER_DISCORD_GATEWAY": self.gateway_url}

    def install(self) -> None:
        """Point discord.py (in this process) at the fake."""
        point_discord_at(self.api_base, self.gateway_url)

    async def wait_ready(self, timeout: float = 15.0, shards: int | Iterable[int] | None = None) -> None:
        """Until every shard (``shards``: that many shards, or these shard ids) has identified and received
        READY and its GUILD_CREATEs (once is enough: a shard that disconnected since still counts)."""
        if shards is None:
            shards = range(self.shard_count)
        if isinstance(shards, int):
            count = shards

            def done() -> bool:
                return len(self.ready_shards) >= count

            wanted = f"{count} shard(s)"
        else:
            ids = set(shards)

            def done() -> bool:
                return ids <= self.ready_shards

            wanted = f"shards {sorted(ids)}"
        await self._wait_gateway(done, timeout, lambda: f"{wanted} READY, got {sorted(self.ready_shards)}")

    async def wait_connected(self, shards: Iterable[int], timeout: float = 15.0) -> None:
        """Until the shards with a live socket are exactly ``shards`` (e.g. ``[0]`` once shard 1's client
        has gone)."""
        ids = set(shards)
        await self._wait_gateway(
            lambda: self.connected_shards() == ids,
            timeout,
            lambda: f"shards {sorted(ids)} connected, got {sorted(self.connected_shards())}",
        )

    async def _wait_gateway(
        self, done: Callable[[], bool], timeout: float, describe: Callable[[], str]
    ) -> None:
        try:
            async with self._gateway_changed:
                await asyncio.wait_for(self._gateway_changed.wait_for(done), timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"within {timeout} s: wanted {describe()}") from None

    async def _gateway_event(self) -> None:
        async with self._gateway_changed:
            self._gateway_changed.notify_all()

    # ------------------------------------------------------------------ guilds and shards
    def shard_of(self, guild_id: int | str) -> int:
        """The shard that serves ``guild_id``: ``(guild_id >> 22) % shard_count``, Discord's rule."""
        return (int(guild_id) >> 22) % self.shard_count

    def guild(self, guild_id: int | str | None = None) -> FakeGuild:
        """The guild ``guild_id`` (default: the first guild)."""
        if guild_id is None:
            return self.guilds[0]
        try:
            return self._guild_by_id[int(guild_id)]
        except KeyError:
            raise KeyError(
                f"the fake has no guild {guild_id}; it has {[g.id for g in self.guilds]}"
            ) from None

    def guilds_of(self, shard_id: int) -> list[FakeGuild]:
        """The guilds shard ``shard_id`` serves, in order."""
        return [g for g in self.guilds if g.shard == shard_id]

    def guild_of_channel(self, channel_id: int | str) -> FakeGuild | None:
        """The guild a text channel belongs to (None for the DM channel or an unknown channel)."""
        return self._guild_by_channel.get(int(channel_id))

    def connected_shards(self) -> set[int]:
        """Ids of the shards that have at least one live (identified or resumed, not closed) socket."""
        return {s.shard_id for ws, s in self._live.items() if not ws.closed}

    def _guild_snowflake(self, k: int) -> int:
        """A fresh id whose ``>> 22`` is congruent to ``k`` modulo ``shard_count`` (so guild k is on shard
        k mod N); later ids stay above it."""
        candidate = self.new_id()
        hi = candidate >> 22
        shift = (k - hi) % self.shard_count
        if shift == 0:
            return candidate
        gid = (hi + shift) << 22
        self._ids = itertools.count(gid + 1)
        return gid

    # ------------------------------------------------------------------ payload helpers
    def new_id(self) -> int:
        return next(self._ids)

    @staticmethod
    def user(user_id: int, name: str, *, bot: bool = False) -> dict:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
        }

    def member(self, user: dict, permissions: int | None = None, roles: Iterable[int] = ()) -> dict:
        m = {
            "user": user,
            "roles": [str(r) for r in roles],
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        if permissions is not None:
            m["permissions"] = str(permissions)
        return m

    def add_file(
        self,
        data: bytes,
        filename: str,
        content_type: str | None,
        *,
        channel_id: int | None = None,
        **extra: Any,
    ) -> dict:
        """Serve ``data`` for download and return its attachment payload (``extra`` keys are added); the URL
        names ``channel_id`` (default: #general of the first guild), as Discord's CDN does."""
        att_id = self.new_id()
        # Quoted, so that a hostile name such as ``../../x.ogg`` stays one URL segment, as on Discord's CDN.
        path = (
            f"/attachments/{channel_id or self.channel_id}/{att_id}/{urllib.parse.quote(filename, safe='')}"
        )
        self.files[path] = (data, content_type or "application/octet-stream")
        att = {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": self.base_url + path,
            "proxy_url": self.base_url + path,
        }
        if content_type:
            att["content_type"] = content_type
        att.update(extra)
        return att

    def voice_attachment(self, data: bytes, duration: float, *, channel_id: int | None = None) -> dict:
        """A voice message's attachment: ``voice-message.ogg``, audio/ogg, duration and waveform set."""
        waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
        return self.add_file(
            data,
            "voice-message.ogg",
            "audio/ogg",
            channel_id=channel_id,
            duration_secs=duration,
            waveform=waveform,
        )

    def _place(
        self, channel_id: int | None, guild_id: int | str | None, dm: bool
    ) -> tuple[int, FakeGuild | None]:
        """(channel id, guild or None for a DM): ``dm`` → the DM channel; a known channel → its guild; no
        channel → ``guild_id``'s (default: the first guild's) #general; an unknown channel → ``guild_id``'s
        guild (default: the first)."""
        if dm or (channel_id is not None and int(channel_id) == self.dm_channel_id):
            return int(channel_id or self.dm_channel_id), None
        if channel_id is None:
            guild = self.guild(guild_id)
            return guild.channel_id, guild
        return int(channel_id), self.guild_of_channel(channel_id) or self.guild(guild_id)

    def message_payload(
        self,
        *,
        author: dict,
        content: str = "",
        attachments: list[dict] | None = None,
        flags: int = 0,
        channel_id: int | None = None,
        embeds: list | None = None,
        message_id: int | None = None,
        message_reference: dict | None = None,
        dm: bool = False,
        guild_id: int | None = None,
        roles: list[int] | None = None,
    ) -> dict:
        """A message payload in ``channel_id`` (default: #general of ``guild_id``, itself defaulting to the
        first guild) with that channel's guild, or in the DM channel (``dm``: no guild)."""
        channel_id, guild = self._place(channel_id, guild_id, dm)
        data = {
            "id": str(message_id or self.new_id()),
            "channel_id": str(channel_id),
            "guild_id": str(guild.id if guild else 0),
            "author": author,
            "content": content,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "pinned": False,
            "type": 0,
            "flags": flags,
            "components": [],
        }
        if guild is None:
            del data["guild_id"]
        elif not author.get("bot") or author["id"] != self.bot_user["id"]:
            data["member"] = {
                "roles": [str(r) for r in roles or []],
                "joined_at": _now_iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        if message_reference:
            data["message_reference"] = message_reference
        return data

    # ------------------------------------------------------------------ driving the bot
    async def send_message(
        self,
        *,
        attachments: list[dict] | None = None,
        content: str = "",
        author: dict | None = None,
        voice: bool | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        guild_id: int | None = None,
        roles: list[int] | None = None,
    ) -> dict:
        """Post a message (MESSAGE_CREATE) in ``channel_id`` (default: #general of ``guild_id``, itself
        defaulting to the first guild). ``voice`` defaults to True for a lone voice attachment; ``dm``: in the
        author's direct-message channel with the bot (no guild; delivered to shard 0)."""
        attachments = attachments or []
        if voice is None:
            voice = len(attachments) == 1 and "waveform" in attachments[0]
        data = self.message_payload(
            author=author or self.owner,
            content=content,
            attachments=attachments,
            flags=VOICE_MESSAGE_FLAG if voice else 0,
            channel_id=channel_id,
            dm=dm,
            guild_id=guild_id,
            roles=roles,
        )
        self.messages[int(data["id"])] = data
        await self.dispatch("MESSAGE_CREATE", data)
        return data

    async def slash(
        self,
        name: str,
        subcommand: str | None = None,
        options: list[dict] | None = None,
        *,
        resolved: dict | None = None,
        user: dict | None = None,
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        channel_id: int | None = None,
        dm: bool = False,
        guild_id: int | None = None,
        roles: Iterable[int] = (),
    ) -> dict:
        """Invoke ``/name [subcommand] options`` as ``user`` with ``permissions`` and ``roles``
        (INTERACTION_CREATE), in ``channel_id`` (default: #general of ``guild_id``, itself defaulting to the
        first guild) or, with ``dm``, in the user's direct messages with the bot."""
        opts = options or []
        if subcommand:
            opts = [{"type": 1, "name": subcommand, "options": opts}]
        data: dict = {"id": str(self.command_id(name, 1)), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = resolved
        return await self.interact(
            data,
            user=user,
            permissions=permissions,
            channel_id=channel_id,
            dm=dm,
            guild_id=guild_id,
            roles=roles,
        )

    async def context_menu(
        self,
        name: str,
        message: dict,
        *,
        user: dict | None = None,
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    ) -> dict:
        """Run the message context-menu command ``name`` on ``message`` (in the message's channel and guild)."""
        data = {
            "id": str(self.command_id(name, 3)),
            "name": name,
            "type": 3,
            "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }
        channel_id = int(message["channel_id"])
        return await self.interact(
            data,
            user=user,
            permissions=permissions,
            channel_id=channel_id,
            dm=channel_id == self.dm_channel_id,
            guild_id=_int_or_none(str(message.get("guild_id") or "")),
        )

    def attachment_option(self, name: str, attachment: dict) -> tuple[dict, dict]:
        """(option, resolved) for an attachment option."""
        return {"type": 11, "name": name, "value": attachment["id"]}, {
            "attachments": {attachment["id"]: attachment}
        }

    async def click(
        self,
        message: Record | dict | int,
        custom_id: str,
        *,
        values: list[str] | None = None,
        user: dict | None = None,
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    ) -> dict:
        """Press the button (or choose ``values`` in the select menu) ``custom_id`` of a bot message
        (a record, a message payload or a message id): a MESSAGE_COMPONENT interaction."""
        if isinstance(message, Record):
            message = self.messages[int(message.message_id)]  # type: ignore[arg-type]
        elif isinstance(message, int):
            message = self.messages[message]
        kinds = dict((cid, t) for t, cid in _walk_components(message.get("components") or []))
        if custom_id not in kinds:
            raise KeyError(f"message {message['id']} has no component {custom_id!r}; it has {list(kinds)}")
        data: dict = {"custom_id": custom_id, "component_type": kinds[custom_id]}
        if kinds[custom_id] != 2:
            data["values"] = list(values or [])
        channel_id = int(message["channel_id"])
        return await self.interact(
            data,
            user=user,
            permissions=permissions,
            type_=3,
            message=message,
            channel_id=channel_id,
            dm=channel_id == self.dm_channel_id,
            guild_id=_int_or_none(str(message.get("guild_id") or "")),
        )

    async def interact(
        self,
        data: dict,
        *,
        user: dict | None = None,
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        type_: int = 2,
        message: dict | None = None,
        channel_id: int | None = None,
        dm: bool = False,
        guild_id: int | None = None,
        roles: Iterable[int] = (),
    ) -> dict:
        """Dispatch an INTERACTION_CREATE of ``type_`` with ``data`` in ``channel_id`` (default: #general of
        ``guild_id``, itself defaulting to the first guild) or in the user's DMs (``dm``)."""
        user = user or self.owner
        channel_id, guild = self._place(channel_id, guild_id, dm)
        gid = str(guild.id if guild else 0)
        channel = self.channel_payload(guild, channel_id) if guild else {}
        payload = {
            "id": str(self.new_id()),
            "application_id": str(self.app_id),
            "type": type_,
            "data": data,
            "guild_id": gid,
            "channel_id": str(channel_id),
            "channel": channel,
            "member": self.member(user, permissions, roles),
            "token": f"itoken-{self.new_id()}",
            "version": 1,
            "app_permissions": str(ALL_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": gid},
            "context": 0,
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        if guild is None:  # a bot DM: no guild, the user instead of a member (interaction context 1)
            for key in ("guild_id", "member", "guild_locale"):
                del payload[key]
            payload["user"] = user
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [user]}
            payload["authorizing_integration_owners"] = {"0": "0"}
            payload["context"] = 1
        if message is not None:
            payload["message"] = message
            self._interaction_messages[int(payload["id"])] = int(message["id"])
        self._interactions[payload["token"]] = payload
        self._interaction_tokens[int(payload["id"])] = payload["token"]
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def command_id(self, name: str, type_: int) -> int:
        for cmds in self.commands.values():
            for c in cmds:
                if c.get("name") == name and c.get("type", 1) == type_:
                    return int(c["id"])
        return self.new_id()

    # ------------------------------------------------------------------ faults
    def rate_limit(
        self,
        method: str,
        path: Callable[[str], bool] | str,
        *,
        retry_after: float = 0.2,
        count: int = 1,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` REST calls ``method`` on a path (below ``/api/v10``; a predicate, or a
        string the path must contain) with 429 Too Many Requests, as Discord does."""
        match = path if callable(path) else (lambda p, s=path: s in p)
        self._rate_limits.append([method.upper(), match, retry_after, count, is_global])

    async def drop_gateway(self, code: int = 4000, *, shard: int | None = None) -> None:
        """Close every gateway connection (of ``shard`` only, if given) with ``code`` (4000 unknown error, 1001
        going away: both resumable)."""
        for ws, session in list(self._live.items()):
            if shard is None or session.shard_id == shard:
                await ws.close(code=code, message=b"fake discord dropped the connection")

    async def wait_resumed(self, count: int = 1, timeout: float = 15.0) -> None:
        """Until ``count`` RESUMEs have been answered."""
        deadline = time.monotonic() + timeout
        while len(self.resumes) < count:
            if time.monotonic() > deadline:
                raise asyncio.TimeoutError(
                    f"{len(self.resumes)} RESUME(s) within {timeout} s, wanted {count}"
                )
            await asyncio.sleep(0.02)

    def _rate_limited(self, method: str, path: str) -> web.Response | None:
        for rule in self._rate_limits:
            if rule[3] > 0 and rule[0] == method and rule[1](path):
                rule[3] -= 1
                retry_after, is_global = rule[2], rule[4]
                self.rate_limited.append(f"{method} {path}")
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": is_global,
                }
                response = _json(body, status=429)
                response.headers.update(
                    {
                        "Retry-After": str(max(1, round(retry_after))),
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                        "X-RateLimit-Bucket": "fake-bucket",
                        "X-RateLimit-Scope": "shared" if not is_global else "user",
                        # Discord's answers come through its proxy; without Via, discord.py takes a 429 for a
                        # Cloudflare ban and raises instead of waiting.
                        "Via": "1.1 google",
                    }
                )
                if is_global:
                    response.headers["X-RateLimit-Global"] = "true"
                return response
        return None

    # ------------------------------------------------------------------ awaiting results
    async def wait_for(
        self, predicate: Callable[[Record], bool], timeout: float = 30.0, start: int = 0
    ) -> Record:
        """The first record (from index ``start``) matching ``predicate``; TimeoutError after ``timeout`` s.

        The 30 s default is a liveness bound, not a speed target: CI machines are shared and can stall for seconds.

        Each waiter scans every record once (incrementally), so hundreds of concurrent waiters stay cheap.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        i = start
        async with self._changed:
            while True:
                while i < len(self.records):
                    if predicate(self.records[i]):
                        return self.records[i]
                    i += 1
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise asyncio.TimeoutError(f"no matching record within {timeout} s")
                with contextlib.suppress(asyncio.TimeoutError):  # one last scan, then the deadline check
                    await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_for_reply(self, message_id: int | str, timeout: float = 30.0) -> Record:
        return await self.wait_for(lambda r: r.kind == "message" and r.reply_to == int(message_id), timeout)

    def for_interaction(self, interaction: dict) -> list[Record]:
        """Every record answering ``interaction`` (callback, follow-ups, edits), in order."""
        iid, token = int(interaction["id"]), interaction["token"]
        return [
            r for r in self.records if r.interaction_id == iid or (r.token == token and r.kind != "callback")
        ]

    async def wait_interaction(
        self, interaction: dict, kinds: tuple[str, ...] = ("followup", "edit"), timeout: float = 30.0
    ) -> Record:
        token = interaction["token"]
        iid = int(interaction["id"])
        return await self.wait_for(
            lambda r: r.kind in kinds and (r.token == token or r.interaction_id == iid), timeout
        )

    async def _record(self, rec: Record) -> None:
        async with self._changed:
            self.records.append(rec)
            self._changed.notify_all()

    # ------------------------------------------------------------------ gateway
    async def dispatch(self, event: str, data: dict, *, shard: int | None = None) -> bool:
        """Send ``event`` to the live sockets of ``shard`` (default: the shard of ``data["guild_id"]``, or 0
        without one, as Discord delivers direct messages on shard 0). With none, the event is dropped and kept
        in ``undelivered``. True if at least one socket got it."""
        if shard is None:
            gid = data.get("guild_id")
            shard = self.shard_of(gid) if gid else 0
        delivered = False
        for ws, session in list(self._live.items()):
            if session.shard_id != shard or ws.closed:
                continue
            frame = json.dumps({"op": 0, "t": event, "s": session.next_seq(), "d": data})
            try:
                await ws.send_str(frame)
            except (ConnectionError, RuntimeError) as e:  # closing under us: as good as gone
                log.debug("fake discord: %s not sent to shard %s: %s", event, shard, e)
            else:
                delivered = True
        if not delivered:
            log.info("fake discord: %s dropped, no live socket for shard %s", event, shard)
            self.undelivered.append(Undelivered(event, shard, data))
        return delivered

    def _shard_refusal(self, shard: Any) -> tuple[int, bytes] | None:
        """The close code and reason Discord would answer an IDENTIFY's ``shard`` with, or None if it's fine."""
        if shard is None:
            shard = [0, 1]
        try:
            shard_id, count = (int(x) for x in shard)
        except (TypeError, ValueError):
            return 4010, b"Invalid shard."
        if 0 < count < self.shard_count:
            return 4011, b"Sharding required."
        if count != self.shard_count or not 0 <= shard_id < count:
            return 4010, b"Invalid shard."
        return None

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._open.add(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, d = frame.get("op"), frame.get("d")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    self.identifies.append(d)
                    refusal: tuple[int, bytes] | None = None
                    if int(d.get("intents", 0)) & MESSAGE_CONTENT_INTENT and not self.allow_message_content:
                        refusal = 4014, b"Disallowed intent(s)."
                    refusal = refusal or self._shard_refusal(d.get("shard"))
                    if refusal is not None:
                        self.refused.append((refusal[0], d))
                        await ws.close(code=refusal[0], message=refusal[1])
                        break
                    shard_id = int(d["shard"][0]) if d.get("shard") else 0
                    session = GatewaySession(f"session-{self.new_id()}", shard_id, self.shard_count)
                    self.sessions[session.session_id] = session
                    await self._attach(ws, session)
                    await self._send_ready(ws, session)
                elif op == 6:
                    self.resumes.append(d)
                    session = self.sessions.get(str((d or {}).get("session_id")))
                    if session is None:  # Discord: INVALID_SESSION, not resumable; the client identifies anew
                        await ws.send_str(json.dumps({"op": 9, "d": False}))
                        continue
                    await self._attach(ws, session)
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": session.next_seq(), "d": {}}))
        finally:
            self._open.discard(ws)
            self._live.pop(ws, None)
            await self._gateway_event()
        return ws

    async def _attach(self, ws: web.WebSocketResponse, session: GatewaySession) -> None:
        """``ws`` now carries ``session`` (a RESUME moves the session off its old socket)."""
        for other, s in list(self._live.items()):
            if s is session and other is not ws:
                del self._live[other]
        self._live[ws] = session
        await self._gateway_event()

    async def _send_ready(self, ws: web.WebSocketResponse, session: GatewaySession) -> None:
        guilds = self.guilds_of(session.shard_id)
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": [session.shard_id, session.shard_count],
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": session.next_seq(), "d": ready}))
        for g in guilds:
            await ws.send_str(
                json.dumps(
                    {"op": 0, "t": "GUILD_CREATE", "s": session.next_seq(), "d": self.guild_payload(g)}
                )
            )
        self.ready_shards.add(session.shard_id)
        await self._gateway_event()

    def channel_payload(self, guild: FakeGuild, channel_id: int) -> dict:
        """A channel (or the thread) of ``guild`` as Discord describes it."""
        gid = str(guild.id)
        if channel_id == guild.thread_id:
            return {
                "id": str(channel_id),
                "type": 11,  # a public thread
                "guild_id": gid,
                "parent_id": str(guild.channel_id),
                "name": "a-thread",
                "owner_id": self.owner["id"],
                "message_count": 0,
                "member_count": 1,
                "rate_limit_per_user": 0,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": _now_iso(),
                    "locked": False,
                },
            }
        overwrites = []
        if channel_id == guild.staff_channel_id:
            view = str(1 << 10)
            overwrites = [
                {"id": gid, "type": 0, "allow": "0", "deny": view},  # @everyone may not see it
                {"id": str(guild.staff_role_id), "type": 0, "allow": view, "deny": "0"},
            ]
        order = [guild.channel_id, guild.other_channel_id, guild.staff_channel_id]
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": gid,
            "name": guild.channel_name(channel_id),
            "position": order.index(channel_id) if channel_id in order else 0,
            "permission_overwrites": overwrites,
            "nsfw": False,
        }

    def guild_payload(self, guild: FakeGuild | None = None) -> dict:
        """GUILD_CREATE's payload for ``guild`` (default: the first guild)."""
        guild = guild or self.guilds[0]
        gid = str(guild.id)
        everyone = {
            "id": gid,
            "name": "@everyone",
            "permissions": str(DEFAULT_MEMBER_PERMISSIONS),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": gid,
            "name": guild.name,
            "owner_id": self.owner["id"],
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "features": [],
            "roles": [
                everyone,
                {**everyone, "id": str(guild.role_id), "name": "speakers", "position": 1},
                {**everyone, "id": str(guild.staff_role_id), "name": "staff", "position": 2},
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                self.channel_payload(guild, c)
                for c in (guild.channel_id, guild.other_channel_id, guild.staff_channel_id)
            ],
            "threads": [self.channel_payload(guild, guild.thread_id)],
            "members": [self.member(self.bot_user), self.member(self.owner)],
            "voice_states": [],
            "presences": [],
            "joined_at": _now_iso(),
            "premium_tier": 0,
            "preferred_locale": "en-US",
        }

    # ------------------------------------------------------------------ REST
    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/gateway" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._gateway(request)
        raw = request.raw_path.split("?", 1)[0]
        if raw in self.files and request.method == "GET":
            path = raw
            self.downloads.append(path)
            data, ctype = self.files[path]
            return web.Response(body=data, content_type=ctype.split(";")[0])
        if not path.startswith(API_PREFIX):
            return self._not_found(request)
        parts = path[len(API_PREFIX) :].strip("/").split("/")
        method = request.method
        limited = self._rate_limited(method, path[len(API_PREFIX) :])
        if limited is not None:
            return limited
        try:
            handler = self._match(method, parts)
            if handler is None:
                return self._not_found(request)
            return await handler(request, parts)
        except Exception:  # a bug in the fake: answer 4xx (never 5xx, the client would retry for ~25 s)
            log.exception("fake discord failed on %s %s", method, path)
            return _json({"message": "fake discord error", "code": 0}, status=400)

    def _match(self, method: str, p: list[str]):
        n = len(p)
        if method == "GET" and p in (["gateway"], ["gateway", "bot"]):
            return self._get_gateway
        if method == "GET" and p == ["users", "@me"]:
            return self._me
        if method == "GET" and p in (["oauth2", "applications", "@me"], ["applications", "@me"]):
            return self._application
        if p[:1] == ["applications"] and p[-1] == "commands" and method == "PUT":
            return self._put_commands
        if p[:1] == ["applications"] and p[-1] == "commands" and method == "GET":
            return self._get_commands
        if method == "POST" and n == 3 and p[0] == "channels" and p[2] == "messages":
            return self._post_message
        if method == "POST" and n == 3 and p[0] == "channels" and p[2] == "typing":
            return self._no_content
        if method == "POST" and n == 4 and p[0] == "interactions" and p[3] == "callback":
            return self._callback
        if p[:1] == ["webhooks"] and n == 3 and method == "POST":
            return self._followup
        if p[:1] == ["webhooks"] and n == 5 and p[3] == "messages" and method in ("PATCH", "GET", "DELETE"):
            return self._original
        if method == "PATCH" and n == 4 and p[0] == "channels" and p[2] == "messages":
            return self._edit_message
        if method == "GET" and n == 4 and p[0] == "channels" and p[2] == "messages":
            return self._get_message
        return None

    async def _me(self, request, parts) -> web.Response:
        if self.valid_token is not None and request.headers.get("Authorization") != f"Bot {self.valid_token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        return _ok(self.bot_user)

    async def _get_commands(self, request, parts) -> web.Response:
        return _ok(self.commands.get(parts[3] if len(parts) == 5 else "global", []))

    async def _no_content(self, request, parts) -> web.Response:
        return web.Response(status=204)

    def _not_found(self, request: web.Request) -> web.Response:
        line = f"{request.method} {request.path}"
        self.unknown.append(line)
        log.warning("fake discord: unknown route %s", line)
        return _json({"message": f"404: Not Found ({line})", "code": 0}, status=404)

    async def _get_gateway(self, request, parts) -> web.Response:
        return _ok(
            {
                "url": self.gateway_url.removesuffix("/gateway") + "/gateway",
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _application(self, request, parts) -> web.Response:
        return _ok(
            {
                "id": str(self.app_id),
                "name": "ser-bot",
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "00",
                "owner": self.owner,
                "team": None,
                # GATEWAY_MESSAGE_CONTENT: the portal switch the Message Content intent needs
                "flags": (1 << 18) if self.allow_message_content else 0,
                "interactions_endpoint_url": None,
                "bot": self.bot_user,
            }
        )

    async def _put_commands(self, request, parts) -> web.Response:
        body = await request.json()
        key = parts[3] if len(parts) == 5 else "global"
        out = []
        for cmd in body:
            cmd = dict(cmd)
            cmd.setdefault("type", 1)
            cmd["id"] = str(self.new_id())
            cmd["application_id"] = str(self.app_id)
            cmd["version"] = str(self.new_id())
            cmd.setdefault("default_member_permissions", None)
            cmd.setdefault("description", "")
            if key != "global":
                cmd["guild_id"] = key
            out.append(cmd)
        self.commands[key] = out
        return _ok(out)

    async def _read_body(self, request: web.Request) -> tuple[dict, list[tuple[str, bytes]]]:
        if request.content_type.startswith("multipart/"):
            payload: dict = {}
            files: list[tuple[str, bytes]] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    files.append((part.filename or part.name or "file", bytes(await part.read(decode=False))))
            return payload, files
        if request.can_read_body:
            return await request.json(), []
        return {}, []

    def _attachments(self, files: list[tuple[str, bytes]]) -> list[dict]:
        return [
            {
                "id": str(self.new_id()),
                "filename": name,
                "size": len(data),
                "url": f"{self.base_url}/x/{name}",
                "proxy_url": f"{self.base_url}/x/{name}",
            }
            for name, data in files
        ]

    def _created_message(
        self, payload: dict, channel_id: int, files: list[tuple[str, bytes]], webhook: bool = False
    ) -> dict:
        attachments = self._attachments(files)
        msg = self.message_payload(
            author=self.bot_user,
            content=payload.get("content") or "",
            attachments=attachments,
            channel_id=channel_id,
            embeds=payload.get("embeds") or [],
            flags=int(payload.get("flags") or 0),
            message_reference=payload.get("message_reference"),
        )
        msg["components"] = payload.get("components") or []
        if webhook:
            msg["webhook_id"] = str(self.app_id)
        self.messages[int(msg["id"])] = msg
        return msg

    def _edited(
        self, message_id: int, payload: dict, channel_id: int, files: list[tuple[str, bytes]] = ()
    ) -> dict:
        """The stored message ``message_id`` with the fields of ``payload`` applied (or a new one); new
        ``files`` replace its attachments, as a PATCH naming only new attachments does."""
        old = self.messages.get(message_id)
        if old is None:
            msg = self._created_message(payload, channel_id, [], webhook=True)
            del self.messages[int(msg["id"])]
            msg["id"] = str(message_id)
        else:
            msg = dict(old)
            for key in ("content", "embeds", "components", "flags"):
                if key in payload:
                    msg[key] = payload[key] if payload[key] is not None else ([] if key != "content" else "")
            if files or "attachments" in payload:
                msg["attachments"] = self._attachments(list(files))
        msg["edited_timestamp"] = _now_iso()
        self.messages[message_id] = msg
        return msg

    def _interaction_channel(self, *, iid: int | None = None, token: str | None = None) -> int:
        """The channel of the interaction (by id or token) a callback, follow-up or edit answers; #general of
        the first guild for an interaction the fake did not send."""
        if token is None and iid is not None:
            token = self._interaction_tokens.get(iid)
        interaction = self._interactions.get(token or "")
        return int(interaction["channel_id"]) if interaction else self.channel_id

    def _guild_id_of(self, msg: dict) -> int | None:
        return _int_or_none(str(msg.get("guild_id") or ""))

    async def _record_reply(
        self, kind: str, payload: dict, files: list, msg: dict, *, channel_id: int | None = None, **ids
    ) -> None:
        """Record what the bot sent, placed at the stored message ``msg`` (its channel unless ``channel_id``
        names the route's own; ``ids``: ``interaction_id``, ``token``)."""
        await self._record(
            Record(
                kind,
                payload,
                files,
                channel_id=int(msg["channel_id"]) if channel_id is None else channel_id,
                message_id=int(msg["id"]),
                guild_id=self._guild_id_of(msg),
                **ids,
            )
        )

    async def _post_message(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        channel_id = int(parts[1])
        msg = self._created_message(payload, channel_id, files)
        await self._record_reply("message", payload, files, msg, channel_id=channel_id)
        return _ok(msg)

    async def _callback(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        iid, token = int(parts[1]), parts[2]
        ctype = int(payload.get("type", 0))
        data = payload.get("data") or {}
        target = self._interaction_messages.get(iid)
        channel_id = self._interaction_channel(iid=iid, token=token)
        if ctype in (6, 7) and target is not None:  # (deferred) UPDATE_MESSAGE: edit the component's message
            msg = self._edited(target, data, channel_id) if ctype == 7 else self.messages[target]
        else:
            msg = self._created_message(data, channel_id, files, webhook=True)
        await self._record_reply("callback", payload, files, msg, interaction_id=iid, token=token)
        self._originals[token] = int(msg["id"])
        resource: dict = {"type": ctype}
        if ctype in (4, 7):
            resource["message"] = msg
        return _ok(
            {
                "interaction": {
                    "id": str(iid),
                    "type": 3 if target is not None else 2,
                    "response_message_id": msg["id"],
                    "response_message_loading": ctype == 5,
                    "response_message_ephemeral": bool(int(msg.get("flags") or 0) & EPHEMERAL_FLAG),
                },
                "resource": resource,
            }
        )

    async def _followup(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        token = parts[2]
        msg = self._created_message(payload, self._interaction_channel(token=token), files, webhook=True)
        await self._record_reply("followup", payload, files, msg, token=token)
        return _ok(msg)

    async def _edit_message(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        channel_id, message_id = int(parts[1]), int(parts[3])
        msg = self._edited(message_id, payload, channel_id, files)
        await self._record_reply("edit", payload, files, msg, channel_id=channel_id)
        return _ok(msg)

    async def _get_message(self, request, parts) -> web.Response:
        msg = self.messages.get(int(parts[3]))
        if msg is None or int(msg["channel_id"]) != int(parts[1]):
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _ok(msg)

    def expire(self, interaction: dict) -> None:
        """Make ``interaction``'s token expire (as Discord does after 15 minutes): edits answer 404."""
        self.expired_tokens.add(interaction["token"])

    async def _original(self, request, parts) -> web.Response:
        token = parts[2]
        if token in self.expired_tokens:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if request.method == "DELETE":
            return web.Response(status=204)
        payload, files = await self._read_body(request) if request.method == "PATCH" else ({}, [])
        original = self._originals.get(token) if parts[4] == "@original" else _int_or_none(parts[4])
        channel_id = self._interaction_channel(token=token)
        if original is not None and original in self.messages:
            msg = (
                self._edited(original, payload, channel_id, files)
                if request.method == "PATCH"
                else self.messages[original]
            )
        else:
            msg = self._created_message(payload, channel_id, files, webhook=True)
        if request.method == "PATCH":
            await self._record_reply("edit", payload, files, msg, token=token)
        return _ok(msg)


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Make discord.py (in this process) use ``api_base`` for REST and ``gateway_url`` for the gateway."""
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def _ok(data: Any) -> web.Response:
    return _json(data)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    response = web.Response(body=json.dumps(data).encode(), status=status)
    response.headers["Content-Type"] = "application/json"
    return response


def _walk_components(components: list[dict]):
    """(type, custom_id) of every interactive component, depth first (action rows hold the rest)."""
    for c in components:
        if c.get("custom_id"):
            yield int(c.get("type", 0)), str(c["custom_id"])
        yield from _walk_components(c.get("components") or [])


def _int_or_none(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
