"""``briefbot run`` and ``briefbot check-config``.

Imports are lazy: ``check-config`` loads only what it checks (settings, feeds,
watchlist and its matcher), never storage, the fetcher, the scheduler or discord.py;
``run`` loads the whole app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "run":
        parser.add_argument(
            "--no-console",
            action="store_true",
            help="do not open the console channel even when no chat platform is configured",
        )


def check_config_main(args: argparse.Namespace) -> int:
    from bot.config import config_dir, hide_password, load_secrets, load_settings
    from bot.core.matching import compile_watchlist
    from bot.feeds.sources import load_feed_sources
    from bot.watchlist_files import load_effective_watchlist

    # what load_config reads, in the same order, without building the app
    cfg_dir = config_dir(args.config)
    s = load_settings(cfg_dir)
    watchlist = load_effective_watchlist(cfg_dir)
    compile_watchlist(watchlist)  # a watchlist that cannot compile is a config error
    feeds = load_feed_sources(cfg_dir)
    token = load_secrets().discord_token
    print(f"config OK ({cfg_dir or 'shipped defaults'})")
    print(f"  database:  {hide_password(s.storage.resolved_url())}")
    print(f"  feeds:     {len(feeds)}")
    print(f"  watchlist: {len(watchlist.entries)} entries")
    print(f"  poll:      every {s.poll.interval_minutes:g} min")
    print(f"  discord:   {'token set' if token else 'DISCORD_TOKEN not set'}")
    return 0


async def _wait_for_stop() -> None:
    """Until SIGINT/SIGTERM. Ctrl-C stops cleanly: jobs end, the DB closes, nothing lost."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def main(args: argparse.Namespace) -> int:
    from bot.app import build_app, load_config
    from bot.config import hide_password, load_secrets

    config = load_config(args.config)
    discord_token = load_secrets().discord_token
    token = discord_token.get_secret_value() if discord_token else None
    app: App = build_app(config)
    try:
        await app.open()
    except BaseException:
        # nothing started yet: release the database before reporting the error
        with contextlib.suppress(Exception):
            await app.storage.close()
        raise
    # start-up's objects live as long as the process: out of the collector's way
    # (a full collection during a poll cycle then scans only the cycle's own objects)
    gc.freeze()
    tasks: list[asyncio.Task[object]] = []
    try:
        if token:
            from bot.adapters.discord.bot import start_discord

            tasks.append(asyncio.create_task(start_discord(app, token), name="discord"))
        else:
            print(
                "briefbot: DISCORD_TOKEN is not set, so Discord is off. Set DISCORD_TOKEN "
                "to the bot token of your Discord application (see README: Discord).",
                file=sys.stderr,
            )
            if sys.stdin.isatty() and not args.no_console:
                from bot.adapters.console import run_console_channel

                tasks.append(asyncio.create_task(run_console_channel(app), name="console"))
        await app.scheduler.start()
        await app.outbox.retry_pending()
        database = hide_password(config.settings.storage.resolved_url())
        print(f"briefbot: running; database {database}", file=sys.stderr)
        stopper = asyncio.create_task(_wait_for_stop(), name="stop")
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        stopper.cancel()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await app.close()
        print("briefbot: stopped", file=sys.stderr)
    return 0
