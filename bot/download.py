"""Downloading an attachment, which is hostile until proved otherwise: from Discord's CDN only, never more
bytes than it declared (nor the size limit), a few downloads at once across every request.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import aiohttp
import discord

from . import logic

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 30.0
#: Downloads at once, across every request: a burst of presses on a large note cannot fill the memory.
MAX_DOWNLOADS = 4
#: Where Discord serves attachments; a URL anywhere else is not downloaded.
CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
DOWNLOAD_FAILED_TEXT = "I could not download the file from Discord. Try again."
LARGER_THAN_DECLARED_TEXT = (
    "The file is larger than Discord says it is, so I did not read it. Upload it again."
)


class DownloadRefused(Exception):
    """A download that was not made or not finished; the message is for the user."""


class Downloads:
    """Attachment downloads under one size limit (``max_bytes``) and one bound on how many run at once."""

    def __init__(self, *, max_bytes: int, at_once: int = MAX_DOWNLOADS) -> None:
        self.max_bytes = max_bytes
        self._slots = asyncio.Semaphore(at_once)
        self._http: aiohttp.ClientSession | None = None

    async def fetch(self, attachment) -> bytes:
        """The attachment's bytes (``url`` and ``size`` are read), or ``DownloadRefused`` with a sentence for
        the user: a URL off Discord's CDN, an HTTP error, a timeout, or more bytes than declared."""
        url = str(attachment.url)
        if not allowed_attachment_url(url):
            log.warning("refused to download an attachment from %s", safe_url(url))
            raise DownloadRefused(DOWNLOAD_FAILED_TEXT)
        declared = attachment.size if attachment.size and attachment.size > 0 else None
        cap = min(declared or self.max_bytes, self.max_bytes)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DOWNLOAD_TIMEOUT_S))
        async with self._slots:
            try:
                async with self._http.get(url, allow_redirects=False) as resp:
                    if resp.status != 200:
                        raise DownloadRefused(DOWNLOAD_FAILED_TEXT)
                    data = await _read_at_most(resp.content, cap + 1)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.warning("download of %s failed: %r", safe_url(url), exc)
                raise DownloadRefused(DOWNLOAD_FAILED_TEXT) from None
        if len(data) > cap:  # the metadata lied, or there was none and the file is over the limit
            if declared is not None and declared <= self.max_bytes:
                raise DownloadRefused(LARGER_THAN_DECLARED_TEXT)
            raise DownloadRefused(logic.precheck_size(len(data), self.max_bytes))
        return data

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


async def _read_at_most(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes if it is longer (the rest is never read)."""
    chunks, size = [], 0
    while size < limit:
        chunk = await stream.read(min(limit - size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def allowed_attachment_url(url: str) -> bool:
    """Whether ``url`` is an attachment on Discord's CDN (HTTPS), or on the API host the bot is pointed at
    (the loopback fake Discord of the tests and the demo serves its files there)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname in CDN_HOSTS and parts.port in (None, 443):
        return True
    api = urllib.parse.urlsplit(discord.http.Route.BASE)
    if api.hostname in ("discord.com", "discordapp.com"):
        return False
    return (parts.scheme, parts.hostname, parts.port) == (api.scheme, api.hostname, api.port)


def safe_url(url: str) -> str:
    """``url`` without its query string (Discord signs attachment URLs there: ``?ex=…&hm=…``), for logs."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
