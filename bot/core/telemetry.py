"""The telemetry port: what the poller, the outbox and the adapters report as they run.

The core and the pipeline call a :class:`Telemetry`; they never import a metrics or
logging backend. ``briefbot run`` plugs in the operator's monitor (``bot.ops``: the
per-cycle log lines, Prometheus counters, the health state); everything else gets
:data:`NULL_TELEMETRY`, which does nothing. Every hook is synchronous and cheap, and an
implementation must never raise (a broken metrics backend must not stop a poll).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PollCycle:
    """One poll cycle (a scheduler tick; ``feeds`` is 0 when none was due)."""

    feeds: int
    new: int
    matched: int
    failing: int
    seconds: float
    #: the one-line error of each feed that failed in this cycle
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One attempt to deliver a digest or an alert.

    ``outcome``: ``sent`` (confirmed), ``retry`` (transient failure, will be retried),
    ``failed`` (given up after too many attempts) or ``refused`` (the platform refused
    for good; the channel is paused)."""

    kind: str
    outcome: str
    channel_id: int
    platform: str
    key: str
    channel_name: str | None = None
    messages: int = 0
    stories: int = 0
    items: int = 0
    error: str | None = None


class Telemetry(Protocol):
    def poll_cycle(self, cycle: PollCycle) -> None:
        """A poll cycle ended (also one that found no feed due)."""
        ...

    def delivery(self, outcome: DeliveryOutcome) -> None:
        """A delivery attempt ended."""
        ...

    def command(self, name: str, seconds: float, *, ok: bool) -> None:
        """A chat command was answered (``ok`` False: it raised)."""
        ...

    def adapter(self, platform: str, *, connected: bool, detail: str | None = None) -> None:
        """A chat platform connection came up or went down (``detail``: why)."""
        ...


class NullTelemetry:
    """Reports nothing (the default everywhere but ``briefbot run``)."""

    def poll_cycle(self, cycle: PollCycle) -> None:
        return None

    def delivery(self, outcome: DeliveryOutcome) -> None:
        return None

    def command(self, name: str, seconds: float, *, ok: bool) -> None:
        return None

    def adapter(self, platform: str, *, connected: bool, detail: str | None = None) -> None:
        return None


NULL_TELEMETRY: Telemetry = NullTelemetry()

__all__ = ["NULL_TELEMETRY", "DeliveryOutcome", "NullTelemetry", "PollCycle", "Telemetry"]
