"""Link canonicalisation: one comparable form of a news URL, shared by feed dedupe
(``bot.feeds.dedupe``) and story clustering (``bot.core.stories``). Pure string work.

- :func:`canonical_link`: the URL normalised (scheme/host case, default port, user info,
  fragment, tracking parameters, parameter order, escapes, trailing slash);
- :func:`link_target`: the canonical link without its scheme (http and https count as
  the same page), a leading ``www.``/``m.``/``amp.`` or a trailing ``/amp``; None for a
  site's home page, which identifies no article.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

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

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAME_SITE_PREFIXES = ("www.", "m.", "amp.")
_SLASHES = re.compile(r"/{2,}")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_PATH_SAFE = "/%!$&'()*+,;=:@~-._"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def is_tracking_param(name: str, extra: Collection[str] = ()) -> bool:
    """Whether query parameter ``name`` only tracks the reader; ``extra`` adds exact
    lower-case names for a caller that may drop more."""
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES) or low in extra


def _normalise_escapes(part: str) -> str:
    """Decode escapes of unreserved characters, upper-case the hex of the others, so
    ``%7e`` and ``~`` or ``%2f`` and ``%2F`` compare equal."""

    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(0)[1:], 16))
        return char if char in _UNRESERVED else m.group(0).upper()

    return _PCT.sub(fix, part)


def canonical_link(url: str | None, *, drop_params: Collection[str] = ()) -> str | None:
    """``url`` normalised for comparison, or None if it is not an absolute http(s) URL.

    Lower-cases scheme and host, drops the default port, user info and fragment,
    removes tracking parameters (utm_*, fbclid, ... and the lower-case names in
    ``drop_params``), sorts the remaining ones, and drops a trailing slash except the
    root's (``/a/b/`` and ``/a/b`` are one page on every news site; the root stays ``/``)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            return None
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # a bad port or IPv6 literal
        return None
    if not host:
        return None
    try:
        host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host
    except UnicodeError:
        host = host.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"

    # non-ASCII characters percent-encoded, escapes of unreserved characters decoded
    path = _normalise_escapes(quote(parts.path, safe=_PATH_SAFE)) or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"

    query = ""
    if parts.query:
        pairs = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not is_tracking_param(k, drop_params)
        ]
        pairs.sort()
        query = urlencode(pairs, quote_via=quote, safe="/:@!$'()*,;")
    return urlunsplit((scheme, netloc, path, query, ""))


def link_target(url: str | None, *, drop_params: Collection[str] = ()) -> str | None:
    """``host/path?query`` of :func:`canonical_link` (``drop_params`` passed on), without
    the scheme, a leading ``www.``/``m.``/``amp.`` (mobile and AMP copies are the same
    page; only when a registered domain remains: ``m.example`` stays) or a trailing
    ``/amp``, with repeated slashes collapsed. None when the URL cannot identify an
    article: no http(s) URL, or a site's home page with no query, which some feeds give
    every item."""
    canon = canonical_link(url, drop_params=drop_params)
    if canon is None:
        return None
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
