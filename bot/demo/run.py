"""``briefbot demo``: poll the bundled sample feeds offline and print what matched.

The sample feeds are served from a loopback server (nothing leaves the machine) and
go through the real pipeline: fetcher, parser, dedupe, SQL storage, the effective
watchlist's matcher, story clustering. Items are kept in a demo database, so a second
run reports nothing new.

The demo uses its own SQLite file, ``demo.db`` in the data directory (settings'
``storage.data_dir``, else the per-user data dir, or ``--data-dir``), never the bot's
database: syncing the sample feeds as config feeds there would retire the real ones.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from bot.app import load_effective_watchlist
from bot.config import Settings, config_dir, load_settings
from bot.core.clock import SystemClock
from bot.core.matching import compile_watchlist
from bot.core.ports import MatchedItem
from bot.core.stories import Story, cluster, rank
from bot.core.text import plain, truncate
from bot.core.watchlist import Watchlist
from bot.demo.server import DemoServer
from bot.feeds.fetch import Fetcher
from bot.feeds.parse import ParserPool
from bot.feeds.poll import Poller, PollReport
from bot.storage.sql import SqlStorage

DB_NAME = "demo.db"


def add_arguments(parser: argparse.ArgumentParser, _name: str) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"where to keep the demo database ({DB_NAME}); default: storage.data_dir, "
        "else the per-user data directory",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start from an empty demo database",
    )


def _when(dt: datetime) -> str:
    return dt.strftime("%d %b %Y %H:%M UTC")


def render(report: PollReport, new: list[MatchedItem], watchlist: Watchlist) -> list[str]:
    """The demo's printout: each tracked entry with its stories, then what did not
    match, then one summary line."""
    lines: list[str] = []
    for res in report.errors:
        lines.append(f"! {res.name}: {res.error}")
    matched = [m for m in new if m.matches]
    kinds = {e.id: e.kind for e in watchlist.entries}
    stories = rank(cluster(matched, entry_kinds=kinds))
    by_entry: dict[str, list[Story]] = {}
    for story in stories:
        for entry_id in story.matches:
            by_entry.setdefault(entry_id, []).append(story)
    if not new:
        lines.append(
            "Nothing new: every item the sample feeds carry is already stored "
            "(use --fresh to start over)."
        )
    for entry in watchlist.entries:
        entry_stories = by_entry.get(entry.id)
        if not entry_stories:
            continue
        count = len(entry_stories)
        lines.append("")
        lines.append(f"{entry.name} [{entry.id}]: {count} stor{'y' if count == 1 else 'ies'}")
        for story in entry_stories:
            lines.append(f"  • {truncate(story.title, 100)}")
            lines.append(f"    {', '.join(story.outlets)} · {_when(story.first)}")
            if story.link:
                lines.append(f"    {story.link}")
    unmatched = [m for m in new if not m.matches]
    if unmatched:
        lines.append("")
        lines.append(f"Not matched ({len(unmatched)} items, near misses included):")
        for m in unmatched:
            item = m.stored.item
            lines.append(f"  - {truncate(plain(item.title), 90)} ({item.source})")
    lines.append("")
    entries = {m.entry_id for mi in matched for m in mi.matches}
    failed = len(report.errors)
    lines.append(
        f"{report.new_items} new items; {report.already_stored} already stored; "
        f"{len(matched)} matched {len(entries)} watchlist entries in {len(stories)} stories; "
        f"{len(report.results)} feeds polled, {failed} failed."
    )
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
    if getattr(args, "fresh", False):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    return settings, watchlist, db_path


async def main(args: argparse.Namespace) -> int:
    settings, watchlist, db_path = _prepare(args)
    matcher = compile_watchlist(watchlist)
    storage = SqlStorage(f"sqlite+aiosqlite:///{db_path}")
    pool = ParserPool()
    new: list[MatchedItem] = []

    async def collect(items: list[MatchedItem]) -> None:
        new.extend(items)

    try:
        await storage.open()
        async with DemoServer() as server, Fetcher(settings.http, settings.poll) as fetcher:
            print(f"Demo database: {db_path}")
            print(
                f"Serving {len(server.feeds)} sample feeds on {server.base_url} "
                "(loopback only; the outlets and items are fictional)"
            )
            await storage.sync_config_feeds(server.sources())
            poller = Poller(
                storage,
                fetcher,
                lambda: matcher,
                SystemClock(),
                settings,
                parser=pool,
                on_new_items=collect,
            )
            report = await poller.poll_once(only_due=False)
    finally:
        pool.close()
        await storage.close()
    new.sort(key=lambda m: (m.stored.when, m.stored.id))
    print("\n".join(render(report, new, watchlist)))
    return 1 if report.errors else 0
