"""pydantic's validation errors as one line: the file, the key and the problem.

The one formatter for every config file and setting (``briefbot.toml`` and the
environment, ``feeds.toml``, watchlists): 1-based list positions, TOML-style keys, no
pydantic prefixes. Pure: it formats errors, it reads nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from bot.errors import ConfigError


def error_location(loc: Sequence[int | str]) -> str:
    """pydantic's error location as a TOML-style key, list positions 1-based:
    ``entry[3].aliases[2]``, ``feed[1].url``, ``poll.interval_minutes``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _problem(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def format_errors(errors: Sequence[Mapping[str, Any]], source: str | None) -> ConfigError:
    """One line from pydantic's error details (at least one): the key and problem of
    the first, and where the others are."""
    first = errors[0]
    more = ""
    if len(errors) > 1:
        others = list(dict.fromkeys(error_location(e["loc"]) for e in errors[1:]))
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        n = len(errors) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''}: {shown})"
    return ConfigError(_problem(first) + more, source=source, key=error_location(first["loc"]))


def format_validation_error(err: ValidationError, source: str | None) -> ConfigError:
    """One line from pydantic's error: the file, the key and the first problem, and
    where the others are."""
    errors = err.errors()
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return ConfigError(str(err), source=source)
    return format_errors(errors, source)


__all__ = ["error_location", "format_errors", "format_validation_error"]
