"""Small builders for Item / StoredItem / MatchedItem / Digest in tests of the stories,
digest and render modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.digest import Digest, build_digest
from bot.core.models import EntryKind, Field, Item, Match, StoredItem
from bot.core.ports import MatchedItem

T0 = datetime(2023, 11, 14, 0, 0, tzinfo=UTC)
#: the default digest period: Tue 14 Nov 07:00 to Wed 15 Nov 07:00 in Shanghai
START = T0 - timedelta(hours=1)
END = T0 + timedelta(hours=23)


@dataclass(frozen=True)
class E:
    """A watchlist entry as the digest needs it (satisfies digest.EntryInfo)."""

    id: str
    kind: EntryKind
    name: str


def entries(*items: E) -> dict[str, E]:
    return {e.id: e for e in items}


def mi(
    id: int,
    title: str,
    *,
    summary: str = "",
    source: str = "Reuters",
    link: str | None = None,
    canonical: str | None = None,
    at: datetime | timedelta | None = None,
    hits: tuple[tuple[str, str, str], ...] | list[tuple[str, str, str]] = (),
    feed_id: int = 1,
) -> MatchedItem:
    """A matched item. ``at``: a datetime, or an offset from T0 (default: ``id`` minutes).
    ``hits``: (entry_id, alias, "title" | "summary")."""
    if at is None:
        when = T0 + timedelta(minutes=id)
    elif isinstance(at, timedelta):
        when = T0 + at
    else:
        when = at
    if link is None:
        link = f"https://{source.lower().replace(' ', '')}.example/{id}"
    item = Item(
        guid=f"g{id}",
        title=title,
        summary=summary,
        link=link,
        canonical_link=canonical if canonical is not None else link,
        published=when,
        feed_url=f"https://{source.lower().replace(' ', '')}.example/feed",
        source=source,
    )
    stored = StoredItem(id=id, feed_id=feed_id, item=item, fetched_at=when + timedelta(minutes=3))
    return MatchedItem(
        stored=stored, matches=tuple(Match(e, alias, Field(f)) for e, alias, f in hits)
    )


def digest_of(items: Sequence[MatchedItem], entries: Mapping[str, E], **kw: Any) -> Digest:
    """``build_digest`` over START..END in Asia/Shanghai, grouped by entry, at most 40
    stories, no failed feeds; ``kw`` overrides any of these."""
    args: dict[str, Any] = {
        "entries": entries,
        "period_start": START,
        "period_end": END,
        "tz": "Asia/Shanghai",
        "failed_feeds": (),
        "group_by": "entry",
        "max_stories": 40,
        "now": END,
    }
    args.update(kw)
    return build_digest(items, **args)


async def seed_app(
    app: Any,
    titles: Sequence[str],
    *,
    now: datetime,
    feed_url: str,
    source: str,
    ago: timedelta,
    summary: str = "",
) -> list[Any]:
    """Store items in ``app``'s storage as the poller would (fetched ``ago`` before
    ``now``), with the app's watchlist matches: what the chat-adapter tests brief."""
    from bot.core.matching import compile_watchlist
    from bot.core.watchlist import slugify
    from bot.feeds.dedupe import keys_for_batch

    storage = app.storage
    fid = next(f.id for f in await storage.all_feeds() if f.url == feed_url)
    when = now - ago
    items = []
    for i, t in enumerate(titles):
        link = f"{feed_url.removesuffix('/rss')}/{slugify(t)[:60] or 'item'}-{i}"
        items.append(
            Item(
                guid=link,
                title=t,
                summary=summary,
                link=link,
                canonical_link=link,
                published=when,
                feed_url=feed_url,
                source=source,
            )
        )
    stored = await storage.insert_items(fid, keys_for_batch(items), fetched_at=when)
    matcher = compile_watchlist(app.config.watchlist)
    for s in stored:
        found = matcher.match(s.item.title, s.item.summary)
        if found:
            await storage.add_matches(s.id, found, scope=None)
    return list(stored)
