"""Stories: the items several outlets ran about one event, clustered into one line.

How items are joined (:func:`cluster`)
--------------------------------------
1. **Shared link target.** Two items with the same canonical link (tracking parameters,
   fragment, ``www.``, trailing slash ignored) are the same article. An item whose summary
   links to another item's article (an aggregator, or a Chinese outlet citing the Reuters
   piece) joins that item too, within the time window. Links to the item's own site,
   boilerplate links repeated by one outlet, and pages that are not an item of the batch
   join nothing.
2. **Similar text.** Titles and summaries become token sets (``bot.core.text.plain``,
   case-folded, stopwords dropped, plurals and possessives stemmed, CJK text as character
   bigrams split at function characters). A pair scores the mean of the IDF-weighted Dice
   overlap of the titles and the TF-IDF cosine of title+summary (title counted twice);
   pairs at or over :data:`TEXT_THRESHOLD` (:data:`CJK_THRESHOLD` for two CJK titles, as
   bigrams overlap by chance) that share at least two title tokens are joined.
3. **What keeps look-alikes apart** (checked between every member of two clusters before
   they merge, so a chain cannot pull in a different story):

   - time: a story spans at most ``window`` (48 h by default) between its first and last
     item;
   - different principals: each title names someone (a proper noun, or a tracked actor
     matched in the title) that the other item never mentions. "Yellen meets He Lifeng"
     and "Raimondo meets He Lifeng" stay apart; places after "in/at/to..." do not count.
     Proper nouns are learnt from the batch (capitalised mid-sentence more often than
     not), so Headline Case titles rely on their summaries; CJK names only count when
     they are tracked actors (pass ``entry_kinds``);
   - preview vs. event: one title announces ("Blinken *to meet* Wang Yi next week",
     "will visit") what the other reports as done ("Blinken *meets* Wang Yi"). We keep
     them apart on purpose: that the meeting happened is news even if the preview ran.

   Wire copy (near-identical text, cosine >= :data:`SAME_TEXT`) ignores the names rule.
4. **Across languages.** A Chinese and an English title share no words: they are
   joined on shared tracked entries, time and a bilingual glossary of news words
   (:mod:`bot.core.story_cross`, jieba segmentation), each of them required.

Results do not depend on input order: items are processed by id and candidate pairs in
(score, ids) order. Small batches compare all pairs; above :data:`ALL_PAIRS_MAX` items,
only pairs sharing a rare token (document frequency <= :data:`BUCKET_MAX_DF`) are scored.

What a story shows (:class:`Story`)
-----------------------------------
- ``id``: the smallest item id (stable while the story grows).
- ``headline``: an item in the channel's language (``language``: the feed's, else the
  title's script) if the story has one, then the item whose title carries the most of
  the story's tracked entries (it explains why the story is there), then the earliest
  published (who broke it), then the smallest id. Its title and link represent the story.
- ``outlets``: the distinct outlets that carried the story, in order of first seen: each
  item's source at its time (published, else fetched), and each outlet whose copy of an
  item was a duplicate (``MatchedItem.sightings``: an aggregator, a second outlet running
  the same link) at the time that copy was fetched. At equal times, stored items first.
- ``matches``: the best :class:`Match` per entry: a title hit before a summary hit, the
  headline's before others', then the earliest item's.

Entry strength (:meth:`Story.strength`), used to file a story under one entry when the
digest is grouped by entry: a title hit beats a summary hit, then more items carrying the
entry, then actors before topics (ties: the entry id, alphabetically).
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.core.links import link_target
from bot.core.models import EntryKind, Field, Match
from bot.core.ports import MatchedItem
from bot.core.story_cross import (
    CROSS_WINDOW,
    concepts_en,
    concepts_zh,
    cross_language_match,
    item_language,
    zh_announces,
)
from bot.core.story_text import (
    NOT_NAMES,
    PLACE_PREPS,
    STOPWORDS,
    Word,
    is_title_case,
    preview_verbs,
    split_words,
    word_tokens,
    wordset,
)
from bot.core.text import plain

DEFAULT_WINDOW = timedelta(hours=48)
#: minimum pair score (mean of title Dice and full-text cosine) to join by text
TEXT_THRESHOLD = 0.40
#: the bar for two titles written in Chinese/Japanese/Korean: without word segmentation,
#: character bigrams overlap by chance ("王毅会见布林肯" / "李强会见布林肯"), so be stricter
CJK_THRESHOLD = 0.50
#: full-text cosine at which two items are the same copy whatever the names say
SAME_TEXT = 0.80
#: above this many items, candidate pairs come from shared rare tokens only
ALL_PAIRS_MAX = 400
BUCKET_MAX_DF = 40
#: IDF is computed as if the batch held at least this many items, so that a batch of
#: three items weighs tokens like a batch of three hundred
_MIN_CORPUS = 50

# ---------------------------------------------------------------------------------------
# links

#: query parameters that only track the reader in links between outlets, dropped on top of
#: :data:`bot.core.links.TRACKING_PARAMS` when comparing links for clustering (never for
#: storage dedupe, where e.g. ``?from=`` may pick a different page)
STORY_DROP_PARAMS = wordset("src share feed from outputtype")
_HREF = re.compile(r"""href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_BARE_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)


def link_key(url: str | None) -> str | None:
    """A comparable form of a link (:func:`bot.core.links.link_target`, also dropping
    :data:`STORY_DROP_PARAMS`): scheme, ``www.``/``m.``, tracking parameters, fragment,
    default port and trailing slash ignored. None for a non-web link or a home page."""
    return link_target(url, drop_params=STORY_DROP_PARAMS)


def _host(key: str | None) -> str | None:
    return key.split("/", 1)[0].split("?", 1)[0] if key else None


def _summary_links(summary: str) -> set[str]:
    found: set[str] = set()
    for m in _HREF.finditer(summary or ""):
        raw = html.unescape(next(g for g in m.groups() if g is not None))
        found.add(raw)
    found.update(m.group().rstrip(".,;:)]}") for m in _BARE_URL.finditer(plain(summary or "")))
    return {k for k in map(link_key, found) if k}


# ---------------------------------------------------------------------------------------
# the story


@dataclass(frozen=True, slots=True)
class Story:
    """Items about one event. See the module docstring for how each field is chosen."""

    id: int
    headline: MatchedItem
    items: tuple[MatchedItem, ...]  # by (time, id)
    outlets: tuple[str, ...]  # distinct outlets (sightings too), in order of first seen
    matches: dict[str, Match] = field(hash=False)  # entry id -> best match, by entry id
    first: datetime
    last: datetime
    link: str | None  # the headline's link (else another item's)

    @property
    def entry_ids(self) -> tuple[str, ...]:
        return tuple(self.matches)

    @property
    def title(self) -> str:
        return plain(self.headline.stored.item.title)

    def strength(self, entry_id: str, kind: EntryKind | None = None) -> tuple[int, int, int]:
        """How strongly the story is about an entry: (title hit, items carrying it, actor).
        Compare tuples; higher is stronger."""
        title_hit = 0
        count = 0
        for mi in self.items:
            fields = {m.field for m in mi.matches if m.entry_id == entry_id}
            if fields:
                count += 1
                if Field.TITLE in fields:
                    title_hit = 1
        return (title_hit, count, 1 if kind == EntryKind.ACTOR else 0)

    def entries_by_strength(self, kinds: Mapping[str, EntryKind]) -> list[str]:
        """The story's entries, strongest first (ties: entry id)."""
        return sorted(
            self.matches, key=lambda e: (tuple(-x for x in self.strength(e, kinds.get(e))), e)
        )


def _when_key(mi: MatchedItem) -> tuple[datetime, int]:
    return (mi.stored.when, mi.stored.id)


def _outlets(items: Sequence[MatchedItem]) -> list[str]:
    """Distinct outlets of the items (sorted by time) and their sightings, first seen
    first; at equal times an item's own outlet before a sighting, then input order."""
    seen: list[tuple[datetime, int, int, int, str]] = []
    for n, mi in enumerate(items):
        seen.append((mi.stored.when, 0, n, 0, mi.stored.item.source))
        seen.extend((s.seen_at, 1, n, k, s.source) for k, s in enumerate(mi.sightings) if s.source)
    outlets: list[str] = []
    for *_, source in sorted(seen):
        if source not in outlets:
            outlets.append(source)
    return outlets


def _make_story(members: Sequence[MatchedItem], language: str | None = None) -> Story:
    items = tuple(sorted(members, key=_when_key))

    def title_entries(mi: MatchedItem) -> int:
        return len({m.entry_id for m in mi.matches if m.field == Field.TITLE})

    def other_language(mi: MatchedItem) -> int:
        return 0 if language is None or item_language(mi) == language else 1

    headline = min(
        items,
        key=lambda mi: (
            0 if plain(mi.stored.item.title) else 1,
            other_language(mi),
            -title_entries(mi),
            mi.stored.when,
            mi.stored.id,
        ),
    )
    outlets = _outlets(items)
    best: dict[str, tuple[tuple[int, int, datetime, int], Match]] = {}
    for mi in items:
        for m in mi.matches:
            key = (
                0 if m.field == Field.TITLE else 1,
                0 if mi is headline else 1,
                mi.stored.when,
                mi.stored.id,
            )
            if m.entry_id not in best or key < best[m.entry_id][0]:
                best[m.entry_id] = (key, m)
    link = headline.stored.item.link or headline.stored.item.canonical_link
    if not link:
        link = next(
            (
                mi.stored.item.link or mi.stored.item.canonical_link
                for mi in items
                if mi.stored.item.link or mi.stored.item.canonical_link
            ),
            None,
        )
    return Story(
        id=min(mi.stored.id for mi in items),
        headline=headline,
        items=items,
        outlets=tuple(outlets),
        matches={e: best[e][1] for e in sorted(best)},
        first=items[0].stored.when,
        last=max(mi.stored.when for mi in items),
        link=link,
    )


# ---------------------------------------------------------------------------------------
# clustering


@dataclass(slots=True)
class _Doc:
    mi: MatchedItem
    when: datetime
    title_words: list[Word]
    title_tokens: frozenset[str]
    bag: Counter[str]
    tokens: frozenset[str]  # title and summary
    own_link: str | None
    summary_links: set[str]
    future: frozenset[str]
    done: frozenset[str]
    cjk: bool = False  # the title is mostly CJK
    named: frozenset[str] = frozenset()  # principals named in the title
    mentioned: frozenset[str] = frozenset()  # everything the item mentions
    vec: dict[str, float] = field(default_factory=dict)
    norm: float = 0.0
    title_w: float = 0.0
    latin: bool = False  # the title has no CJK word
    concepts: frozenset[str] = frozenset()  # glossary concepts (story_cross)
    title_entries: frozenset[str] = frozenset()
    entries: frozenset[str] = frozenset()
    title_actors: frozenset[str] = frozenset()


def _prepare(mi: MatchedItem) -> _Doc:
    item = mi.stored.item
    title = plain(item.title)
    summary = plain(item.summary)
    tw = split_words(title)
    sw = split_words(summary)
    tt = word_tokens(tw)
    st = word_tokens(sw)
    bag = Counter(tt) + Counter(tt) + Counter(st)
    future, done = preview_verbs(title)
    own = link_key(item.canonical_link or item.link)
    cjk_tokens = sum(1 for w in tw if w.cjk)
    cjk = cjk_tokens > 0 and cjk_tokens >= len(tw) / 2
    return _Doc(
        cjk=cjk,
        latin=cjk_tokens == 0,
        concepts=concepts_zh(f"{title} {summary}") if cjk else concepts_en(bag),
        title_entries=frozenset(m.entry_id for m in mi.matches if m.field == Field.TITLE),
        entries=frozenset(m.entry_id for m in mi.matches),
        mi=mi,
        when=mi.stored.when,
        title_words=tw,
        title_tokens=frozenset(tt),
        bag=bag,
        tokens=frozenset(tt) | frozenset(st),
        own_link=own,
        summary_links=_summary_links(item.summary),
        future=future,
        done=done,
    )


def _proper_nouns(docs: Sequence[_Doc]) -> set[str]:
    """Tokens written capitalised mid-sentence more often than lowercase, in the batch."""
    cap: Counter[str] = Counter()
    low: Counter[str] = Counter()
    for d in docs:
        item = d.mi.stored.item
        for words in (d.title_words, split_words(plain(item.summary))):
            title_case = is_title_case(words)
            for w in words:
                if w.cjk or w.token in STOPWORDS:
                    continue
                first = w.surface[0]
                acronym = w.surface.isupper() and len(w.surface) > 1
                if first.islower():
                    low[w.token] += 1
                elif first.isupper() and ((not w.initial and not title_case) or acronym):
                    cap[w.token] += 1
    return {t for t, n in cap.items() if n > low[t]}


def _named_in_title(d: _Doc, proper: set[str], actor_ids: set[str]) -> frozenset[str]:
    named: set[str] = set()
    after_prep = False
    for w in d.title_words:
        if w.cjk:
            after_prep = False
            continue
        low = w.surface.casefold()
        is_cap = w.surface[0].isupper()
        if low in PLACE_PREPS:
            after_prep = True
            continue
        if after_prep and is_cap:
            continue  # "in San Francisco", "at Woodside": places
        after_prep = False
        if w.token in proper and w.token not in STOPWORDS and w.token not in NOT_NAMES:
            named.add(w.token)
    named.update(
        f"entry:{m.entry_id}"
        for m in d.mi.matches
        if m.field == Field.TITLE and m.entry_id in actor_ids
    )
    return frozenset(named)


def _prepare_batch(
    ordered: Sequence[MatchedItem], entry_kinds: Mapping[str, EntryKind]
) -> tuple[list[_Doc], dict[str, float]]:
    docs = [_prepare(mi) for mi in ordered]
    actor_ids = {e for e, k in entry_kinds.items() if k == EntryKind.ACTOR}
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.tokens)
    size = max(len(docs), _MIN_CORPUS)
    idf = {t: math.log(1 + size / c) for t, c in df.items()}
    proper = _proper_nouns(docs)
    for d in docs:
        d.vec = {t: (1 + math.log(c)) * idf[t] for t, c in sorted(d.bag.items())}
        d.norm = math.sqrt(sum(v * v for v in d.vec.values()))
        d.title_w = sum(idf[t] for t in sorted(d.title_tokens))
        d.named = _named_in_title(d, proper, actor_ids)
        d.mentioned = d.tokens | {
            f"entry:{m.entry_id}" for m in d.mi.matches if m.entry_id in actor_ids
        }
        d.title_actors = d.title_entries & actor_ids
    return docs, idf


def _score(a: _Doc, b: _Doc, idf: Mapping[str, float]) -> tuple[float, float] | None:
    """(pair score, full-text cosine), or None when the titles share too little."""
    shared_title = a.title_tokens & b.title_tokens
    if len(shared_title) < 2 and not (
        len(shared_title) == 1 and len(a.title_tokens) == 1 == len(b.title_tokens)
    ):
        return None
    total = a.title_w + b.title_w
    dice = 2 * sum(idf[t] for t in sorted(shared_title)) / total if total else 0.0
    small, large = (a, b) if len(a.vec) <= len(b.vec) else (b, a)
    dot = sum(v * large.vec.get(t, 0.0) for t, v in small.vec.items())
    cos = dot / (a.norm * b.norm) if a.norm and b.norm else 0.0
    return round((dice + cos) / 2, 9), cos


def _cross_edges(docs: Sequence[_Doc]) -> list[tuple[float, int, int]]:
    """Edges between a mostly-CJK title and a Latin-script one that report the same
    event (:mod:`bot.core.story_cross`); only pairs sharing a title entry are tried."""
    by_entry: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, d in enumerate(docs):
        if d.cjk or d.latin:
            for entry in d.title_entries:
                by_entry[entry][0 if d.cjk else 1].append(i)
    pairs = sorted({(z, e) for zh, en in by_entry.values() for z in zh for e in en})
    edges: list[tuple[float, int, int]] = []
    for z, e in pairs:
        dz, de = docs[z], docs[e]
        if abs(dz.when - de.when) > CROSS_WINDOW:
            continue
        shared = cross_language_match(
            zh_title_entries=dz.title_entries,
            zh_entries=dz.entries,
            zh_actors=dz.title_actors,
            zh_concepts=dz.concepts,
            zh_future=zh_announces(plain(dz.mi.stored.item.title)),
            en_title_entries=de.title_entries,
            en_entries=de.entries,
            en_actors=de.title_actors,
            en_concepts=de.concepts,
            en_future=bool(de.future),
        )
        if shared:
            edges.append((TEXT_THRESHOLD + shared / 1000, min(z, e), max(z, e)))
    return edges


class _Clusters:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if ra > rb:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra].extend(self.members.pop(rb))


def cluster(
    items: Sequence[MatchedItem],
    *,
    window: timedelta = DEFAULT_WINDOW,
    entry_kinds: Mapping[str, EntryKind] | None = None,
    language: str | None = None,
) -> list[Story]:
    """Group items about the same event into stories (see the module docstring).

    ``entry_kinds`` (entry id -> kind), when given, lets tracked actors matched in titles
    count as principals. ``language`` (``"en"``, ``"zh"``...): a story is headed by an
    item in that language when it has one. Returns stories ordered by id; use
    :func:`rank` to order them."""
    unique: dict[int, MatchedItem] = {}
    for mi in items:
        unique.setdefault(mi.stored.id, mi)
    ordered = [unique[k] for k in sorted(unique)]
    n = len(ordered)
    if n == 0:
        return []
    docs, idf = _prepare_batch(ordered, entry_kinds or {})

    def within(i: int, j: int) -> bool:
        return abs(docs[i].when - docs[j].when) <= window

    # 1. link edges: same article, or a summary citing another item's article
    edges: list[tuple[float, int, int]] = []
    by_link: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        if d.own_link:
            by_link[d.own_link].append(i)
    for group in by_link.values():
        edges.extend((10.0, group[0], j) for j in group[1:])
    cited: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(docs):
        own_host = _host(d.own_link)
        for key in d.summary_links:
            if key != d.own_link and _host(key) != own_host:
                cited[key].append(i)
    for key, citers in cited.items():
        sources = Counter(docs[i].mi.stored.item.source for i in citers)
        if max(sources.values()) >= 3 and len(sources) == 1:
            continue  # boilerplate: one outlet linking the same page from every item
        # join the cited article when it is in the batch; two items citing the same
        # outside page (a ministry's statement list, a profile) are not joined by it
        edges.extend(
            (9.0, min(i, t), max(i, t))
            for i in citers
            for t in by_link.get(key, [])
            if i != t and within(i, t)
        )

    # 2. text edges
    def candidates() -> Iterable[tuple[int, int]]:
        if n <= ALL_PAIRS_MAX:
            for i in range(n):
                for j in range(i + 1, n):
                    yield i, j
            return
        index: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for t in d.tokens:
                index[t].append(i)
        seen: set[tuple[int, int]] = set()
        for t in sorted(index):
            bucket = index[t]
            if len(bucket) > BUCKET_MAX_DF:
                continue
            for x, i in enumerate(bucket):
                for j in bucket[x + 1 :]:
                    if (i, j) not in seen:
                        seen.add((i, j))
                        yield i, j

    cosines: dict[tuple[int, int], float] = {}
    for i, j in candidates():
        if not within(i, j):
            continue
        scored = _score(docs[i], docs[j], idf)
        if scored is None:
            continue
        score, cos = scored
        if score >= (CJK_THRESHOLD if docs[i].cjk and docs[j].cjk else TEXT_THRESHOLD):
            edges.append((score, i, j))
            cosines[(i, j)] = cos

    # 3. across languages: a Chinese and an English title about one event
    edges.extend(_cross_edges(docs))

    def conflict(i: int, j: int) -> bool:
        a, b = (i, j) if i < j else (j, i)
        da, db = docs[a], docs[b]
        if (da.future & db.done) or (db.future & da.done):
            return True
        if cosines.get((a, b), 0.0) >= SAME_TEXT:
            return False
        return bool(da.named - db.mentioned) and bool(db.named - da.mentioned)

    # 4. merge, strongest edges first, keeping look-alikes apart
    clusters = _Clusters(n)
    for score, i, j in sorted(edges, key=lambda e: (-e[0], e[1], e[2])):
        ri, rj = clusters.find(i), clusters.find(j)
        if ri == rj:
            continue
        if score < 10.0:
            mi_, mj_ = clusters.members[ri], clusters.members[rj]
            times = [docs[k].when for k in (*mi_, *mj_)]
            if max(times) - min(times) > window:
                continue
            if score < 9.0 and any(conflict(x, y) for x in mi_ for y in mj_):
                continue
        clusters.union(ri, rj)

    stories = [
        _make_story([ordered[k] for k in members], language)
        for members in clusters.members.values()
    ]
    return sorted(stories, key=lambda s: s.id)
