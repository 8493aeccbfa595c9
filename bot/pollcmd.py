"""``briefbot poll --once [--all] [--json]``: one poll cycle, then exit.

The cycle is the one ``briefbot run`` schedules: the configured feeds (config dir and
settings as ``run`` reads them), the configured storage, the default watchlist and the
alert fan-out (alerts are queued for delivery like any other). Only the due feeds are
polled, or every active feed with ``--all``. Operators use it from cron and to try a
feed list; ``benchmarks/cycle.py`` uses it to time a cycle with start-up included.

Exit status: 0 when the cycle ran (feeds that failed are counted in ``errors``), 2 on a
bad configuration (one line on stderr)."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import time
from typing import Any


def add_arguments(parser: argparse.ArgumentParser, _name: str) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        required=True,
        help="run exactly one poll cycle, then exit (the only mode)",
    )
    parser.add_argument("--all", action="store_true", help="poll every active feed, due or not")
    parser.add_argument(
        "--json", action="store_true", help="print the cycle's counts as one JSON object"
    )


def report_counts(report: Any, seconds: float) -> dict[str, Any]:
    """The ``--json`` object of a :class:`~bot.feeds.poll.PollReport`.

    ``fetched``: feeds that sent a document (``unchanged`` ones included: the same bytes
    as last time, not parsed again); ``not_modified``: feeds that answered 304."""
    results = report.results
    return {
        "feeds": len(results),
        "fetched": sum(1 for r in results if r.ok and not r.not_modified),
        "not_modified": sum(1 for r in results if r.not_modified),
        "unchanged": sum(1 for r in results if r.unchanged),
        "new_items": report.new_items,
        "matched_items": report.matched_items,
        "errors": len(report.errors),
        "seconds": round(seconds, 3),
    }


async def main(args: argparse.Namespace) -> int:
    from bot.app import build_app, load_config

    started = time.perf_counter()
    config = load_config(args.config)  # a bad config: ConfigError, exit status 2
    app = build_app(config)
    try:
        await app.open()
    except BaseException:
        with contextlib.suppress(Exception):
            await app.storage.close()
        raise
    # everything loaded at start-up lives as long as the process: keep it out of the
    # collector's generations (a full collection during the cycle then scans only the
    # cycle's own objects)
    gc.freeze()
    try:
        report = await app.poller.poll_once(only_due=not args.all)
    finally:
        await app.close()
    counts = report_counts(report, time.perf_counter() - started)
    if args.json:
        print(json.dumps(counts, sort_keys=False))
    else:
        print(f"briefbot poll: {report.summary()} ({counts['seconds']:.1f} s)")
    return 0
