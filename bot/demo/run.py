"""``briefbot demo``: poll the bundled sample feeds offline and print the digest a
channel would receive.

The sample feeds are served from a loopback server (nothing leaves the machine) and
go through the real pipeline: fetcher, parser, dedupe, SQL storage, the effective
watchlist's matcher, story clustering and ranking, and the console's digest renderer.
The digest covers the weeks of the samples (October and November 2023) as one ranked
list: each story once, with every outlet that ran it. Every run prints it: the demo
database starts empty each time unless ``--keep``.

The demo uses its own SQLite file, ``demo.db`` in the data directory (settings'
``storage.data_dir``, else the per-user data dir, or ``--data-dir``), never the bot's
database: syncing the sample feeds as config feeds there would retire the real ones.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from bot.app import load_effective_watchlist
from bot.config import Settings, config_dir, load_settings
from bot.core.clock import SystemClock
from bot.core.digest import Digest, build_digest
from bot.core.matching import compile_watchlist
from bot.core.render import render_text
from bot.core.watchlist import Watchlist
from bot.demo.server import DemoServer, latest_sample
from bot.feeds.fetch import Fetcher
from bot.feeds.parse import ParserPool
from bot.feeds.poll import Poller, PollReport
from bot.storage.sql import SqlStorage

DB_NAME = "demo.db"
#: the digest shows at most this many stories (two lines each: the demo fits a screen)
DEMO_STORIES = 30
#: the period the digest covers: every sample, up to an hour after the latest
DEMO_PERIOD = timedelta(days=45)
NEXT = (
    "Next: briefbot console --demo opens a chat channel on these feeds "
    "(try /brief, /track, /search, /digest now)."
)


def add_arguments(parser: argparse.ArgumentParser, _name: str) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"where to keep the demo database ({DB_NAME}); default: storage.data_dir, "
        "else the per-user data directory",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the demo database of the last run (default: start from an empty one)",
    )
    # the default now; accepted for the scripts that still say it
    parser.add_argument("--fresh", action="store_true", help=argparse.SUPPRESS)


def poll_line(report: PollReport) -> str:
    failed = len(report.errors)
    return (
        f"Polled {len(report.results)} sample feeds on loopback (fictional outlets): "
        f"{report.new_items} new items, {report.already_stored} already stored"
        + (f", {failed} failed" if failed else "")
        + "."
    )


def render(digest: Digest, report: PollReport) -> list[str]:
    """The demo's printout: the poll in one line, the digest, what to try next."""
    lines = [f"! {res.name}: {res.error}" for res in report.errors]
    lines.append(poll_line(report))
    lines.append("")
    for part in render_text(digest, budget=100_000, markdown=False):
        lines.extend(part.splitlines())
    lines.append("")
    lines.append(NEXT)
    return lines


def _prepare(args: argparse.Namespace) -> tuple[Settings, Watchlist, Path]:
    """Settings, the effective watchlist and the demo database path (config errors
    surface here, before anything starts)."""
    cfg_dir = config_dir(getattr(args, "config", None))
    settings = load_settings(cfg_dir)
    watchlist = load_effective_watchlist(cfg_dir)
    data_dir = (
        Path(args.data_dir).expanduser()
        if getattr(args, "data_dir", None)
        else settings.storage.resolved_data_dir()
    )
    db_path = data_dir / DB_NAME
    if not getattr(args, "keep", False) and data_dir.is_dir():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    return settings, watchlist, db_path


async def main(args: argparse.Namespace) -> int:
    settings, watchlist, db_path = _prepare(args)
    matcher = compile_watchlist(watchlist)
    storage = SqlStorage(f"sqlite+aiosqlite:///{db_path}")
    pool = ParserPool()
    end = latest_sample() + timedelta(hours=1)
    start = end - DEMO_PERIOD
    try:
        await storage.open()
        async with DemoServer() as server, Fetcher(settings.http, settings.poll) as fetcher:
            await storage.sync_config_feeds(server.sources())
            poller = Poller(storage, fetcher, lambda: matcher, SystemClock(), settings, parser=pool)
            report = await poller.poll_once(only_due=False)
        # the channel's view: every sample feed, the effective watchlist; the samples
        # are from 2023, so the backlog rule (digest.max_item_age) is off here
        channel = await storage.get_channel("console", "demo", name="demo")
        items = await storage.matched_items(channel.id, start, end, max_age=None)
    finally:
        pool.close()
        await storage.close()
    digest = build_digest(
        items,
        entries={e.id: e for e in watchlist.entries},
        period_start=start,
        period_end=end,
        tz=settings.digest.default_timezone,
        group_by="story",
        max_stories=DEMO_STORIES,
        now=end,
        title="Demo digest",
        language=settings.digest.language,
    )
    print("\n".join(render(digest, report)))
    return 1 if report.errors else 0
