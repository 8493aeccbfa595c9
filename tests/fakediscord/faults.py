"""Scripted REST answers: rate limits, server errors, Discord's JSON error codes.

Each builder returns a :class:`Scripted` answer that :meth:`FakeDiscord.script`
queues for a route. The shapes follow what Discord sends:

* 429: JSON ``{"message", "retry_after" (float s), "global"}`` (``code`` 0 on some
  routes), headers ``Retry-After`` (whole seconds, rounded up), ``X-RateLimit-Limit``,
  ``-Remaining: 0``, ``-Reset`` (epoch s), ``-Reset-After``, ``-Bucket``,
  ``X-RateLimit-Scope`` (``user`` / ``shared`` / ``global``), ``X-RateLimit-Global`` on a
  global limit, and ``Via: 1.1 google`` (discord.py treats a 429 *without* ``Via`` as a
  Cloudflare ban and raises instead of retrying).
* 500: JSON ``{"message": "500: Internal Server Error", "code": 0}``;
  502/504 come from the edge as an HTML page (``text/html``), not JSON.
* a dropped connection (:func:`connection_dropped`): no answer at all, the TCP
  connection is cut; with ``after_handling`` Discord did the work first (the message
  exists, only the answer was lost), the case a nonce exists for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scripted:
    status: int
    json: Any = None
    text: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    #: for 429s: fill the X-RateLimit-* headers from the route's bucket at answer time
    retry_after: float | None = None
    scope: str | None = None
    is_global: bool = False
    #: seconds to wait before answering (a slow Discord)
    delay: float = 0.0
    #: run the route's real handler (rate limits included) instead of answering with this
    handle: bool = False
    #: cut the TCP connection instead of sending the answer
    drop: bool = False


def rate_limited(
    retry_after: float = 0.2, *, is_global: bool = False, scope: str | None = None
) -> Scripted:
    """A 429. ``scope`` defaults to ``global`` for a global limit, else ``user``."""
    scope = scope or ("global" if is_global else "user")
    body: dict[str, Any] = {
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": is_global,
    }
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
    return Scripted(
        429, json=body, headers=headers, retry_after=retry_after, scope=scope, is_global=is_global
    )


def server_error(status: int = 500) -> Scripted:
    if status == 500:
        return Scripted(500, json={"message": "500: Internal Server Error", "code": 0})
    reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}.get(
        status, "Error"
    )
    page = f"<html><head><title>{status} {reason}</title></head><body>{reason}</body></html>"
    return Scripted(status, text=page, content_type="text/html")


def connection_dropped(*, after_handling: bool = True) -> Scripted:
    """The connection drops before the client gets an answer. ``after_handling``: the
    request was handled first (e.g. the message was created) and only the response is
    lost; otherwise nothing happened on Discord's side. The recorded request has
    ``dropped=True`` and the status the handler answered (0 if not handled)."""
    return Scripted(0, handle=after_handling, drop=True)


def error(status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> Scripted:
    body: dict[str, Any] = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return Scripted(status, json=body)


def missing_permissions() -> Scripted:
    return error(403, 50013, "Missing Permissions")


def missing_access() -> Scripted:
    return error(403, 50001, "Missing Access")


def unknown_channel() -> Scripted:
    return error(404, 10003, "Unknown Channel")


def unknown_message() -> Scripted:
    return error(404, 10008, "Unknown Message")


def unknown_interaction() -> Scripted:
    return error(404, 10062, "Unknown interaction")


def unauthorized() -> Scripted:
    return error(401, 0, "401: Unauthorized")
