"""Duplicate detection: canonical links and the keys an item is stored under.

Storage inserts an item unless *any* of its keys is already stored, so one story that
reaches us twice (the same feed again, another feed of the same outlet, an aggregator
linking the original with ``?utm_source=...``) is stored once.

Keys:

- ``link:<host/path?query>``: the canonical link without its scheme (http and https
  count as the same page) and without a leading ``www.``;
- ``guid:<guid>`` when the guid names the item globally (a URL, ``urn:``, ``tag:``),
  else ``guid:<feed_url>#<guid>``: a bare ``"1"`` from two feeds must not collide.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from bot.core.models import Item

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
#: guids that name an item globally rather than within one feed
_GLOBAL_GUID = re.compile(r"(?i)^(https?://[^/\s]+|urn:[a-z0-9][a-z0-9-]*:\S|tag:\S+,\S)")


def is_tracking_param(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def _normalise_escapes(part: str) -> str:
    """Decode escapes of unreserved characters, upper-case the hex of the others, so
    ``%7e`` and ``~`` or ``%2f`` and ``%2F`` compare equal."""

    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(0)[1:], 16))
        return char if char in _UNRESERVED else m.group(0).upper()

    return _PCT.sub(fix, part)


def canonical_link(url: str | None) -> str | None:
    """``url`` normalised for comparison, or None if it is not an absolute http(s) URL.

    Lower-cases scheme and host, drops the default port, user info and fragment,
    removes tracking parameters (utm_*, fbclid, ...), sorts the remaining ones, and
    drops a trailing slash except the root's (``/a/b/`` and ``/a/b`` are one page on
    every news site; the root stays ``/``)."""
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
            if not is_tracking_param(k)
        ]
        pairs.sort()
        query = urlencode(pairs, quote_via=quote, safe="/:@!$'()*,;")
    return urlunsplit((scheme, netloc, path, query, ""))


def link_key(url: str | None) -> str | None:
    """The ``link:`` dedupe key of ``url``: its canonical form without the scheme, a
    leading ``www.``/``m.``/``amp.`` or a trailing ``/amp``; None when the URL cannot
    identify an article (no URL, or a site's home page with no query, which some feeds
    give every item)."""
    canon = canonical_link(url)
    if canon is None:
        return None
    host, _, path = canon.split("://", 1)[1].partition("/")
    for prefix in _SAME_SITE_PREFIXES:  # www., mobile and AMP copies are the same page
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix) :]
            break
    path, _, query = path.partition("?")
    path = _SLASHES.sub("/", path).lstrip("/")
    if path == "amp" or path.endswith("/amp"):
        path = path[:-3].rstrip("/")
    if not path and not query:  # the bare root: not an article
        return None
    return f"link:{host}/{path}" + (f"?{query}" if query else "")


def guid_key(item: Item) -> str:
    guid = item.guid.strip()
    if _GLOBAL_GUID.match(guid):
        if not guid.lower().startswith(("http://", "https://")):
            return f"guid:{guid}"
        key = link_key(guid)
        if key is not None:  # else a site's home page: only meaningful within the feed
            return "guid:" + key[len("link:") :]
    return f"guid:{item.feed_url}#{guid}"


def dedupe_keys(item: Item) -> list[str]:
    """Every key ``item`` is known by: its link key (if any) and its guid key."""
    keys = []
    lk = link_key(item.canonical_link or item.link)
    if lk is not None:
        keys.append(lk)
    gk = guid_key(item)
    if gk not in keys:
        keys.append(gk)
    return keys


def keys_for_batch(items: Sequence[Item]) -> list[tuple[Item, list[str]]]:
    """Keys for the items of one fetched feed. A link shared by items with different
    guids in the same document (a feed that links every entry to one page, a live
    blog) does not identify an item, so it is not used as a key for them; their
    guids still are."""
    keys = [dedupe_keys(item) for item in items]
    guids_by_link: dict[str, set[str]] = defaultdict(set)
    for item, item_keys in zip(items, keys, strict=True):
        for k in item_keys:
            if k.startswith("link:"):
                guids_by_link[k].add(item.guid)
    shared = {k for k, guids in guids_by_link.items() if len(guids) > 1}
    out = []
    for item, item_keys in zip(items, keys, strict=True):
        kept = [k for k in item_keys if k not in shared]
        out.append((item, kept or item_keys))
    return out
