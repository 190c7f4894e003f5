"""The test's side: acting as Discord users (messages, slash commands, context menus, button clicks) and
awaiting what the bot sent back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

from .models import (
    ALL_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    VOICE_MESSAGE_FLAG,
    Record,
    int_or_none,
    walk_components,
)


class DriverMixin:
    """Events sent to the bot (through ``dispatch``) and waits on ``records``."""

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
            guild_id=int_or_none(str(message.get("guild_id") or "")),
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
        kinds = dict((cid, t) for t, cid in walk_components(message.get("components") or []))
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
            guild_id=int_or_none(str(message.get("guild_id") or "")),
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

    def expire(self, interaction: dict) -> None:
        """Make ``interaction``'s token expire (as Discord does after 15 minutes): edits answer 404."""
        self.expired_tokens.add(interaction["token"])
