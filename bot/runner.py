"""``briefbot run`` and ``briefbot check-config``.

``run`` polls, schedules digests and starts the enabled adapters; around them it adds
the operations side (:mod:`bot.ops`): one log line per poll cycle and per digest
delivered, ``/healthz`` and ``/metrics`` on ``[metrics] port``, the daily retention
run. Ctrl-C (SIGINT) stops it cleanly with exit status 130, SIGTERM (``docker stop``)
with 0.

Imports are lazy: ``check-config`` loads only what it checks (settings, feeds,
watchlist and its matcher, then the storage engine to open the database, unless
``--no-connect``), never the fetcher, the scheduler or discord.py; ``run`` loads the
whole app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from bot.ops.logs import LOG_FORMATS, setup_logging

if TYPE_CHECKING:
    from bot.adapters.slack.app import SlackCredentials
    from bot.app import App
    from bot.ops.monitor import Monitor

log = logging.getLogger(__name__)

#: the exit status after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    if name == "run":
        parser.add_argument(
            "--no-console",
            action="store_true",
            help="do not open the console channel even when no chat platform is configured",
        )
        parser.add_argument(
            "--log-format",
            choices=LOG_FORMATS,
            default="text",
            help="text (default) or json: one JSON object per line, for log shippers",
        )
    elif name == "check-config":
        parser.add_argument(
            "--no-connect",
            action="store_true",
            help="only validate the files: do not create the data directory or open the database",
        )


def _slack_credentials() -> SlackCredentials | None:
    """Slack's credentials from the environment (None: Slack is off); imported only
    when a Slack variable is set, so a Discord-only run does not load Bolt."""
    if not any(k.startswith("SLACK_") and v.strip() for k, v in os.environ.items()):
        return None
    from bot.adapters.slack.app import SlackCredentials

    return SlackCredentials.from_env()


async def check_config_main(args: argparse.Namespace) -> int:
    """Validate the files, then (unless ``--no-connect``) create the data directory
    and open the database. Every failure is one line on stderr; exit status 2."""
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
    if getattr(args, "no_connect", False):
        return 0
    from bot.ops.checks import live_checks

    problems = await live_checks(s)
    for problem in problems:
        print(f"briefbot: {problem}", file=sys.stderr)
    return 2 if problems else 0


async def _run_slack(app: App, credentials: SlackCredentials, monitor: Monitor) -> None:
    """Slack until cancelled, its state told to the monitor: connected once it listens
    (HTTP) or is connected (Socket Mode), down when it stops or fails."""
    from bot.adapters.slack.app import SlackBot

    bot = SlackBot(app, credentials)
    try:
        await bot.start()
        monitor.adapter("slack", connected=True)
        await asyncio.Event().wait()
    except Exception as err:
        monitor.adapter("slack", connected=False, detail=f"{type(err).__name__}: {err}")
        raise
    finally:
        await bot.stop()


async def _wait_for_stop() -> int:
    """Until SIGINT/SIGTERM; returns the signal. Ctrl-C stops cleanly: jobs end, the DB
    closes, nothing lost."""
    got: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    loop = asyncio.get_running_loop()

    def stop(sig: int) -> None:
        if not got.done():
            got.set_result(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop, sig)
    try:
        return await got
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        # a second Ctrl-C while stopping must not print a traceback either
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)


async def main(args: argparse.Namespace) -> int:
    from bot.app import build_app, load_config
    from bot.config import hide_password, load_secrets
    from bot.ops.monitor import Monitor
    from bot.ops.retention import Retention
    from bot.ops.server import OpsServer
    from bot.storage.sql import SqlStorage

    if getattr(args, "log_format", "text") != "text":
        setup_logging(getattr(args, "verbose", 0), args.log_format)
    config = load_config(args.config)
    settings = config.settings
    discord_token = load_secrets().discord_token
    token = discord_token.get_secret_value() if discord_token else None
    slack = _slack_credentials()
    app: App = build_app(config)
    monitor = Monitor(
        poll_stale_seconds=settings.metrics.poll_stale_seconds,
        adapter_stale_seconds=settings.metrics.adapter_stale_seconds,
    )
    app.poller.telemetry = monitor
    app.outbox.telemetry = monitor
    server: OpsServer | None = None
    if settings.metrics.port:
        # first: a port in use is one line, before anything else started
        server = OpsServer(monitor, host=settings.metrics.host, port=settings.metrics.port)
        await server.start()
    try:
        await app.open()
    except BaseException:
        # nothing started yet: release the database before reporting the error
        with contextlib.suppress(Exception):
            await app.storage.close()
        if server is not None:
            await server.close()
        raise
    # start-up's objects live as long as the process: out of the collector's way
    # (a full collection during a poll cycle then scans only the cycle's own objects)
    gc.freeze()
    tasks: list[asyncio.Task[object]] = []
    helpers: list[asyncio.Task[object]] = []
    status = 0
    try:
        helpers.append(asyncio.create_task(monitor.watch_loop_lag(), name="loop-lag"))
        if settings.storage.retention_days and isinstance(app.storage, SqlStorage):
            # (prune is SqlStorage's, not part of the core's Storage port)
            retention = Retention(app.storage, app.clock, settings.storage.retention_days)
            helpers.append(asyncio.create_task(retention.run_forever(), name="retention"))
        if token:
            from bot.adapters.discord.bot import start_discord

            monitor.expect_adapter("discord")
            tasks.append(
                asyncio.create_task(start_discord(app, token, telemetry=monitor), name="discord")
            )
        if slack is not None:
            monitor.expect_adapter("slack")
            tasks.append(asyncio.create_task(_run_slack(app, slack, monitor), name="slack"))
        if not token:
            print(
                "briefbot: DISCORD_TOKEN is not set, so Discord is off. Set DISCORD_TOKEN "
                "to the bot token of your Discord application (see README: Discord).",
                file=sys.stderr,
            )
            if slack is None and sys.stdin.isatty() and not args.no_console:
                from bot.adapters.console import run_console_channel

                tasks.append(asyncio.create_task(run_console_channel(app), name="console"))
        await app.scheduler.start()
        await app.outbox.retry_pending()
        database = hide_password(settings.storage.resolved_url())
        where = f"; health and metrics on {server.url}" if server is not None else ""
        print(f"briefbot: running; database {database}{where}", file=sys.stderr)
        stopper = asyncio.create_task(_wait_for_stop(), name="stop")
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = None if task is stopper else task.exception()
            if error is not None:
                raise error
        if stopper.done() and stopper.result() == signal.SIGINT:
            status = EXIT_INTERRUPTED
        stopper.cancel()
    finally:
        for task in [*tasks, *helpers]:
            task.cancel()
        for task in [*tasks, *helpers]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await app.close()
        finally:
            if server is not None:
                await server.close()
        print(
            "briefbot: stopped" + (" (interrupted)" if status == EXIT_INTERRUPTED else ""),
            file=sys.stderr,
        )
    return status
