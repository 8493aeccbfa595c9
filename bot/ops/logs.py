"""Logging set-up for every command: plain text for a terminal, JSON lines for shippers.

``briefbot run`` logs one line per poll cycle and per digest delivered even without
``-v``: those lines come from the :data:`EVENTS` logger, which stays at INFO whatever
the verbosity (``-v`` shows the other INFO lines, ``-vv`` debug).

``--log-format json`` writes one JSON object per line: ``ts`` (ISO 8601 UTC),
``level``, ``logger``, ``msg``, the event's own fields (``event``, ``feeds``,
``new``...) and ``exc`` when a traceback was logged.

discord.py's start-up warnings that do not apply to Briefbot are dropped: voice support
(PyNaCl, davey: Briefbot never joins voice) and privileged intents (it asks for none).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

#: the operator's event lines (poll cycles, digests, connection changes)
EVENTS = "briefbot.events"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: discord.py warnings that say nothing about Briefbot
_DISCORD_NOISE = (
    "voice will NOT be supported",
    "intent is missing",
    "intent seems to be disabled",
)


class DiscordNoiseFilter(logging.Filter):
    """Drops discord.py's voice and intent warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("discord"):
            return True
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: let the handler report it
            return True
        return not any(noise in text for noise in _DISCORD_NOISE)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler[IO[str]]):
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


def setup_logging(
    verbosity: int = 0,
    log_format: str = "text",
    *,
    stream: IO[str] | None = None,
    force: bool = False,
) -> logging.Handler | None:
    """Configure the root logger, like :func:`logging.basicConfig`: nothing happens when
    the root logger already has handlers that Briefbot did not install (an embedding
    application, pytest), unless ``force``. A second call replaces the first's handler
    (``run --log-format json`` after the default set-up)."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_briefbot", False)]
    if not force and len(ours) != len(root.handlers):
        return None
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler: logging.StreamHandler[Any] = (
        _StderrHandler() if stream is None else logging.StreamHandler(stream)
    )
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(DiscordNoiseFilter())
    for old in ours:
        root.removeHandler(old)
    handler._briefbot = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(EVENTS).setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    return handler


def event(message: str, /, *args: object, level: int = logging.INFO, **fields: Any) -> None:
    """Log one operator event line; ``fields`` become the JSON line's keys."""
    logging.getLogger(EVENTS).log(level, message, *args, extra={"fields": fields})


__all__ = ["EVENTS", "LOG_FORMATS", "DiscordNoiseFilter", "JsonFormatter", "event", "setup_logging"]
