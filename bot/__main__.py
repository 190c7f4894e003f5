"""``ser-bot`` / ``python -m bot``: read settings, load the model, open the database, run until a signal.

``ser-bot --demo`` runs the real bot against the in-process loopback fake Discord, posts three shipped
RAVDESS clips as voice messages, prints each reply beside the acted emotion and exits (no token needed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .settings import Settings, SettingsError

log = logging.getLogger("bot")
LOG_FORMAT = "[{asctime}] [{levelname:<8}] {name}: {message}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ser-bot", description="Speech-emotion Discord bot.")
    parser.add_argument("--demo", action="store_true", help="run offline against a fake Discord and exit")
    parser.add_argument("--env-file", default=".env", help="settings file to read (default: .env)")
    args = parser.parse_args(argv)

    from dotenv import load_dotenv

    load_dotenv(args.env_file, override=False)
    try:
        settings = Settings.from_env(require_token=not args.demo)
    except SettingsError as exc:
        print(f"ser-bot: {exc}", file=sys.stderr)
        return 2

    import discord

    # discord.py colours its log lines when it guesses a terminal (in Docker it always does): plain text
    # unless stderr really is one, so log files and `docker logs` carry no escape codes.
    plain = None if sys.stderr.isatty() else logging.Formatter(LOG_FORMAT, "%Y-%m-%d %H:%M:%S", style="{")
    discord.utils.setup_logging(level=logging.INFO, formatter=plain)
    try:
        if args.demo:
            from .demo import run_demo

            return asyncio.run(run_demo(settings))
        return asyncio.run(run(settings))
    except SettingsError as exc:  # a setting that only fails when used (the model file, the database)
        print(f"ser-bot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were installed
        return 130


async def run(settings: Settings) -> int:
    """Run the bot until SIGTERM/SIGINT (or the connection ends). Returns the exit code."""
    import discord

    from .app import open_bot
    from .bot import DiscordUnreachable

    if settings.api_base or settings.gateway_url:
        from .testing.fakediscord import point_discord_at

        point_discord_at(
            settings.api_base or discord.http.Route.BASE,
            settings.gateway_url or str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY),
        )
    bot = await open_bot(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Not on Windows: there Ctrl-C raises KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with bot:
        runner = asyncio.create_task(bot.start(settings.token), name="ser-bot")
        stopper = asyncio.create_task(stop.wait(), name="ser-bot-signal")
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stopper in done:
            log.info("signal received, shutting down")
            await bot.close()
            _, pending = await asyncio.wait({runner}, timeout=15)
            for task in pending:
                task.cancel()
            return 0  # however the connection loop ended, this was a requested stop
        if runner.done() and not runner.cancelled() and runner.exception() is not None:
            exc = runner.exception()
            if isinstance(exc, discord.LoginFailure):
                print(
                    "ser-bot: Discord refused DISCORD_TOKEN (LoginFailure); check the token.", file=sys.stderr
                )
                return 2
            if isinstance(exc, DiscordUnreachable):
                print(
                    f"ser-bot: cannot reach Discord ({exc}) after {len(bot.LOGIN_RETRIES_S) + 1} attempts; "
                    "check the network and start again.",
                    file=sys.stderr,
                )
                return 1
            log.error("the bot stopped with an error", exc_info=exc)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
