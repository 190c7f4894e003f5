"""``FakeDiscord`` itself: its state, its life cycle (one aiohttp server for REST and gateway) and where it
listens; the behaviour comes from the mixins of ``state``, ``rest``, ``gateway`` and ``driver``."""

from __future__ import annotations

import asyncio
import itertools

from aiohttp import web

from .driver import DriverMixin
from .gateway import GatewayMixin
from .models import API_PREFIX, FakeGuild, GatewaySession, Record, Undelivered
from .rest import RestMixin
from .state import StateMixin


class FakeDiscord(StateMixin, RestMixin, GatewayMixin, DriverMixin):
    """The fake: its state (below), served over HTTP and websocket from ``start`` until ``close``."""

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


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Make discord.py (in this process) use ``api_base`` for REST and ``gateway_url`` for the gateway."""
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
