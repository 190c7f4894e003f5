"""``Downloads``: attachments from Discord only, never more bytes than declared or allowed, a few at once,
against a loopback file server that the bot is pointed at (as the fake Discord serves its files)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import discord
import pytest
from aiohttp import web

from bot.download import (
    DOWNLOAD_FAILED_TEXT,
    LARGER_THAN_DECLARED_TEXT,
    DownloadRefused,
    Downloads,
    allowed_attachment_url,
    safe_url,
)

BODY = bytes(range(256)) * 20  # 5120 bytes


class FileServer:
    """``/a/<name>``: ``BODY``; ``/a/gone``: 404; ``/a/moved``: a redirect off the allow-list; ``/a/slow``:
    ``BODY`` once ``release`` is set, counting how many wait at once."""

    def __init__(self) -> None:
        self.requests = 0
        self.waiting = self.most_waiting = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        name = request.match_info["name"]
        if name == "gone":
            raise web.HTTPNotFound()
        if name == "moved":
            raise web.HTTPFound("https://evil.example/a.ogg")
        if name == "slow":
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
            await self.release.wait()
            self.waiting -= 1
        return web.Response(body=BODY)


@pytest.fixture
async def server(monkeypatch):
    files = FileServer()
    app = web.Application()
    app.router.add_get("/a/{name}", files.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    files.base = f"http://127.0.0.1:{port}/a"  # type: ignore[attr-defined]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    yield files
    await runner.cleanup()


@pytest.fixture
async def downloads():
    d = Downloads(max_bytes=4096 + 2048, at_once=2)
    yield d
    await d.close()


def attachment(url: str, size: int | None = len(BODY)):
    return SimpleNamespace(url=url, size=size)


async def test_a_file_on_discord_is_downloaded_whole(server, downloads):
    assert await downloads.fetch(attachment(f"{server.base}/note.ogg?ex=1&hm=sig")) == BODY
    assert await downloads.fetch(attachment(f"{server.base}/note.ogg", size=None)) == BODY  # no metadata


async def test_a_url_off_discord_is_never_requested(server, downloads, caplog):
    port = int(server.base.split(":")[2].split("/")[0])
    for url in (f"http://127.0.0.1:{port + 1}/a/note.ogg?hm=secret", "https://evil.example/a.ogg?hm=secret"):
        with pytest.raises(DownloadRefused, match=DOWNLOAD_FAILED_TEXT):
            await downloads.fetch(attachment(url))
    assert server.requests == 0 and "secret" not in caplog.text and "refused to download" in caplog.text


@pytest.mark.parametrize("name", ["gone", "moved"])
async def test_an_error_or_a_redirect_is_a_failed_download(server, downloads, name):
    with pytest.raises(DownloadRefused, match=DOWNLOAD_FAILED_TEXT):
        await downloads.fetch(attachment(f"{server.base}/{name}"))
    assert server.requests == 1  # the redirect is not followed


async def test_never_more_than_declared_nor_than_the_limit(server, downloads):
    with pytest.raises(DownloadRefused, match=LARGER_THAN_DECLARED_TEXT):
        await downloads.fetch(attachment(f"{server.base}/note.ogg", size=1000))  # the metadata lied
    small = Downloads(max_bytes=4096)
    try:
        with pytest.raises(DownloadRefused, match="the limit is 4 KB"):
            await small.fetch(attachment(f"{server.base}/note.ogg", size=None))  # no metadata, too large
    finally:
        await small.close()


async def test_at_most_a_few_downloads_at_once(server, downloads, caplog):
    with caplog.at_level(logging.WARNING, logger="bot.download"):
        tasks = [asyncio.create_task(downloads.fetch(attachment(f"{server.base}/slow"))) for _ in range(5)]
        for _ in range(100):
            if server.waiting == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert server.waiting == 2 and server.requests == 2  # the others wait their turn, unsent
        server.release.set()
        assert await asyncio.gather(*tasks) == [BODY] * 5
    assert server.most_waiting == 2 and server.requests == 5


def test_attachment_urls_and_log_lines():
    assert allowed_attachment_url("https://cdn.discordapp.com/attachments/1/2/a.ogg?ex=1")
    assert allowed_attachment_url("https://media.discordapp.net/attachments/1/2/a.ogg")
    for url in (
        "http://cdn.discordapp.com/attachments/1/2/a.ogg",  # not HTTPS
        "https://cdn.discordapp.com.evil.example/a.ogg",
        "https://evil.example/a.ogg",
        "file:///etc/passwd",
        "https://cdn.discordapp.com:8443/a.ogg",
    ):
        assert not allowed_attachment_url(url), url
    assert (
        safe_url("https://cdn.discordapp.com/a/b/c.ogg?ex=1&is=2&hm=abc")
        == "https://cdn.discordapp.com/a/b/c.ogg"
    )
