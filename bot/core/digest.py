"""The digest model: what a digest, a brief or an instant alert says, platform-neutral.

:func:`build_digest` turns a channel's matched items for a period into a :class:`Digest`:
items are clustered into stories (:mod:`bot.core.stories`), ranked, capped at
``max_stories`` (the best ones are kept; ``truncated`` says how many more there were),
then laid out:

- ``group_by="entry"``: one :class:`DigestGroup` per tracked entry, actors first then
  topics, each kind ordered by its top story's rank. A story matching several entries
  appears ONCE, under its strongest entry (:meth:`Story.strength`); the other entries
  are its tags.
- ``group_by="story"``: one unlabelled group, the ranked list; every entry is a tag.

Everything is a frozen dataclass (tuples, NamedTuples) of plain values, so a digest is
rendered the same by every platform and survives a restart: :meth:`Digest.to_payload` /
:meth:`Digest.from_payload` go through JSON (the delivery log) without loss.

Times are stored in UTC; the channel's IANA timezone is kept beside them and the time
helpers here (used by every renderer) show them locally.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from bot.core.models import EntryKind, FeedHealth, Field, Match
from bot.core.ports import MatchedItem
from bot.core.ranking import rank
from bot.core.safety import safe_url
from bot.core.stories import Story, cluster
from bot.core.text import plain, truncate
from bot.core.timeparse import zone
from bot.errors import InputError, StorageError

PAYLOAD_VERSION = 1
KINDS = ("digest", "brief", "alert")
GROUP_BY = ("entry", "story")
DEFAULT_TITLES = {"digest": "Digest", "brief": "Brief", "alert": "Alert"}
TITLE_MAX = 300
SUMMARY_MAX = 280


class EntryInfo(Protocol):
    """What the digest needs of a watchlist entry (``bot.core.watchlist.Entry`` fits)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> EntryKind: ...

    @property
    def name(self) -> str: ...


class EntryTag(NamedTuple):
    entry_id: str
    name: str


class Why(NamedTuple):
    """Why a story is in the digest: entry ``name`` matched ``alias`` in ``field``."""

    entry_id: str
    name: str
    alias: str
    field: Field


class FailedFeed(NamedTuple):
    name: str
    error: str


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One story as shown: the headline item's title, time and link."""

    story_id: int
    title: str  # plain text (untrusted: renderers escape it)
    outlets: tuple[str, ...]  # the headline's outlet first, then by first publication
    time: datetime  # the headline item's time, aware UTC
    link: str | None  # an http(s) URL or None
    tags: tuple[EntryTag, ...]  # entries other than the group's (all, in story mode)
    why: tuple[Why, ...]  # one per entry: the group's entry first, then by strength
    item_count: int = 1
    summary: str = ""  # plain text, short; "" when it only repeats the title


@dataclass(frozen=True, slots=True)
class DigestGroup:
    label: str | None  # the entry's name; None in story mode
    entry_id: str | None
    kind: EntryKind | None
    stories: tuple[StoryLine, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    kind: str  # "digest" | "brief" | "alert"
    title: str
    timezone: str  # IANA name, the channel's
    period_start: datetime  # aware UTC
    period_end: datetime  # aware UTC
    generated_at: datetime  # aware UTC
    groups: tuple[DigestGroup, ...]
    story_count: int  # stories found in the period (shown + truncated)
    item_count: int  # items in those stories
    failed_feeds: tuple[FailedFeed, ...] = ()
    truncated: int = 0  # stories left out over max_stories
    group_by: str = "entry"
    max_stories: int | None = None

    @property
    def is_empty(self) -> bool:
        return self.story_count == 0

    @property
    def shown_count(self) -> int:
        return sum(len(g.stories) for g in self.groups)

    def lines(self) -> Iterator[StoryLine]:
        for g in self.groups:
            yield from g.stories

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def period_text(self) -> str:
        """E.g. "Tue 14 Nov 08:00 – Wed 15 Nov 08:00 (Asia/Shanghai)"."""
        return format_period(self.period_start, self.period_end, self.timezone)

    @property
    def offset_changes(self) -> bool:
        """True when the period crosses a UTC offset change (DST): local times are then
        ambiguous without their abbreviation."""
        tz = self.tz
        return (
            self.period_start.astimezone(tz).utcoffset()
            != self.period_end.astimezone(tz).utcoffset()
        )

    def empty_text(self) -> str:
        """The plain answer when nothing matched: nothing new is an answer too."""
        since = format_day_time(
            self.period_start,
            self.timezone,
            abbr=self.offset_changes,
            year=self.period_start.year != self.period_end.year,
        )
        return f"No new matching stories since {since} ({self.timezone})."

    def line_time(self, when: datetime) -> str:
        """A story's time as shown in this digest (see :func:`format_line_time`), with
        its zone ("09:15 CST")."""
        return format_line_time(when, self.timezone, ref=self.period_end, abbr=True)

    # -- JSON round trip -------------------------------------------------------------

    def to_payload(self) -> dict[str, Any]:
        return {
            "version": PAYLOAD_VERSION,
            "kind": self.kind,
            "title": self.title,
            "timezone": self.timezone,
            "period_start": _dt_out(self.period_start),
            "period_end": _dt_out(self.period_end),
            "generated_at": _dt_out(self.generated_at),
            "story_count": self.story_count,
            "item_count": self.item_count,
            "failed_feeds": [[f.name, f.error] for f in self.failed_feeds],
            "truncated": self.truncated,
            "group_by": self.group_by,
            "max_stories": self.max_stories,
            "groups": [
                {
                    "label": g.label,
                    "entry_id": g.entry_id,
                    "kind": g.kind.value if g.kind else None,
                    "stories": [
                        {
                            "story_id": s.story_id,
                            "title": s.title,
                            "outlets": list(s.outlets),
                            "time": _dt_out(s.time),
                            "link": s.link,
                            "tags": [[t.entry_id, t.name] for t in s.tags],
                            "why": [[w.entry_id, w.name, w.alias, w.field.value] for w in s.why],
                            "item_count": s.item_count,
                            "summary": s.summary,
                        }
                        for s in g.stories
                    ],
                }
                for g in self.groups
            ],
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Digest:
        """Rebuild a digest stored by :meth:`to_payload`. Raises StorageError if the
        payload is not one."""
        # the raises inside the try are meant: the except turns each into a StorageError
        try:
            version = data.get("version")
            if version != PAYLOAD_VERSION:
                raise ValueError(f"unknown payload version {version!r}")  # noqa: TRY301
            groups = tuple(
                DigestGroup(
                    label=_opt_str(g["label"]),
                    entry_id=_opt_str(g["entry_id"]),
                    kind=EntryKind(g["kind"]) if g["kind"] is not None else None,
                    stories=tuple(
                        StoryLine(
                            story_id=int(s["story_id"]),
                            title=str(s["title"]),
                            outlets=tuple(str(o) for o in s["outlets"]),
                            time=_dt_in(s["time"]),
                            link=_opt_str(s["link"]),
                            tags=tuple(EntryTag(str(a), str(b)) for a, b in s["tags"]),
                            why=tuple(
                                Why(str(a), str(b), str(c), Field(d)) for a, b, c, d in s["why"]
                            ),
                            item_count=int(s["item_count"]),
                            summary=str(s["summary"]),
                        )
                        for s in g["stories"]
                    ),
                )
                for g in data["groups"]
            )
            kind = str(data["kind"])
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")  # noqa: TRY301
            zone(str(data["timezone"]))
            max_stories = data["max_stories"]
            return cls(
                kind=kind,
                title=str(data["title"]),
                timezone=str(data["timezone"]),
                period_start=_dt_in(data["period_start"]),
                period_end=_dt_in(data["period_end"]),
                generated_at=_dt_in(data["generated_at"]),
                groups=groups,
                story_count=int(data["story_count"]),
                item_count=int(data["item_count"]),
                failed_feeds=tuple(FailedFeed(str(a), str(b)) for a, b in data["failed_feeds"]),
                truncated=int(data["truncated"]),
                group_by=str(data["group_by"]),
                max_stories=int(max_stories) if max_stories is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError, InputError) as err:
            raise StorageError(f"A stored digest could not be read back ({err}).") from None


def _dt_out(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def _dt_in(value: Any) -> datetime:
    dt = datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}")
    return dt.astimezone(UTC)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------
# time, shown in the channel's timezone (English names, whatever the process locale)

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_day_time(dt: datetime, tz: str, *, year: bool = False, abbr: bool = False) -> str:
    """ "Tue 14 Nov 08:00" in ``tz`` (with the year, and the zone abbreviation, on request)."""
    loc = dt.astimezone(zone(tz))
    text = f"{_DAYS[loc.weekday()]} {loc.day} {_MONTHS[loc.month - 1]}"
    if year:
        text += f" {loc.year}"
    text += f" {loc:%H:%M}"
    if abbr:
        text += f" {zone_label(dt, tz)}"
    return text


def zone_label(dt: datetime, tz: str) -> str:
    """The zone as shown next to a time: its abbreviation at ``dt`` ("CST", "EDT",
    "UTC"), or "UTC+08" where the zone has no letters for it."""
    name = dt.astimezone(zone(tz)).tzname() or tz
    return f"UTC{name}" if name[:1] in "+-" else name


def format_time(dt: datetime, tz: str, *, now: datetime) -> str:
    """The one way a moment is written outside a digest's story lines (/status, /feeds
    list, search hits, schedule replies): "Tue 14 Nov 08:00 CST" in ``tz``, with the
    year when it is not ``now``'s ("Tue 14 Nov 2023 08:00 CST")."""
    z = zone(tz)
    year = dt.astimezone(z).year != now.astimezone(z).year
    return f"{format_day_time(dt, tz, year=year)} {zone_label(dt, tz)}"


def format_period(start: datetime, end: datetime, tz: str) -> str:
    """ "Tue 14 Nov 08:00 – Wed 15 Nov 08:00 (Asia/Shanghai)"; across a DST change each
    end carries its abbreviation ("Sat 4 Nov 08:00 EDT – Sun 5 Nov 08:00 EST")."""
    z = zone(tz)
    abbr = start.astimezone(z).utcoffset() != end.astimezone(z).utcoffset()
    year = start.astimezone(z).year != end.astimezone(z).year
    a = format_day_time(start, tz, year=year, abbr=abbr)
    b = format_day_time(end, tz, year=year, abbr=abbr)
    return f"{a} – {b} ({tz})"


def format_line_time(dt: datetime, tz: str, *, ref: datetime, abbr: bool = False) -> str:
    """A story's time, as short as is clear next to ``ref`` (the period's end): "09:15"
    on ref's local day, "Tue 09:15" in the six days before, else "14 Nov 09:15"."""
    z = zone(tz)
    loc = dt.astimezone(z)
    ref_loc = ref.astimezone(z)
    days = (ref_loc.date() - loc.date()).days
    if days == 0:
        text = f"{loc:%H:%M}"
    elif 0 < days < 7:
        text = f"{_DAYS[loc.weekday()]} {loc:%H:%M}"
    else:
        text = f"{loc.day} {_MONTHS[loc.month - 1]}"
        if loc.year != ref_loc.year:
            text += f" {loc.year}"
        text += f" {loc:%H:%M}"
    if abbr:
        text += f" {zone_label(dt, tz)}"
    return text


# ---------------------------------------------------------------------------------------
# building


def _failed(feeds: Sequence[FeedHealth | tuple[str, str]]) -> tuple[FailedFeed, ...]:
    out: list[FailedFeed] = []
    seen: set[tuple[str, str]] = set()
    for f in feeds:
        if isinstance(f, FeedHealth):
            pair = (f.name or f.url, f.last_error or "failing")
        else:
            pair = (str(f[0]), str(f[1]))
        if pair not in seen:
            seen.add(pair)
            out.append(FailedFeed(*pair))
    return tuple(out)


def _line(
    story: Story, entries: Mapping[str, EntryInfo], order: Sequence[str], group_entry: str | None
) -> StoryLine:
    head = story.headline.stored
    title = plain(head.item.title)
    summary = plain(head.item.summary)
    if not title:
        title = truncate(summary, 120) if summary else "(untitled)"
    title = truncate(title, TITLE_MAX)
    summary = truncate(summary, SUMMARY_MAX)
    if summary and (summary == title or title.startswith(summary.rstrip("…"))):
        summary = ""
    outlets = [head.item.source] + [o for o in story.outlets if o != head.item.source]
    link = safe_url(story.link)
    if link is None:
        for mi in story.items:
            link = safe_url(mi.stored.item.link) or safe_url(mi.stored.item.canonical_link)
            if link:
                break
    why = []
    for e in order:
        m: Match = story.matches[e]
        why.append(Why(e, entries[e].name, m.alias, m.field))
    tags = tuple(EntryTag(e, entries[e].name) for e in order if e != group_entry)
    return StoryLine(
        story_id=story.id,
        title=title,
        outlets=tuple(outlets),
        time=head.when.astimezone(UTC),
        link=link,
        tags=tags,
        why=tuple(why),
        item_count=len(story.items),
        summary=summary,
    )


def build_digest(
    items: Sequence[MatchedItem],
    *,
    entries: Mapping[str, EntryInfo],
    period_start: datetime,
    period_end: datetime,
    tz: str,
    failed_feeds: Sequence[FeedHealth | tuple[str, str]] = (),
    group_by: str = "entry",
    max_stories: int = 40,
    kind: str = "digest",
    now: datetime,
    title: str | None = None,
    focus: str | None = None,
    language: str | None = None,
) -> Digest:
    """Cluster, rank, cap and lay out a channel's matched items (module docstring).

    Matches whose entry id is not in ``entries`` are ignored; an item left without a
    match is left out. ``failed_feeds``: feeds that failed in the period, as FeedHealth
    rows or (name, error) pairs. ``focus``: an entry id; only the stories that matched
    it are kept (clustered with every item, so a story shows the same outlets as in
    the full digest), filed under it. ``language``: a story is headed by an item in
    that language when it has one."""
    for name, dt in (("period_start", period_start), ("period_end", period_end), ("now", now)):
        if dt.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if group_by not in GROUP_BY:
        raise InputError(f"Group by must be 'entry' or 'story', not {group_by!r}.")
    if max_stories < 1:
        raise InputError("The story limit must be at least 1.")
    zone(tz)

    kept: list[MatchedItem] = []
    for mi in items:
        matches = tuple(m for m in mi.matches if m.entry_id in entries)
        if matches:
            kept.append(mi if len(matches) == len(mi.matches) else replace(mi, matches=matches))
    kinds = {e: info.kind for e, info in entries.items()}
    stories = rank(cluster(kept, entry_kinds=kinds, language=language), now=period_end)
    if focus is not None:
        stories = [s for s in stories if focus in s.matches]
    shown = stories[:max_stories]

    groups: list[DigestGroup] = []
    if group_by == "story":

        def story_order(s: Story) -> list[str]:
            order = s.entries_by_strength(kinds)
            return order if focus is None else [focus, *(e for e in order if e != focus)]

        lines = tuple(_line(s, entries, story_order(s), None) for s in shown)
        if lines:
            groups.append(DigestGroup(None, None, None, lines))
    else:
        placed: dict[str, list[tuple[int, StoryLine]]] = {}
        for pos, s in enumerate(shown):
            order = s.entries_by_strength(kinds)
            if focus is not None:
                order = [focus, *(e for e in order if e != focus)]
            home = order[0]
            placed.setdefault(home, []).append((pos, _line(s, entries, order, home)))
        kind_rank = {EntryKind.ACTOR: 0, EntryKind.TOPIC: 1}
        for e in sorted(placed, key=lambda e: (kind_rank.get(kinds[e], 2), placed[e][0][0], e)):
            info = entries[e]
            groups.append(
                DigestGroup(info.name, e, info.kind, tuple(line for _, line in placed[e]))
            )

    return Digest(
        kind=kind,
        title=title or DEFAULT_TITLES[kind],
        timezone=tz,
        period_start=period_start.astimezone(UTC),
        period_end=period_end.astimezone(UTC),
        generated_at=now.astimezone(UTC),
        groups=tuple(groups),
        story_count=len(stories),
        item_count=sum(len(s.items) for s in stories),
        failed_feeds=_failed(failed_feeds),
        truncated=len(stories) - len(shown),
        group_by=group_by,
        max_stories=max_stories,
    )
