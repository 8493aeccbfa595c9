"""The operator's view of a running bot: event log lines, Prometheus metrics, health.

:class:`Monitor` is the :class:`~bot.core.telemetry.Telemetry` that ``briefbot run``
plugs into the poller, the outbox and the chat adapters. From what they report it

- logs one line per poll cycle that polled feeds and one per digest delivered (the
  ``briefbot.events`` logger, see :mod:`bot.ops.logs`);
- counts Prometheus metrics in its own registry (:mod:`prometheus_client`);
- keeps the health state behind ``/healthz``: healthy while the last poll tick is
  recent and every enabled chat adapter is connected (or was until recently).

Metrics (all prefixed ``briefbot_``):

========================================  ==========  ==================================
``poll_cycles_total``                     counter     poll ticks that ended
``poll_cycle_seconds``                    histogram   how long the ticks that polled took
``poll_feeds_total``                      counter     feeds polled
``items_new_total``                       counter     new items stored
``items_matched_total``                   counter     new items matching the watchlist
``fetch_errors_total{kind}``              counter     failed feed polls, by kind
``deliveries_total{kind,outcome}``        counter     digest/alert attempts by outcome
``command_seconds{command}``              histogram   chat command latency
``command_errors_total{command}``         counter     chat commands that raised
``event_loop_lag_seconds``                histogram   how late the event loop wakes a sleeper
``last_poll_timestamp_seconds``           gauge       Unix time of the last poll tick
``adapter_connected{platform}``           gauge       1 while a chat adapter is connected
``healthy``                               gauge       1 while /healthz answers 200
========================================  ==========  ==================================
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.core.telemetry import DeliveryOutcome, PollCycle
from bot.ops.logs import event

log = logging.getLogger(__name__)

#: fetch error kinds (the ``kind`` label of ``briefbot_fetch_errors_total``)
ERROR_KINDS = (
    "timeout", "dns", "connect", "tls", "http_4xx", "http_5xx", "too_large", "blocked",
    "parse", "network", "internal", "other",
)  # fmt: skip
_HTTP_STATUS = re.compile(r"^HTTP (\d{3})\b")
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("timeout", ("timed out", "within")),
    ("dns", ("DNS lookup failed",)),
    ("tls", ("TLS ",)),
    ("connect", ("could not connect", "closed the connection")),
    ("too_large", ("larger than",)),
    ("blocked", ("not allowed", "private address", "loopback", "refused to fetch", "blocked")),
    ("parse", (
        "not a feed", "could not be parsed", "empty document", "to parse", "parser crashed",
        "is an HTML page", "HTML page",
    )),
    ("network", ("network error", "cut off", "bad HTTP response", "request to", "redirect")),
    ("internal", ("internal error",)),
)  # fmt: skip


def error_kind(error: str) -> str:
    """The kind of a feed poll's one-line error (see :data:`ERROR_KINDS`)."""
    m = _HTTP_STATUS.match(error)
    if m:
        return "http_5xx" if m.group(1).startswith("5") else "http_4xx"
    for kind, needles in _RULES:
        if any(n in error for n in needles):
            return kind
    return "other"


@dataclass
class _Adapter:
    connected: bool
    since: float
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reasons: tuple[str, ...]
    last_poll_age: float | None
    adapters: dict[str, bool]


class Monitor:
    """The Telemetry of ``briefbot run``. ``now`` is a monotonic clock (seconds)."""

    def __init__(
        self,
        *,
        poll_stale_seconds: float = 300,
        adapter_stale_seconds: float = 120,
        now: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.poll_stale = poll_stale_seconds
        self.adapter_stale = adapter_stale_seconds
        self._now = now
        self._wall = wall
        self.started = now()
        self.last_poll: float | None = None
        self.adapters: dict[str, _Adapter] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.poll_cycles = Counter("briefbot_poll_cycles", "Poll ticks that ended", registry=r)
        self.poll_seconds = Histogram(
            "briefbot_poll_cycle_seconds", "Duration of poll cycles that polled feeds",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300), registry=r,
        )  # fmt: skip
        self.poll_feeds = Counter("briefbot_poll_feeds", "Feeds polled", registry=r)
        self.items_new = Counter("briefbot_items_new", "New items stored", registry=r)
        self.items_matched = Counter(
            "briefbot_items_matched", "New items that matched the watchlist", registry=r
        )
        self.fetch_errors = Counter(
            "briefbot_fetch_errors", "Failed feed polls by kind", ["kind"], registry=r
        )
        self.deliveries = Counter(
            "briefbot_deliveries", "Delivery attempts by kind and outcome",
            ["kind", "outcome"], registry=r,
        )  # fmt: skip
        self.command_seconds = Histogram(
            "briefbot_command_seconds", "Chat command latency", ["command"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )  # fmt: skip
        self.command_errors = Counter(
            "briefbot_command_errors", "Chat commands that raised", ["command"], registry=r
        )
        self.loop_lag = Histogram(
            "briefbot_event_loop_lag_seconds", "How late the event loop wakes a sleeper",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )  # fmt: skip
        self.last_poll_ts = Gauge(
            "briefbot_last_poll_timestamp_seconds", "Unix time of the last poll tick", registry=r
        )
        self.adapter_up = Gauge(
            "briefbot_adapter_connected", "1 while a chat adapter is connected", ["platform"],
            registry=r,
        )  # fmt: skip
        self.healthy = Gauge("briefbot_healthy", "1 while /healthz answers 200", registry=r)
        self.healthy.set_function(lambda: 1.0 if self.health().ok else 0.0)

    # -- Telemetry ----------------------------------------------------------------------
    def poll_cycle(self, cycle: PollCycle) -> None:
        self.last_poll = self._now()
        self.last_poll_ts.set(self._wall())
        self.poll_cycles.inc()
        if not cycle.feeds:
            return
        self.poll_seconds.observe(cycle.seconds)
        self.poll_feeds.inc(cycle.feeds)
        self.items_new.inc(cycle.new)
        self.items_matched.inc(cycle.matched)
        for error in cycle.errors:
            self.fetch_errors.labels(error_kind(error)).inc()
        event(
            "poll: %d feeds, %d new, %d matched, %d failing, %.1f s",
            cycle.feeds, cycle.new, cycle.matched, cycle.failing, cycle.seconds,
            event="poll", feeds=cycle.feeds, new=cycle.new, matched=cycle.matched,
            failing=cycle.failing, seconds=round(cycle.seconds, 3),
        )  # fmt: skip

    def delivery(self, outcome: DeliveryOutcome) -> None:
        self.deliveries.labels(outcome.kind, outcome.outcome).inc()
        if outcome.outcome != "sent" or outcome.kind != "digest":
            return  # failures are logged by the outbox itself
        name = outcome.channel_name
        where = f"#{name}" if name else f"channel {outcome.channel_id}"
        event(
            "digest: delivered to %s on %s, %d stories, %d messages",
            where, outcome.platform, outcome.stories, outcome.messages,
            event="digest", channel_id=outcome.channel_id, channel=outcome.channel_name,
            platform=outcome.platform, key=outcome.key, stories=outcome.stories,
            items=outcome.items, messages=outcome.messages,
        )  # fmt: skip

    def command(self, name: str, seconds: float, *, ok: bool) -> None:
        self.command_seconds.labels(name).observe(seconds)
        if not ok:
            self.command_errors.labels(name).inc()

    def adapter(self, platform: str, *, connected: bool, detail: str | None = None) -> None:
        old = self.adapters.get(platform)
        if old is None or old.connected != connected:
            self.adapters[platform] = _Adapter(connected, self._now(), detail)
            if old is not None or connected:
                event(
                    "%s: %s%s", platform, "connected" if connected else "disconnected",
                    f" ({detail})" if detail and not connected else "",
                    level=logging.INFO if connected else logging.WARNING,
                    event="adapter", platform=platform, connected=connected, detail=detail,
                )  # fmt: skip
        else:
            old.detail = detail
        self.adapter_up.labels(platform).set(1 if connected else 0)

    # -- health -------------------------------------------------------------------------
    def expect_adapter(self, platform: str) -> None:
        """``platform`` is enabled: /healthz needs it connected (after a grace time)."""
        if platform not in self.adapters:
            self.adapters[platform] = _Adapter(False, self._now(), "starting")
            self.adapter_up.labels(platform).set(0)

    def health(self) -> Health:
        now = self._now()
        reasons: list[str] = []
        age = None if self.last_poll is None else now - self.last_poll
        if age is None:
            waited = now - self.started
            if waited > self.poll_stale:
                reasons.append(f"no poll tick since start ({waited:.0f} s ago)")
        elif age > self.poll_stale:
            reasons.append(f"last poll tick {age:.0f} s ago (limit {self.poll_stale:g} s)")
        for platform, state in sorted(self.adapters.items()):
            if state.connected:
                continue
            down = now - state.since
            if down > self.adapter_stale:
                why = f": {state.detail}" if state.detail else ""
                reasons.append(f"{platform} not connected for {down:.0f} s{why}")
        return Health(
            ok=not reasons,
            reasons=tuple(reasons),
            last_poll_age=age,
            adapters={p: s.connected for p, s in self.adapters.items()},
        )

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    # -- event loop lag -----------------------------------------------------------------
    async def watch_loop_lag(self, every: float = 1.0) -> None:
        """Sample how late the event loop wakes a sleeper, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(every)
            self.loop_lag.observe(max(0.0, loop.time() - start - every))


__all__ = ["ERROR_KINDS", "Health", "Monitor", "error_kind"]
