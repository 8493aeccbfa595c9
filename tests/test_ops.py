"""The operator's view in process: the Monitor fed by a real poll (loopback feeds, real
parsing, SQLite) and real deliveries, read over real HTTP on 127.0.0.1 (/healthz and
Prometheus /metrics), and the event log lines in text and JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from feedserver import FeedServer, rss
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App, Config, build_app
from bot.config import Settings, StorageSettings
from bot.core.clock import FakeClock
from bot.core.digest import Digest
from bot.core.models import FeedSource
from bot.core.ports import ChannelRecord
from bot.core.replies import ChannelContext
from bot.core.telemetry import NULL_TELEMETRY, PollCycle
from bot.errors import ConfigError, DeliveryError
from bot.ops.logs import setup_logging
from bot.ops.monitor import Monitor, error_kind
from bot.ops.server import OpsServer
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
PAGE = b"<html><body>hi</body></html>"
CONSOLE = ChannelContext("console", "news", channel_name="news", can_manage=True)


class Ticker:
    """A monotonic clock the test moves by hand (the Monitor's ``now``)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Scene:
    app: App
    monitor: Monitor
    server: OpsServer
    feeds: FeedServer
    ticker: Ticker

    async def get(self, path: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as http, http.get(self.server.url + path) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.text()

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, ctype, body = await self.get("/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return out


class RecordingSink:
    """A chat platform stand-in: keeps what it is asked to post, or fails as told."""

    def __init__(self) -> None:
        self.sent: list[Digest] = []
        self.fail: DeliveryError | None = None

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        if self.fail is not None:
            raise self.fail
        self.sent.append(digest)
        return [f"m{len(self.sent)}"]


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async with FeedServer() as feeds:
        wire = feeds.feed("/wire.xml", rss([
            {"title": "Blinken meets Wang Yi in Washington", "guid": "w-1",
             "link": "https://wire.example/1", "description": "Talks on Taiwan."},
            {"title": "Weather turns cold in Chicago", "guid": "w-2",
             "link": "https://wire.example/2"},
        ]))  # fmt: skip
        sources = [
            FeedSource(wire, "Loopback Wire"),
            FeedSource(feeds.status("/gone.xml", 404), "Gone"),
            FeedSource(feeds.status("/broken.xml", 503), "Broken"),
            FeedSource(feeds.feed("/page.xml", PAGE, content_type="text/html"), "A page"),
            FeedSource(f"http://127.0.0.1:{_closed_port()}/feed.xml", "Nobody home"),
        ]
        config = Config(
            settings=Settings(storage=StorageSettings(data_dir=str(tmp_path))),
            cfg_dir=None,
            watchlist=default_watchlist(),
            feeds=sources,
        )
        sink = RecordingSink()
        app = build_app(
            config,
            storage=SqlStorage("sqlite+aiosqlite:///:memory:"),
            clock=FakeClock(NOW),
            sinks={"console": sink},
        )
        ticker = Ticker()
        monitor = Monitor(poll_stale_seconds=300, adapter_stale_seconds=60, now=ticker)
        app.poller.telemetry = monitor
        app.outbox.telemetry = monitor
        server = OpsServer(monitor, port=0)
        await app.open()
        await server.start()
        try:
            yield Scene(app, monitor, server, feeds, ticker)
        finally:
            await server.close()
            await app.close()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = setup_logging(0, "json", stream=out, force=True)
    assert handler is not None
    try:
        yield out
    finally:
        logging.getLogger().removeHandler(handler)


async def test_metrics_count_a_real_poll_and_its_errors_by_kind(scene: Scene) -> None:
    report = await scene.app.poller.poll_once(only_due=False)
    assert report.new_items == 2
    m = await scene.metrics()
    assert m[("briefbot_poll_cycles_total", ())] == 1
    assert m[("briefbot_poll_feeds_total", ())] == 5
    assert m[("briefbot_items_new_total", ())] == 2
    assert m[("briefbot_items_matched_total", ())] == 1
    assert m[("briefbot_poll_cycle_seconds_count", ())] == 1
    errors = {
        dict(labels)["kind"]: value
        for (name, labels), value in m.items()
        if name == "briefbot_fetch_errors_total"
    }
    assert errors == {"http_4xx": 1, "http_5xx": 1, "parse": 1, "connect": 1}
    assert m[("briefbot_last_poll_timestamp_seconds", ())] == pytest.approx(time.time(), abs=60)
    assert m[("briefbot_healthy", ())] == 1

    # a second cycle with nothing due is a tick too: counted, nothing else changes
    await scene.app.poller.poll_once()
    m = await scene.metrics()
    assert m[("briefbot_poll_cycles_total", ())] == 2
    assert m[("briefbot_poll_feeds_total", ())] == 5


async def test_healthz_reasons_follow_the_poll_tick_and_the_adapters(scene: Scene) -> None:
    status, ctype, body = await scene.get("/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")  # just started: grace
    assert ctype.startswith("application/json")

    scene.ticker.t += 301
    status, _, body = await scene.get("/healthz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["no poll tick since start (301 s ago)"]

    await scene.app.poller.poll_once(only_due=False)
    status, _, body = await scene.get("/healthz")
    assert status == 200
    assert json.loads(body)["last_poll_seconds_ago"] == 0

    scene.ticker.t += 400
    status, _, body = await scene.get("/healthz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["last poll tick 400 s ago (limit 300 s)"]
    await scene.app.poller.poll_once()  # a tick with nothing due still counts
    assert (await scene.get("/healthz"))[0] == 200

    # an enabled adapter must connect (after a grace time) and stay connected
    scene.monitor.expect_adapter("discord")
    assert (await scene.get("/healthz"))[0] == 200
    scene.ticker.t += 61
    await scene.app.poller.poll_once()
    status, _, body = await scene.get("/healthz")
    assert status == 503
    assert json.loads(body)["reasons"] == ["discord not connected for 61 s: starting"]
    assert json.loads(body)["adapters"] == {"discord": False}
    scene.monitor.adapter("discord", connected=True)
    status, _, body = await scene.get("/healthz")
    assert (status, json.loads(body)["adapters"]) == (200, {"discord": True})
    m = await scene.metrics()
    assert m[("briefbot_adapter_connected", (("platform", "discord"),))] == 1

    scene.monitor.adapter("discord", connected=False, detail="connection refused; retrying")
    scene.ticker.t += 30
    assert (await scene.get("/healthz"))[0] == 200  # a short outage is not unhealthy
    scene.ticker.t += 31
    await scene.app.poller.poll_once()
    status, _, body = await scene.get("/healthz")
    assert status == 503
    assert json.loads(body)["reasons"] == [
        "discord not connected for 61 s: connection refused; retrying"
    ]
    m = await scene.metrics()
    assert m[("briefbot_healthy", ())] == 0
    assert m[("briefbot_adapter_connected", (("platform", "discord"),))] == 0
    assert (await scene.get("/nothing"))[0] == 404


async def test_deliveries_by_outcome_and_a_line_per_digest(
    scene: Scene, json_log: io.StringIO
) -> None:
    app = scene.app
    await app.poller.poll_once(only_due=False)
    channel = await app.service.channel(CONSOLE)
    await app.service.send_scheduled_digest(channel.id, NOW + timedelta(minutes=1))
    sink = app.sinks["console"]
    assert isinstance(sink, RecordingSink)
    assert len(sink.sent) == 1
    sink.fail = DeliveryError("Discord is down", permanent=False)
    await app.service.send_scheduled_digest(channel.id, NOW + timedelta(days=1))
    sink.fail = DeliveryError("Missing Access", permanent=True)
    await app.outbox.retry_pending(force=True)

    m = await scene.metrics()
    outcomes = {
        (dict(labels)["kind"], dict(labels)["outcome"]): value
        for (name, labels), value in m.items()
        if name == "briefbot_deliveries_total"
    }
    assert outcomes == {("digest", "sent"): 1, ("digest", "retry"): 1, ("digest", "refused"): 1}

    lines = [json.loads(x) for x in json_log.getvalue().splitlines()]
    events = [x for x in lines if x["logger"] == "briefbot.events"]
    assert [e["event"] for e in events] == ["poll", "digest"]
    poll, digest = events
    assert poll["msg"].startswith("poll: 5 feeds, 2 new, 1 matched, 4 failing, ")
    assert (poll["feeds"], poll["new"], poll["matched"], poll["failing"]) == (5, 2, 1, 4)
    assert poll["level"] == "info"
    assert digest["channel"] == "news"
    assert digest["stories"] == sink.sent[0].story_count >= 1
    assert digest["msg"] == (
        f"digest: delivered to #news on console, {digest['stories']} stories, 1 messages"
    )
    datetime.fromisoformat(digest["ts"])  # an ISO timestamp


def test_event_lines_show_without_verbose_in_text_format() -> None:
    out = io.StringIO()
    handler = setup_logging(0, "text", stream=out, force=True)
    assert handler is not None
    try:
        monitor = Monitor()
        monitor.poll_cycle(PollCycle(feeds=3, new=4, matched=1, failing=1, seconds=2.25,
                                     errors=("HTTP 500 Internal Server Error",)))  # fmt: skip
        monitor.poll_cycle(PollCycle(feeds=0, new=0, matched=0, failing=0, seconds=0.01))
        logging.getLogger("bot.feeds.poll").info("not shown without -v")
        logging.getLogger("discord.client").warning(
            "PyNaCl is not installed, voice will NOT be supported"
        )
        logging.getLogger("discord.gateway").warning("Shard ID 0 has stopped responding")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(
        "INFO briefbot.events: poll: 3 feeds, 4 new, 1 matched, 1 failing, 2.2 s"
    )
    assert lines[1].endswith("WARNING discord.gateway: Shard ID 0 has stopped responding")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("HTTP 404 Not Found", "http_4xx"),
        ("HTTP 429 Too Many Requests", "http_4xx"),
        ("HTTP 502 Bad Gateway", "http_5xx"),
        ("timed out after 30 s", "timeout"),
        ("could not connect to feeds.example within 10 s", "timeout"),
        ("DNS lookup failed for feeds.example", "dns"),
        ("could not connect to 127.0.0.1: connection refused", "connect"),
        ("TLS certificate of x.example not accepted: expired", "tls"),
        ("response larger than 10 MB", "too_large"),
        ("not a feed: an HTML page", "parse"),
        ("the feed could not be parsed (ValueError)", "parse"),
        ("network error: connection reset", "network"),
        ("internal error while polling this feed (KeyError)", "internal"),
        ("something else entirely", "other"),
    ],
)
def test_error_kinds(error: str, kind: str) -> None:
    assert error_kind(error) == kind


async def test_loop_lag_is_measured() -> None:
    monitor = Monitor()
    task = asyncio.create_task(monitor.watch_loop_lag(every=0.02))
    try:
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # noqa: ASYNC251 - the event loop is blocked on purpose
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    late = monitor.registry.get_sample_value("briefbot_event_loop_lag_seconds_bucket",
                                             {"le": "0.1"})  # fmt: skip
    count = monitor.registry.get_sample_value("briefbot_event_loop_lag_seconds_count")
    total = monitor.registry.get_sample_value("briefbot_event_loop_lag_seconds_sum")
    assert late is not None
    assert count is not None
    assert total is not None
    assert count >= 2
    assert count - late >= 1  # one sample over 0.1 s
    assert total >= 0.15


async def test_a_taken_port_is_a_one_line_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = OpsServer(Monitor(), port=port)
        where = f"127.0.0.1:{port}"
        with pytest.raises(ConfigError, match=f"cannot serve /healthz and /metrics on {where}"):
            await server.start()


def test_null_telemetry_accepts_everything() -> None:
    cycle = PollCycle(feeds=1, new=0, matched=0, failing=0, seconds=0.1)
    assert NULL_TELEMETRY.poll_cycle(cycle) is None
    assert NULL_TELEMETRY.command("brief", 0.1, ok=True) is None
    assert NULL_TELEMETRY.adapter("discord", connected=True) is None


def _healthcheck_command() -> list[str]:
    """The Dockerfile's HEALTHCHECK CMD (exec form), continuation lines joined."""
    dockerfile = Path(__file__).resolve().parent.parent / "Dockerfile"
    text = dockerfile.read_text().replace("\\\n", " ")
    (line,) = [x for x in text.splitlines() if x.startswith("HEALTHCHECK ")]
    command = json.loads(line.split(" CMD ", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


async def test_the_docker_healthcheck_command_follows_healthz(scene: Scene) -> None:
    """The image's HEALTHCHECK (python -c with urllib: no curl in slim images) exits 0
    on 200 and non-zero on 503, against the real endpoint."""
    command = _healthcheck_command()
    assert command[0] == "python"
    env = {"PATH": os.environ.get("PATH", ""), "BRIEFBOT_METRICS__PORT": str(scene.server.port)}

    async def run() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        return await asyncio.wait_for(proc.wait(), timeout=30)

    assert await run() == 0
    scene.ticker.t += 301  # no poll tick for too long
    assert (await scene.get("/healthz"))[0] == 503
    assert await run() != 0


async def test_parser_workers_ignore_ctrl_c_from_their_first_instruction() -> None:
    """A terminal's Ctrl-C reaches every process of the group, parser workers too, even
    one still starting (importing feedparser): it must neither die nor print a
    KeyboardInterrupt traceback. The worker is hit with SIGINT the moment it exists."""
    from feedserver import rss as make_rss

    from bot.feeds.parse import ParserPool

    pool = ParserPool(kind="process", workers=1, timeout=60)
    try:
        body = make_rss([{"title": "Story 1", "guid": "g-1", "link": "https://a.example/1"}])
        parse = asyncio.ensure_future(pool.parse(body, url="https://a.example/1.xml", now=NOW))
        pids: list[int] = []
        for _ in range(500):
            pids = [p.pid for p in (getattr(pool._executor, "_processes", None) or {}).values()]
            if pids:
                break
            await asyncio.sleep(0)
        assert pids, "no worker was started"
        for pid in pids:
            os.kill(pid, signal.SIGINT)  # still importing: before any initializer ran
        parsed = await parse
        assert parsed.items[0].title == "Story 1"
        assert pool.kind == "process"
        assert pool.generation == 1  # the worker survived: no rebuild, no thread fallback
        for pid in pids:
            os.kill(pid, signal.SIGINT)  # and once it is running parses
        again = await pool.parse(body, url="https://a.example/1.xml", now=NOW)
        assert again.items[0].title == "Story 1"
        assert pool.generation == 1
    finally:
        pool.close()
