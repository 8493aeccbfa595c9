"""``/search`` beyond one full-text query: a query that names a watchlist entry also
finds the entry's other aliases ("Wang Yi" finds 王毅), and results come in pages.

Each form (the query as typed, then each alias as a phrase) is one storage search; the
results are merged by their score relative to the best hit of their own search (ranks
of different searches, FTS and substring, are not comparable), each story once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.ports import SearchHit, Storage
from bot.core.usecases.channels import ChannelWatchlist
from bot.core.watchlist import Entry

PAGE_SIZE = 10
#: the most alias forms searched for one entry
MAX_FORMS = 12
#: the most hits storage returns for one search
STORAGE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    #: more results after this page
    more: bool
    #: the entry whose aliases were searched too, and those aliases
    entry: Entry | None = None
    forms: tuple[str, ...] = ()


def _unquoted(query: str) -> str:
    return " ".join(query.replace('"', " ").split()).casefold()


def named_entry(view: ChannelWatchlist, query: str) -> Entry | None:
    """The channel's entry the whole query names: its id, name or one of its aliases
    (case-insensitive; quotes ignored)."""
    folded = _unquoted(query)
    if not folded:
        return None
    for e in view.watchlist.entries:
        if e.id == folded or e.name.casefold() == folded:
            return e
    for e in view.watchlist.entries:
        if any(not a.is_ref and a.text.casefold() == folded for a in e.aliases):
            return e
    return None


def alias_forms(entry: Entry, query: str) -> list[str]:
    """The entry's other aliases as phrases to search for (not the query's own form).
    An alias that names the entry only with context ("Wang" near "foreign minister")
    is left out: alone, it would find every Wang."""
    seen = {_unquoted(query)}
    out: list[str] = []
    if entry.context:
        return out
    texts = [a.text for a in entry.aliases if not a.is_ref and not a.context]
    for text in (entry.name, *texts):
        key = text.casefold()
        if key in seen or not any(ch.isalnum() for ch in text):
            continue
        seen.add(key)
        out.append('"' + text.replace('"', " ") + '"')
        if len(out) >= MAX_FORMS:
            break
    return out


def merge_hits(results: Sequence[Sequence[SearchHit]]) -> list[SearchHit]:
    """Hits of several searches, each story once, by its best score relative to the
    top hit of the search that found it; then newest first."""
    best: dict[int, tuple[float, SearchHit]] = {}
    for hits in results:
        if not hits:
            continue
        top = max(h.rank for h in hits)
        for h in hits:
            score = h.rank / top if top > 0 else 1.0
            old = best.get(h.stored.id)
            if old is None or score > old[0]:
                best[h.stored.id] = (score, h)
    ordered = sorted(
        best.values(),
        key=lambda x: (-round(x[0], 6), -x[1].stored.when.timestamp(), -x[1].stored.id),
    )
    return [h for _, h in ordered]


async def search_page(
    storage: Storage,
    view: ChannelWatchlist,
    query: str,
    *,
    channel_id: int,
    since: datetime | None,
    fetched_since: datetime | None,
    page: int = 1,
) -> SearchPage:
    """One page of ``/search`` results (the query, and the aliases of the entry it
    names)."""
    offset = (page - 1) * PAGE_SIZE
    limit = min(STORAGE_LIMIT, offset + PAGE_SIZE + 1)
    entry = named_entry(view, query)
    forms = alias_forms(entry, query) if entry is not None else []

    async def run(q: str) -> list[SearchHit]:
        return await storage.search(
            q, since=since, fetched_since=fetched_since, limit=limit, channel_id=channel_id
        )

    first = await run(query)
    if not forms:
        merged = first
    else:
        merged = merge_hits([first, *[await run(f) for f in forms]])
    return SearchPage(
        hits=merged[offset : offset + PAGE_SIZE],
        more=len(merged) > offset + PAGE_SIZE,
        entry=entry if forms else None,
        forms=tuple(f.strip('"') for f in forms),
    )


__all__ = ["PAGE_SIZE", "SearchPage", "alias_forms", "merge_hits", "named_entry", "search_page"]
