"""The websocket gateway: HELLO, IDENTIFY (with shard checks) → READY + GUILD_CREATE, heartbeats, RESUME,
and ``dispatch`` of events to the sockets of the right shard."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web

from .models import MESSAGE_CONTENT_INTENT, GatewaySession, Undelivered

log = logging.getLogger(__name__)


class GatewayMixin:
    """The gateway side of ``FakeDiscord``: sessions per shard, dispatch, dropped connections, waits."""

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

    def connected_shards(self) -> set[int]:
        """Ids of the shards that have at least one live (identified or resumed, not closed) socket."""
        return {s.shard_id for ws, s in self._live.items() if not ws.closed}

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
