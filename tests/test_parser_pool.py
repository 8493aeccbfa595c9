"""The parser pool keeps polling: long bursts, stuck parses and dead workers.

These run the real spawn-based process pool with real feedparser parses."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime

import pytest
from feedserver import rss

from bot.errors import ParseError
from bot.feeds.parse import ParserPool

NOW = datetime(2023, 11, 15, tzinfo=UTC)


def small_feed(n: int) -> bytes:
    return rss([{"title": f"Story {n}", "guid": f"g-{n}", "link": f"https://a.example/{n}"}])


def huge_feed(items: int) -> bytes:
    return rss(
        [
            {
                "title": f"Wang Yi meets Blinken, part {n} " + "word " * 40,
                "guid": f"h-{n}",
                "link": f"https://a.example/h/{n}",
                "description": "<p>" + "Long paragraph of text. " * 60 + "</p>",
            }
            for n in range(items)
        ]
    )


def worker_pids(pool: ParserPool) -> set[int]:
    processes = getattr(pool.executor, "_processes", None) or {}
    return set(processes)


async def test_1500_parses_in_bursts_of_600_all_come_back() -> None:
    # On Python 3.11 a pool whose workers retire after N tasks hangs when one retires
    # mid-burst (CPython gh-115634): two bursts of 600 used to stop polling for good.
    pool = ParserPool(kind="process", workers=2)
    try:
        done: list[str] = []
        for start, size in ((0, 600), (600, 600), (1200, 300)):
            burst = [
                pool.parse(small_feed(n), url=f"https://a.example/{n}.xml", now=NOW)
                for n in range(start, start + size)
            ]
            results = await asyncio.wait_for(asyncio.gather(*burst), timeout=120)
            done.extend(r.items[0].title for r in results)
        assert done == [f"Story {n}" for n in range(1500)]
        assert pool.generation == 1  # one pool served every parse: nothing was rebuilt
    finally:
        pool.close()


async def test_a_parse_over_the_time_limit_fails_alone_and_the_pool_is_rebuilt() -> None:
    pool = ParserPool(kind="process", workers=1, timeout=30)
    try:
        # warm the worker so the limit measures the parse, not the process start (which
        # alone can take over 0.3 s on a busy machine)
        first = await pool.parse(small_feed(1), url="https://a.example/1.xml", now=NOW)
        assert first.items[0].title == "Story 1"
        pool.timeout = 0.3
        stuck_workers = worker_pids(pool)
        assert stuck_workers

        with pytest.raises(ParseError, match=r"took over 0.3s to parse"):
            await pool.parse(huge_feed(4_000), url="https://a.example/huge.xml", now=NOW)

        # the stuck worker was killed, not left parsing in the background
        for pid in stuck_workers:
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"worker {pid} is still alive")

        pool.timeout = 30
        after = await pool.parse(small_feed(2), url="https://a.example/2.xml", now=NOW)
        assert after.items[0].title == "Story 2"
        assert pool.generation == 2
        assert pool.kind == "process"
    finally:
        pool.close()


async def test_a_killed_worker_is_replaced_and_the_parse_still_succeeds() -> None:
    pool = ParserPool(kind="process", workers=2)
    try:
        await pool.parse(small_feed(1), url="https://a.example/1.xml", now=NOW)
        for pid in worker_pids(pool):
            os.kill(pid, signal.SIGKILL)  # as the kernel's OOM killer would
        await asyncio.sleep(0.2)
        parsed = await pool.parse(small_feed(2), url="https://a.example/2.xml", now=NOW)
        assert parsed.items[0].title == "Story 2"
        assert pool.generation == 2
    finally:
        pool.close()


async def test_a_parse_over_the_limit_in_threads_is_also_a_parse_error() -> None:
    pool = ParserPool(kind="thread", workers=1, timeout=0.05)
    try:
        with pytest.raises(ParseError, match="took over"):
            await pool.parse(huge_feed(4_000), url="https://a.example/huge.xml", now=NOW)
        pool.timeout = 30
        parsed = await pool.parse(small_feed(3), url="https://a.example/3.xml", now=NOW)
        assert parsed.items[0].title == "Story 3"
    finally:
        pool.close()
