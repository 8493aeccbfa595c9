"""Duplicate detection: canonical links and the keys an item is stored under.

Storage inserts an item unless *any* of its keys is already stored, so one story that
reaches us twice (the same feed again, another feed of the same outlet, an aggregator
linking the original with ``?utm_source=...``) is stored once.

The URL canonicalisation itself lives in :mod:`bot.core.links` (re-exported here).

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

from bot.core.links import (
    TRACKING_PARAMS,
    TRACKING_PREFIXES,
    canonical_link,
    is_tracking_param,
    link_target,
    target_of_canonical,
)
from bot.core.models import Item

__all__ = [
    "TRACKING_PARAMS",
    "TRACKING_PREFIXES",
    "canonical_link",
    "dedupe_keys",
    "guid_key",
    "is_tracking_param",
    "keys_for_batch",
    "link_key",
]

#: guids that name an item globally rather than within one feed
_GLOBAL_GUID = re.compile(r"(?i)^(https?://[^/\s]+|urn:[a-z0-9][a-z0-9-]*:\S|tag:\S+,\S)")


def link_key(url: str | None) -> str | None:
    """The ``link:`` dedupe key of ``url``: ``link:`` + :func:`bot.core.links.link_target`
    (canonical form without the scheme, a leading ``www.``/``m.``/``amp.`` or a trailing
    ``/amp``); None when the URL cannot identify an article (no URL, or a site's home
    page with no query, which some feeds give every item)."""
    target = link_target(url)
    return None if target is None else f"link:{target}"


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
    if item.canonical_link:  # as the parser made it: not canonicalised twice
        target = target_of_canonical(item.canonical_link)
        lk = None if target is None else f"link:{target}"
    else:
        lk = link_key(item.link)
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
