"""The REST side: the routes below ``/api/v10`` the bot calls (messages, interaction callbacks, webhook
follow-ups and edits, commands), attachment downloads, and 429s on demand."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .models import API_PREFIX, EPHEMERAL_FLAG, Record, int_or_none, now_iso

log = logging.getLogger(__name__)


class RestMixin:
    """The HTTP routes of ``FakeDiscord``; what the bot sends is stored in ``messages`` and ``records``."""

    # ------------------------------------------------------------------ 429s on demand
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

    # ------------------------------------------------------------------ routes
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
        msg["edited_timestamp"] = now_iso()
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
        return int_or_none(str(msg.get("guild_id") or ""))

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

    async def _original(self, request, parts) -> web.Response:
        token = parts[2]
        if token in self.expired_tokens:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        if request.method == "DELETE":
            return web.Response(status=204)
        payload, files = await self._read_body(request) if request.method == "PATCH" else ({}, [])
        original = self._originals.get(token) if parts[4] == "@original" else int_or_none(parts[4])
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


def _ok(data: Any) -> web.Response:
    return _json(data)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly application/json.
    response = web.Response(body=json.dumps(data).encode(), status=status)
    response.headers["Content-Type"] = "application/json"
    return response
