"""The fake's guilds, channels, users and files, and the payloads Discord would describe them with."""

from __future__ import annotations

import base64
import itertools
import urllib.parse
from collections.abc import Iterable
from typing import Any

from .models import DEFAULT_MEMBER_PERMISSIONS, FakeGuild, now_iso


class StateMixin:
    """Ids, guild and shard lookups, attachments served for download, message/channel/guild payloads."""

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
            "joined_at": now_iso(),
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
            "timestamp": now_iso(),
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
                "joined_at": now_iso(),
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
        if message_reference:
            data["message_reference"] = message_reference
        return data

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
                    "archive_timestamp": now_iso(),
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
            "joined_at": now_iso(),
            "premium_tier": 0,
            "preferred_locale": "en-US",
        }
