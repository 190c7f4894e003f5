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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


class FakeDiscord:
    def __init__(
        self,
        *,
        allow_message_content: bool = True,
        heartbeat_interval_ms: int = 41_250,
        valid_token: str | None = None,
    ) -> None:
        self.allow_message_content = allow_message_content
        self.valid_token = valid_token  # None: any token logs in
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self.app_id = self.new_id()
        self.bot_user = self.user(self.app_id, "ser-bot", bot=True)
        self.guild_id = self.new_id()
        self.channel_id = self.new_id()
        self.other_channel_id = self.new_id()  # a second text channel of the guild (per-channel settings)
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
        self.port: int | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._changed = asyncio.Condition()
        self._ready = asyncio.Event()
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
        for ws in list(self._sockets):
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

    async def wait_ready(self, timeout: float = 15.0) -> None:
        """Until a client has identified and received READY and GUILD_CREATE."""
        await asyncio.wait_for(self._ready.wait(), timeout)

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

    def member(self, user: dict, permissions: int | None = None) -> dict:
        m = {"user": user, "roles": [], "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0}
        if permissions is not None:
            m["permissions"] = str(permissions)
        return m

    def add_file(self, data: bytes, filename: str, content_type: str | None, **extra: Any) -> dict:
        """Serve ``data`` for download and return its attachment payload (``extra`` keys are added)."""
        att_id = self.new_id()
        # Quoted, so that a hostile name such as ``../../x.ogg`` stays one URL segment, as on Discord's CDN.
        path = f"/attachments/{self.channel_id}/{att_id}/{urllib.parse.quote(filename, safe='')}"
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

    def voice_attachment(self, data: bytes, duration: float) -> dict:
        """A voice message's attachment: ``voice-message.ogg``, audio/ogg, duration and waveform set."""
        waveform = base64.b64encode(bytes(range(0, 256, 4))).decode()
        return self.add_file(
            data, "voice-message.ogg", "audio/ogg", duration_secs=duration, waveform=waveform
        )

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
    ) -> dict:
        data = {
            "id": str(message_id or self.new_id()),
            "channel_id": str(channel_id or (self.dm_channel_id if dm else self.channel_id)),
            "guild_id": str(self.guild_id),
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
        if dm or int(data["channel_id"]) == self.dm_channel_id:
            del data["guild_id"]
        elif not author.get("bot") or author["id"] != self.bot_user["id"]:
            data["member"] = {"roles": [], "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0}
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
    ) -> dict:
        """Post a message (MESSAGE_CREATE). ``voice`` defaults to True for a lone voice attachment; ``dm``: in
        the author's direct-message channel with the bot (no guild)."""
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
    ) -> dict:
        """Invoke ``/name [subcommand] options`` as ``user`` with ``permissions`` (INTERACTION_CREATE), in
        ``channel_id`` (default: #general) or, with ``dm``, in the user's direct messages with the bot."""
        opts = options or []
        if subcommand:
            opts = [{"type": 1, "name": subcommand, "options": opts}]
        data: dict = {"id": str(self.command_id(name, 1)), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = resolved
        return await self.interact(data, user=user, permissions=permissions, channel_id=channel_id, dm=dm)

    async def context_menu(
        self,
        name: str,
        message: dict,
        *,
        user: dict | None = None,
        permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    ) -> dict:
        """Run the message context-menu command ``name`` on ``message`` (in the message's channel)."""
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
    ) -> dict:
        user = user or self.owner
        channel_id = channel_id or (self.dm_channel_id if dm else self.channel_id)
        payload = {
            "id": str(self.new_id()),
            "application_id": str(self.app_id),
            "type": type_,
            "data": data,
            "guild_id": str(self.guild_id),
            "channel_id": str(channel_id),
            "channel": {
                "id": str(channel_id),
                "type": 0,
                "guild_id": str(self.guild_id),
                "name": "general" if channel_id == self.channel_id else "voice-notes",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
            },
            "member": self.member(user, permissions),
            "token": f"itoken-{self.new_id()}",
            "version": 1,
            "app_permissions": str(ALL_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        if dm:  # a bot DM: no guild, the user instead of a member (Discord's interaction context 1)
            for key in ("guild_id", "member", "guild_locale"):
                del payload[key]
            payload["user"] = user
            payload["channel"] = {"id": str(channel_id), "type": 1, "recipients": [user]}
            payload["authorizing_integration_owners"] = {"0": "0"}
            payload["context"] = 1
        if message is not None:
            payload["message"] = message
            self._interaction_messages[int(payload["id"])] = int(message["id"])
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

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection with ``code`` (4000 unknown error, 1001 going away: both resumable)."""
        for ws in list(self._sockets):
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
    async def dispatch(self, event: str, data: dict) -> None:
        self._seq += 1
        frame = json.dumps({"op": 0, "t": event, "s": self._seq, "d": data})
        for ws in list(self._sockets):
            if not ws.closed:
                await ws.send_str(frame)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
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
                    if int(d.get("intents", 0)) & MESSAGE_CONTENT_INTENT and not self.allow_message_content:
                        await ws.close(code=4014, message=b"Disallowed intent(s).")
                        break
                    self._sockets.append(ws)
                    await self._send_ready(ws)
                elif op == 6:
                    self.resumes.append(d)
                    self._sockets.append(ws)
                    self._seq += 1
                    await ws.send_str(json.dumps({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}}))
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    async def _send_ready(self, ws: web.WebSocketResponse) -> None:
        self._seq += 1
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": f"session-{self.new_id()}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await ws.send_str(json.dumps({"op": 0, "t": "READY", "s": self._seq, "d": ready}))
        self._seq += 1
        await ws.send_str(
            json.dumps({"op": 0, "t": "GUILD_CREATE", "s": self._seq, "d": self.guild_payload()})
        )
        self._ready.set()

    def guild_payload(self) -> dict:
        gid = str(self.guild_id)
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
            "name": "Fake Guild",
            "owner_id": self.owner["id"],
            "unavailable": False,
            "member_count": 2,
            "large": False,
            "features": [],
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    "id": str(cid),
                    "type": 0,
                    "name": name,
                    "position": i,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "guild_id": gid,
                }
                for i, (cid, name) in enumerate(
                    [(self.channel_id, "general"), (self.other_channel_id, "voice-notes")]
                )
            ],
            "threads": [],
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
                "shards": 1,
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
                "flags": 0,
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

    async def _post_message(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        channel_id = int(parts[1])
        msg = self._created_message(payload, channel_id, files)
        await self._record(
            Record("message", payload, files, channel_id=channel_id, message_id=int(msg["id"]))
        )
        return _ok(msg)

    async def _callback(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        iid, token = int(parts[1]), parts[2]
        ctype = int(payload.get("type", 0))
        data = payload.get("data") or {}
        target = self._interaction_messages.get(iid)
        if ctype in (6, 7) and target is not None:  # (deferred) UPDATE_MESSAGE: edit the component's message
            msg = self._edited(target, data, self.channel_id) if ctype == 7 else self.messages[target]
        else:
            msg = self._created_message(data, self.channel_id, files, webhook=True)
        await self._record(
            Record("callback", payload, files, interaction_id=iid, token=token, message_id=int(msg["id"]))
        )
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
        msg = self._created_message(payload, self.channel_id, files, webhook=True)
        await self._record(Record("followup", payload, files, token=token, message_id=int(msg["id"])))
        return _ok(msg)

    async def _edit_message(self, request, parts) -> web.Response:
        payload, files = await self._read_body(request)
        channel_id, message_id = int(parts[1]), int(parts[3])
        msg = self._edited(message_id, payload, channel_id, files)
        await self._record(Record("edit", payload, files, channel_id=channel_id, message_id=message_id))
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
        if original is not None and original in self.messages:
            msg = (
                self._edited(original, payload, self.channel_id, files)
                if request.method == "PATCH"
                else self.messages[original]
            )
        else:
            msg = self._created_message(payload, self.channel_id, files, webhook=True)
        if request.method == "PATCH":
            await self._record(Record("edit", payload, files, token=token, message_id=int(msg["id"])))
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
