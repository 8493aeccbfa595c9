"""The port the feed use cases (``/feeds add``, ``/feeds import``) call to check a feed
URL before it is stored, and the pure URL rules they apply first.

:class:`FeedProber` is implemented at the edge by :class:`bot.feeds.probe.FeedProbe`
(SSRF guard, one fetch, a parse in the parser pool); the core only knows this Protocol.
Every refusal is an :class:`~bot.errors.InputError` whose text starts ``"Not added: "``
(``/feeds import`` shows the rest of it per feed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from yarl import URL

from bot.core.models import FeedSource
from bot.errors import InputError

#: the prefix of every refusal (``/feeds import`` strips it)
NOT_ADDED = "Not added: "

_BARE_HOST = re.compile(r"^[\w.-]+\.[a-z]{2,}(?:[:/]|$)", re.I)


@dataclass(frozen=True, slots=True)
class ProbedFeed:
    """A URL that answered with a readable feed."""

    #: what to store: the URL (the new address after a permanent redirect) and a name
    #: (the one asked for, else the feed's title, else the host), plain text, <= 100
    source: FeedSource
    #: entries in the document now
    items: int


class FeedProber(Protocol):
    """Checks that a URL is a feed Briefbot may add from chat."""

    async def probe(self, url: str, name: str | None = None) -> ProbedFeed:
        """Guard and fetch ``url`` once, and parse what it sends.

        Raises :class:`~bot.errors.InputError` (``"Not added: ..."``) when the URL
        holds a user name or password, the SSRF guard refuses it (or one of its
        redirects), the fetch fails, the server sends no content, or the document is
        not a feed."""
        ...


def with_scheme(url: str) -> str:
    """``example.com/feed`` -> ``https://example.com/feed``; anything else unchanged."""
    if "://" not in url and _BARE_HOST.match(url):
        return "https://" + url
    return url


def refuse_credentials(url: str) -> None:
    """A feed URL with a user name or password would show them in /feeds list, in OPML
    exports and in logs: refused, with the reason."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return  # not a URL at all: the guard says why
    if parsed.user is not None or parsed.password is not None:
        raise InputError(
            NOT_ADDED + "feed URLs with a user name or password (user:password@host) are "
            "refused: everyone in the channel would see them in /feeds list and exports."
        )


def not_a_feed(reason: str) -> str:
    """A parse failure as the end of ``"<url> is ..."``."""
    reason = reason.strip()
    return reason if reason.lower().startswith("not a feed") else f"not a readable feed: {reason}"
