#!/usr/bin/env python3
"""Benchmark the largest poll: many feeds, one huge feed, the real pipeline.

Usage: python scripts/bench_poll.py [--feeds N] [--items M] [--big-mb X] [--no-variants]
                                   [--debug-stalls MS]

Defaults: 200 feeds x 10 items + a 5 MB feed, all variants (about 40 s on 2 cores). The
largest poll: ``--items 100 --big-mb 6 --no-variants`` (about 60 s).

A loopback feed server in a separate process (so it does not share our event loop or
GIL) serves N RSS feeds of M items each, spread over several loopback addresses (per-host
limits apply as with real outlets), plus one feed of about X MB. A third of the feeds
send an ETag, a third Last-Modified, a third neither (the same bytes each time).

The real :class:`~bot.feeds.poll.Poller` polls them: the real Fetcher (aiohttp), the
ParserPool (a process pool), SqlStorage on a temporary SQLite file and the compiled
default watchlist. While it runs, a heartbeat task sleeps 10 ms at a time and records
how late it wakes (event-loop lag: what a chat command waits before it is even looked
at), and another task reads the storage every 50 ms as a chat command would (how long
a command waits behind the poll's writes). Figures are compared with baselines measured
in the same process:

- lag of the idle loop (nothing else running);
- the same poll with parsing forced onto the event-loop thread (what the pool buys),
  and in a thread pool (feedparser holds the GIL);
- the second poll of the same unchanged feeds (304s and content-hash skips) against the
  first;
- peak RSS of this process (and of the largest parser worker) against the RSS before
  the first poll.

``--debug-stalls MS`` starts a watchdog thread that samples the event-loop thread's
stack whenever the loop has not ticked for MS ms, and prints where the stalls were.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from match import make_items, phrases  # benchmarks/match.py

from bot.config import HttpSettings, PollSettings
from bot.core.clock import SystemClock
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource
from bot.feeds.fetch import Fetcher
from bot.feeds.parse import ParseCall, ParsedFeed, ParserPool
from bot.feeds.poll import Poller, PollReport
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist

T = TypeVar("T")
HEARTBEAT = 0.010
HOSTS = 8
T0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)


# -- the feed server (runs in its own process) ---------------------------------------------


def rss(title: str, items: Sequence[dict[str, str]]) -> bytes:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://example.org/</link>",
        "<language>en</language>",
    ]
    for it in items:
        out.append("<item>")
        for tag in ("title", "link", "guid", "description", "pubDate"):
            attr = ' isPermaLink="false"' if tag == "guid" else ""
            out.append(f"<{tag}{attr}>{escape(it[tag])}</{tag}>")
        out.append("</item>")
    out.append("</channel></rss>")
    return "\n".join(out).encode()


def build_feeds(n_feeds: int, n_items: int, big_bytes: int, seed: int) -> dict[str, bytes]:
    """path -> RSS document. Items mention the default watchlist's phrases now and then;
    one in 20 links to a story another feed also carries (syndication: a duplicate)."""
    vocab = [t for t in phrases(default_watchlist()) if t[0] not in "@$"]
    rng = random.Random(seed)
    docs: dict[str, bytes] = {}
    pool = make_items(2000, vocab, seed)
    for f in range(n_feeds):
        items = []
        for j in range(n_items):
            title, summary = pool[rng.randrange(len(pool))]
            if rng.random() < 0.05:
                link = f"https://outlet{rng.randrange(n_feeds)}.example/story/{j}"
            else:
                link = f"https://outlet{f}.example/story/{j}"
            when = T0 - timedelta(minutes=7 * j + f)
            items.append(
                {
                    "title": title,
                    "link": link + "?utm_source=rss",
                    "guid": f"feed{f}-item{j}",
                    "description": summary,
                    "pubDate": format_datetime(when, usegmt=True),
                }
            )
        docs[f"/feed/{f}.xml"] = rss(f"Outlet {f}", items)
    if big_bytes > 0:
        items = []
        size = 0
        j = 0
        while size < big_bytes:
            title, summary = pool[rng.randrange(len(pool))]
            body = " ".join(pool[rng.randrange(len(pool))][1] for _ in range(3))
            item = {
                "title": title,
                "link": f"https://archive.example/story/{j}",
                "guid": f"big-item{j}",
                "description": summary + body,
                "pubDate": format_datetime(T0 - timedelta(minutes=j), usegmt=True),
            }
            size += sum(len(v) for v in item.values()) + 150
            items.append(item)
            j += 1
        doc = rss("The Archive", items)
        while len(doc) > big_bytes * 1.05 and len(items) > 1:  # escaping made it bigger
            items = items[: max(1, int(len(items) * big_bytes / len(doc)))]
            doc = rss("The Archive", items)
        docs["/big.xml"] = doc
    return docs


def serve(conn: multiprocessing.connection.Connection, spec: tuple[int, int, int, int]) -> None:
    """Process entry point: build the feeds, serve them, send back the URLs, run until
    anything arrives on ``conn``."""
    from aiohttp import web

    docs = build_feeds(*spec)
    validators: dict[str, tuple[str, str]] = {}
    for i, path in enumerate(sorted(docs)):
        if path == "/big.xml" or i % 3 == 2:
            validators[path] = ("", "")  # neither: the same bytes every time
        elif i % 3 == 0:
            validators[path] = (f'"v{i}"', "")
        else:
            validators[path] = ("", "Fri, 01 Mar 2024 06:00:00 GMT")

    async def handle(request: web.Request) -> web.Response:
        body = docs.get(request.path)
        if body is None:
            return web.Response(status=404)
        etag, lm = validators[request.path]
        headers = {}
        if etag:
            headers["ETag"] = etag
        if lm:
            headers["Last-Modified"] = lm
        if (etag and request.headers.get("If-None-Match") == etag) or (
            lm and request.headers.get("If-Modified-Since") == lm
        ):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=body, headers=headers, content_type="application/rss+xml", charset="utf-8"
        )

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        bases = []
        for h in range(1, HOSTS + 1):
            site = web.TCPSite(runner, f"127.0.0.{h}", 0)
            try:
                await site.start()
            except OSError:
                continue  # not every platform routes all of 127/8 to loopback
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            bases.append(f"http://127.0.0.{h}:{port}")
        sizes = {p: len(b) for p, b in docs.items()}
        conn.send((bases, sizes))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_reader(conn.fileno(), stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


@contextlib.contextmanager
def feed_server(spec: tuple[int, int, int, int]) -> Iterator[tuple[list[str], dict[str, int]]]:
    """Start :func:`serve` in a process; yields (base URLs, {path: size})."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve, args=(child, spec), daemon=True)
    proc.start()
    try:
        bases, sizes = parent.recv()
        yield bases, sizes
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Lag:
    samples: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        s = sorted(self.samples)
        if not s:
            return 0.0
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p99(self) -> float:
        return self.pct(0.99)

    @property
    def max(self) -> float:
        return max(self.samples, default=0.0)

    def over(self, limit: float) -> int:
        return sum(1 for x in self.samples if x > limit)


SAMPLER: StallSampler | None = None


async def with_heartbeat(
    work: Awaitable[T], storage: SqlStorage | None = None
) -> tuple[T, Lag, Lag, float]:
    """Run ``work`` while a task sleeps 10 ms at a time recording how late it wakes
    (loop lag) and, given ``storage``, another reads it every 50 ms as a chat command
    would (``all_channels``), recording how long each read takes."""
    lag, db = Lag(), Lag()
    stop = asyncio.Event()

    async def beat() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(HEARTBEAT)
            lag.samples.append(max(0.0, time.perf_counter() - t0 - HEARTBEAT))

    async def probe() -> None:
        assert storage is not None
        while not stop.is_set():
            await asyncio.sleep(0.05)
            t0 = time.perf_counter()
            await storage.all_channels()
            db.samples.append(time.perf_counter() - t0)

    tasks = [asyncio.create_task(beat())]
    if storage is not None:
        tasks.append(asyncio.create_task(probe()))
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    if SAMPLER is not None:
        SAMPLER.active = storage is not None
    try:
        result = await work
    finally:
        wall = time.perf_counter() - t0
        if SAMPLER is not None:
            SAMPLER.active = False
        stop.set()
        await asyncio.gather(*tasks)
    return result, lag, db, wall


class StallSampler:
    """A watchdog thread: when the event loop has not ticked for ``threshold`` seconds,
    it records the loop thread's stack (the innermost frames of our code first), so a
    stall can be traced to the line that caused it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, threshold: float) -> None:
        self.loop = loop
        self.threshold = threshold
        self.loop_thread = threading.get_ident()
        self.last_tick = time.perf_counter()
        self.stacks: Counter[str] = Counter()
        #: sample only while this is set (during the polls, not the set-up)
        self.active = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _tick(self) -> None:
        self.last_tick = time.perf_counter()
        if not self._stop.is_set():
            self.loop.call_later(0.002, self._tick)

    def start(self) -> None:
        self.loop.call_soon(self._tick)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        sampled_for = 0.0
        while not self._stop.wait(0.005):
            tick = self.last_tick
            late = time.perf_counter() - tick >= self.threshold
            if not self.active or not late or sampled_for == tick:
                continue
            sampled_for = tick  # one sample per stall
            frame = sys._current_frames().get(self.loop_thread)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            ours = [f for f in stack if "/bot/" in f.filename or "/scripts/" in f.filename]
            where = " <- ".join(
                f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(ours[-4:])
            )
            leaf = stack[-1]
            self.stacks[f"{where}  [in {Path(leaf.filename).name}:{leaf.lineno} {leaf.name}]"] += 1

    def report(self) -> None:
        if not self.stacks:
            print(f"no loop stall over {self.threshold * 1e3:.0f} ms was sampled")
            return
        print(f"loop stalls over {self.threshold * 1e3:.0f} ms, where the loop thread was:")
        for where, n in self.stacks.most_common(12):
            print(f"  {n:4d} x {where}")


class LoopParser(ParserPool):
    """Parses on the event-loop thread: what the process pool saves us from."""

    async def run(self, call: ParseCall) -> ParsedFeed:
        return call()


def rss_mb() -> float:
    """Peak RSS of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return rss_mb()


def worker_peak_mb(pool: ParserPool) -> float | None:
    """Largest VmHWM (peak RSS) among the pool's live worker processes (Linux)."""
    procs = getattr(pool._executor, "_processes", None) or {}
    peaks = []
    for pid in list(procs):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks) if peaks else None


class TimedStorage(SqlStorage):
    """SqlStorage that adds up the time spent in the poller's write calls (storage calls
    are serialised, so the sums show where a poll's storage time goes)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.spent: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()

    async def _timed(self, name: str, call: Awaitable[T]) -> T:
        t0 = time.perf_counter()
        try:
            return await call
        finally:
            self.spent[name] += time.perf_counter() - t0
            self.calls[name] += 1

    async def insert_items(self, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("insert_items", super().insert_items(*args, **kwargs))

    async def add_matches(self, *args: Any, **kwargs: Any) -> Any:
        return await self._timed("add_matches", super().add_matches(*args, **kwargs))

    async def record_fetch_success(self, *args: Any, **kwargs: Any) -> Any:
        return await self._timed(
            "record_fetch_success", super().record_fetch_success(*args, **kwargs)
        )

    def summary(self) -> str:
        return ", ".join(
            f"{name} {self.spent[name]:.1f}s/{self.calls[name]} calls"
            f" ({self.spent[name] / self.calls[name] * 1e3:.2f} ms each)"
            for name in sorted(self.spent)
        )


@dataclass
class Run:
    name: str
    report: PollReport | None  # None: the idle baseline
    lag: Lag
    db: Lag
    wall: float
    storage: str = ""


async def fresh_poll(
    tmp: Path,
    name: str,
    sources: Sequence[FeedSource],
    parser: ParserPool,
    *,
    twice: bool = False,
    idle: float = 0.0,
) -> list[Run]:
    """A new database, then one poll of every feed (two when ``twice``). With ``idle``,
    first that many seconds of heartbeat and storage reads with nothing else running."""
    storage = TimedStorage(f"sqlite+aiosqlite:///{tmp / (name + '.db')}")
    await storage.open()
    await storage.sync_config_feeds(sources)
    matcher = compile_watchlist(default_watchlist())
    runs = []
    try:
        if idle:
            _, lag, db, wall = await with_heartbeat(asyncio.sleep(idle), storage)
            runs.append(Run("idle loop (baseline)", None, lag, db, wall))
        async with Fetcher(HttpSettings(), PollSettings()) as fetcher:
            poller = Poller(
                storage, fetcher, lambda: matcher, SystemClock(), PollSettings(), parser=parser
            )
            for label in (name, name + " again")[: 2 if twice else 1]:
                report, lag, db, wall = await with_heartbeat(
                    poller.poll_once(only_due=False), storage
                )
                errors = report.errors
                if errors:
                    raise SystemExit(f"{label}: {len(errors)} feed(s) failed: {errors[0].error}")
                runs.append(Run(label, report, lag, db, wall, storage.summary()))
                storage.spent.clear()
                storage.calls.clear()
    finally:
        await storage.close()
    return runs


def ms(x: float) -> str:
    return f"{x * 1e3:,.1f}"


def print_runs(runs: Sequence[Run], ref: Run) -> None:
    head = (
        "run", "wall s", "x first", "items/s",
        "lag p50", "p99", "max ms", ">100ms", "db read p50", "p99", "max ms",
    )  # fmt: skip
    rows: list[tuple[str, ...]] = [head]
    for r in runs:
        poll = (
            ("", "", "")
            if r.report is None
            else (
                f"{r.wall:.2f}",
                f"{r.wall / ref.wall:.3f}",
                f"{r.report.seen_items / r.wall:,.0f}",
            )
        )
        lag = (ms(r.lag.p50), ms(r.lag.p99), ms(r.lag.max), str(r.lag.over(0.1)))
        rows.append((r.name, *poll, *lag, ms(r.db.p50), ms(r.db.p99), ms(r.db.max)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))


async def bench(args: argparse.Namespace) -> int:
    global SAMPLER  # noqa: PLW0603 - one watchdog per run
    t_start = time.perf_counter()
    if args.debug_stalls:
        SAMPLER = StallSampler(asyncio.get_running_loop(), args.debug_stalls / 1e3)
        SAMPLER.start()
    spec = (args.feeds, args.items, int(args.big_mb * 1e6), args.seed)
    with feed_server(spec) as (bases, sizes):
        paths = sorted(sizes)
        sources = [
            FeedSource(f"{bases[i % len(bases)]}{p}", f"Outlet {p}") for i, p in enumerate(paths)
        ]
        total_mb = sum(sizes.values()) / 1e6
        big = sizes.get("/big.xml", 0) / 1e6
        print(
            f"{len(sources)} feeds on {len(bases)} loopback hosts, {total_mb:.1f} MB in all "
            f"({args.feeds} x {args.items} items + one feed of {big:.1f} MB); "
            f"{os.cpu_count()} CPUs; server ready after {time.perf_counter() - t_start:.1f}s"
        )
        with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp_name:
            tmp = Path(tmp_name)
            pool = ParserPool()
            await pool.parse(  # the workers start before the timing
                b"<rss version='2.0'><channel><title>x</title></channel></rss>", url="http://w/"
            )
            rss_before = current_rss_mb()
            runs = await fresh_poll(tmp, "process pool", sources, pool, twice=True, idle=args.idle)
            worker_peak = worker_peak_mb(pool)
            pool.close()
            rss_after = rss_mb()
            _, first, second = runs
            if not args.no_variants:
                threads = ParserPool(kind="thread")
                runs += await fresh_poll(tmp, "thread pool", sources, threads)
                threads.close()
                runs += await fresh_poll(tmp, "on the loop thread", sources, LoopParser())
    assert first.report is not None
    assert second.report is not None
    print_runs(runs, first)
    idle = runs[0]

    def x(a: float, b: float) -> str:
        return f"{a / b:,.1f}x" if b > 0 else "n/a"

    print(
        f"process pool vs idle loop: lag p99 {x(first.lag.p99, idle.lag.p99)}, "
        f"max {x(first.lag.max, idle.lag.max)}; storage read p99 {x(first.db.p99, idle.db.p99)}, "
        f"max {x(first.db.max, idle.db.max)}"
    )
    for r in runs[3:]:
        print(
            f"{r.name} vs process pool: lag max {x(r.lag.max, first.lag.max)}, "
            f"p99 {x(r.lag.p99, first.lag.p99)}; wall {x(r.wall, first.wall)}"
        )
    skipped = sum(1 for r in second.report.results if r.not_modified)
    unchanged = sum(1 for r in second.report.results if r.unchanged)
    print(
        f"second poll: {skipped} x 304 Not Modified, {unchanged} x same bytes (not parsed), "
        f"{second.report.new_items} new; wall {second.wall / first.wall:.3f} of the first"
    )
    print(
        f"first poll: {first.report.new_items} new of {first.report.seen_items} seen "
        f"({first.report.already_stored} duplicates), {first.report.matched_items} matched; "
        f"storage {first.storage}"
    )
    worker = f"; largest parser worker {worker_peak:,.0f} MB" if worker_peak else ""
    print(
        f"peak RSS of this process {rss_after:,.0f} MB = {rss_after / rss_before:.2f}x "
        f"its RSS before polling ({rss_before:,.0f} MB){worker}"
    )
    if SAMPLER is not None:
        SAMPLER.stop()
        SAMPLER.report()
    print(f"({time.perf_counter() - t_start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--items", type=int, default=10, help="items per feed (default 10)")
    ap.add_argument("--big-mb", type=float, default=5.0, help="size of the large feed (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--idle", type=float, default=2.0, help="seconds of idle-loop baseline")
    ap.add_argument("--no-variants", action="store_true", help="skip the thread/loop runs")
    ap.add_argument(
        "--debug-stalls",
        type=float,
        metavar="MS",
        default=0,
        help="sample the loop thread's stack whenever the loop stalls longer than MS ms",
    )
    args = ap.parse_args(argv)
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
