"""Links: the one place URLs are normalised, on w3lib. Pure string work.

- :func:`canonical_link`: one comparable form of a news URL, shared by feed dedupe
  (``bot.feeds.dedupe``) and story clustering (``bot.core.stories``): normalised
  (scheme/host case, default port, user info, fragment, tracking parameters, parameter
  order, escapes, trailing slash);
- :func:`link_target`: the canonical link without its scheme (http and https count as
  the same page), a leading ``www.``/``m.``/``amp.`` or a trailing ``/amp``; None for a
  site's home page, which identifies no article;
- :func:`printable_link`: the form a link is printed in chat (``bot.core.render.safe_url``):
  http(s) only, nothing that can break out of a Markdown link.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, safe_url_string

#: Query parameters that only track the reader (exact names, compared lower-cased).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "igsh",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "referrer",
        "cmpid",
        "cmp",
        "ocid",
        "ncid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "s_cid",
        "s_kwcid",
        "smid",
        "sr_share",
        "spm",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "__twitter_impression",
        "rss",
        "taid",
        "wt.mc_id",
        "wt.mc_ev",
        "campaign_id",
        "ito",
    }
)
#: Query parameter prefixes that only track the reader.
TRACKING_PREFIXES = ("utm_", "ns_", "at_", "pk_", "mtm_", "hmb_", "wt.", "__s")

Scheme = Literal["http", "https"]
_SCHEMES: dict[str, Scheme] = {"http": "http", "https": "https"}
_DEFAULT_PORTS: dict[Scheme, int] = {"http": 80, "https": 443}
_SAME_SITE_PREFIXES = ("www.", "m.", "amp.")
_SLASHES = re.compile(r"/{2,}")
_PRINTABLE_HOST = re.compile(r"[A-Za-z0-9.\-:]+")
#: Characters left as they are in a printable link; every other one is percent-encoded,
#: so that a link cannot break out of Markdown's ``[title](<url>)`` (no ``( ) < >``,
#: spaces, quotes or backslashes).
_PRINT_SAFE = "/%:@!$&'*+,;=-._~"
_PRINT_SAFE_QUERY = _PRINT_SAFE + "?"
#: The longest link printed.
MAX_PRINTED_URL = 2000


def is_tracking_param(name: str, extra: Collection[str] = ()) -> bool:
    """Whether query parameter ``name`` only tracks the reader; ``extra`` adds exact
    lower-case names for a caller that may drop more."""
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES) or low in extra


@dataclass(frozen=True, slots=True)
class _HttpURL:
    """An absolute http(s) URL taken apart: scheme lower-cased, host as written in the
    URL's authority (IDNA or not), without user info."""

    scheme: Scheme
    host: str
    port: int | None
    path: str
    query: str
    fragment: str

    def netloc(self, *, default_port: bool) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is None or (not default_port and self.port == _DEFAULT_PORTS[self.scheme]):
            return host
        return f"{host}:{self.port}"


def _http_url(url: str | None) -> _HttpURL | None:
    """``url`` split, or None unless it is an absolute http(s) URL with a host and a
    valid port. Surrounding space is ignored."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = _SCHEMES.get(parts.scheme.lower())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal
        return None
    if scheme is None or not host:
        return None
    return _HttpURL(scheme, host, port, parts.path, parts.query, parts.fragment)


def _without_tracking(query: str, drop_params: Collection[str]) -> str:
    """The raw query minus its empty and tracking parameters (names compared decoded)."""
    return "&".join(
        pair
        for pair in query.split("&")
        if pair and not is_tracking_param(unquote_plus(pair.partition("=")[0]), drop_params)
    )


def canonical_link(url: str | None, *, drop_params: Collection[str] = ()) -> str | None:
    """``url`` normalised for comparison, or None if it is not an absolute http(s) URL.

    w3lib's :func:`~w3lib.url.canonicalize_url` (scheme and host lower-cased, IDNA host,
    fragment dropped, parameters sorted, escapes normalised: ``%7e`` is ``~``, ``%2f`` is
    ``%2F``, non-ASCII percent-encoded, dot segments resolved), after dropping the user
    info, the default port, a trailing dot of the host and the tracking parameters
    (utm_*, fbclid, ... and the lower-case names in ``drop_params``); then a trailing
    slash goes, except the root's (``/a/b/`` and ``/a/b`` are one page on every news
    site; the root stays ``/``)."""
    parts = _http_url(url)
    if parts is None:
        return None
    host = parts.host.rstrip(".")
    if not host:
        return None
    parts = replace(parts, host=host, query=_without_tracking(parts.query, drop_params))
    raw = urlunsplit((parts.scheme, parts.netloc(default_port=False), parts.path, parts.query, ""))
    try:
        canon = canonicalize_url(raw, keep_blank_values=True)
    except (ValueError, UnicodeError):  # a host IDNA cannot encode
        return None
    head, _, query = canon.partition("?")
    path_at = head.find("/", len(parts.scheme) + 3)  # w3lib always gives a path
    path = head[path_at:]
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    # w3lib reads a backslash as a slash: the host can end in a dot again
    # ("http://www.\\x" is "http://www./x"); without it, canonical_link is idempotent
    origin = head[:path_at].rstrip(".")
    return origin + path + (f"?{query}" if query else "")


def printable_link(url: str | None) -> str | None:
    """The URL if it is a link fit to print, else None (``javascript:``, ``data:``,
    relative, control characters, a host that is no host name, longer than
    :data:`MAX_PRINTED_URL`).

    w3lib's :func:`~w3lib.url.safe_url_string` (IDNA host, non-ASCII and unsafe
    characters percent-encoded), scheme and host lower-cased, user info dropped, and
    every character that could end a Markdown link (``(``, ``)``, ``<``, ``>``, spaces,
    quotes) percent-encoded. Path, query and fragment are kept as they are otherwise:
    this is the link a reader follows, not a comparison key."""
    if not url or any(ord(c) < 32 or ord(c) == 127 for c in url.strip()):
        return None
    parts = _http_url(url)
    if parts is None:
        return None
    raw = urlunsplit(
        (parts.scheme, parts.netloc(default_port=True), parts.path, parts.query, parts.fragment)
    )
    try:
        safe = urlsplit(safe_url_string(raw))
        host = safe.hostname or ""
    except (ValueError, UnicodeError):
        return None
    if not _PRINTABLE_HOST.fullmatch(host):
        return None
    out = urlunsplit(
        (
            parts.scheme,
            safe.netloc.lower(),
            quote(safe.path, safe=_PRINT_SAFE),
            quote(safe.query, safe=_PRINT_SAFE_QUERY),
            quote(safe.fragment, safe=_PRINT_SAFE_QUERY),
        )
    )
    return out if len(out) <= MAX_PRINTED_URL else None


def link_target(url: str | None, *, drop_params: Collection[str] = ()) -> str | None:
    """``host/path?query`` of :func:`canonical_link` (``drop_params`` passed on), without
    the scheme, a leading ``www.``/``m.``/``amp.`` (mobile and AMP copies are the same
    page; only when a registered domain remains: ``m.example`` stays) or a trailing
    ``/amp``, with repeated slashes collapsed. None when the URL cannot identify an
    article: no http(s) URL, or a site's home page with no query, which some feeds give
    every item."""
    canon = canonical_link(url, drop_params=drop_params)
    return None if canon is None else target_of_canonical(canon)


def target_of_canonical(canon: str) -> str | None:
    """:func:`link_target` of a link already through :func:`canonical_link` (which is
    not run again: the parser workers give every item its canonical link)."""
    host, _, path = canon.split("://", 1)[1].partition("/")
    for prefix in _SAME_SITE_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    path, _, query = path.partition("?")
    path = _SLASHES.sub("/", path).lstrip("/")
    if path == "amp" or path.endswith("/amp"):
        path = path[:-3].rstrip("/")
    if not path and not query:  # the bare root: not an article
        return None
    return f"{host}/{path}" + (f"?{query}" if query else "")
