"""Match items against a watchlist: :func:`compile_watchlist` -> :class:`Matcher`.

How it works
------------
Every phrase the watchlist mentions (aliases, exclusions, context phrases, rule words)
becomes a *term*. All terms go into one character trie (an automaton built once per
watchlist). One regular expression finds the places a term can begin (a word start
whose letter begins some term, or any character that begins a CJK term: CJK has no
word boundaries); from each, the trie is walked once and yields *every* term that
begins there, so overlaps such as "Hunter Biden" / "Biden" are all seen. Each candidate
is checked for its word boundaries (Latin script only) and its case rule. Then each
entry touched by a hit is decided: alias hits minus those overlapped by an exclusion or
lacking their context, rules whose groups co-occur in the required scope, and the
entry's own context. Matching one item costs about 0.1 ms.

Reading as a reader does:

- The title and the summary's first sentence (the *lead*) are read together: a
  windowed alias context may sit in the other one, and a ``scope = "lead"`` rule may
  spread its hits over both ("Xi trip to San Francisco confirmed" / "... a meeting with
  Biden").
- A field written (mostly) in capitals relaxes the case rules, except for a hit that
  reads as a roman numeral right after the name or noun it numbers ("PIUS XI").
- An ``exclusive`` rule's last group is a relation between the others (a meeting): a
  hit of it tied to a third name ("talks with Putin", "Xi-Putin talks") does not count.
- An alias may *imply* other entries (习拜会 credits Xi and Biden).

Text is compared in *match form*: ``bot.core.text.plain`` (HTML and entities removed,
NFKC, curly quotes / dashes / odd spaces folded), then ``match_form`` (hyphens as
spaces, name dots unified). Aliases go through the same folding.
"""

from __future__ import annotations

import itertools
import re
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bot.core.models import EntryKind, Field, Match
from bot.core.text import match_form, normalize, plain
from bot.core.watchlist import Alias, Entry, Rule, Watchlist

_CJK_CLASS = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002fa1f"
)
_CJK_RE = re.compile(f"[{_CJK_CLASS}]")
#: a letter or digit of a space-separated script (not CJK, not "_")
_WORD_CHAR = f"[^\\W_{_CJK_CLASS}]"
_TOKEN_RE = re.compile(f"{_WORD_CHAR}+(?:'{_WORD_CHAR}+)*|[{_CJK_CLASS}]")
_SHORT_WORD = re.compile(f"{_WORD_CHAR}+")

# Sentence ends: . ! ? ; (followed by a space) and the CJK full stops.
_SENT_END = re.compile(r"([.!?;]+)['\")\]]*\s+|[。！？；]+")
_ABBREV = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "dr",
        "gen",
        "sen",
        "rep",
        "gov",
        "lt",
        "col",
        "sgt",
        "capt",
        "adm",
        "maj",
        "st",
        "jr",
        "sr",
        "prof",
        "no",
        "vs",
        "pres",
        "amb",
        "rev",
        "ft",
        "mt",
        "inc",
        "corp",
        "co",
        "ltd",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "est",
        "approx",
        "dept",
        "univ",
        "fig",
        "gov't",
        "u.s",
        "u.k",
        "e.g",
        "i.e",
        "etc",
        "al",
    }
)


# -- capitals and roman numerals ----------------------------------------------------------

_ROMAN = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
#: Words a roman numeral follows: regnal and papal names, numbered things, cricket
#: elevens ("PIUS XI", "SUPER BOWL XI", "CHAPTER XI", "PLAYING XI", "PRESIDENT'S XI").
_NUMBERED = frozenset(
    """
    pius leo louis benedict gregory clement innocent urban boniface john paul alexander
    alfonso alphonso charles carl karl gustav gustaf gustavus eric erik henry edward
    george james william richard philip frederick constantine ramesses rameses ramses
    rama haakon olav christian ferdinand nicholas peter ludwig juan sancho pedro felipe
    carlos baldwin stephen sixtus honorius celestine martin victor felix anastasius
    bowl chapter article title part section volume vol book act phase season episode
    series stage level class type mark mk gen generation apollo vatican war wrestlemania
    rocky playing starting best test odi world dream first second third county combined
    team squad side president's minister's pm's chairman's governor's xi
    """.split()  # noqa: SIM905
)
_PREV_WORD = re.compile(r"(\S+) $")


def _numeral_after_name(text: str, start: int, end: int) -> bool:
    """True when text[start:end] reads as a roman numeral numbering the word before it."""
    if not _ROMAN.fullmatch(text[start:end]):
        return False
    m = _PREV_WORD.search(text, max(0, start - 40), start)
    if m is None:
        return False
    return m.group(1).strip("\"'(").lower() in _NUMBERED


def _mostly_upper(text: str) -> bool:
    upper = lower = 0
    for ch in text:
        if ch.isupper():
            upper += 1
        elif ch.islower():
            lower += 1
    return upper >= 6 and upper >= 3 * lower


# -- third parties to a relation (exclusive rules) -----------------------------------------

#: Words between a meeting word and the one met: "talks with Chinese President Xi".
_PARTNER_SKIP = frozenset(
    """
    with between and & the a an his her their its of top chinese china's china u.s us
    american america's president prime minister premier chancellor vice foreign defense
    defence secretary state leader leaders counterpart counterparts general mr mrs ms dr
    chairman chief national security adviser advisor envoy ambassador senator sen
    governor gov king queen crown prince emperor pope new
    """.split()  # noqa: SIM905
)
_CALENDAR = frozenset(
    """
    monday tuesday wednesday thursday friday saturday sunday january february march april
    may june july august september october november december jan feb mar apr jun jul aug
    sep sept oct nov dec today tomorrow tonight
    """.split()  # noqa: SIM905
)
_NEXT_WORD = re.compile(r" (\S+)")
_CJK_CLAUSE_START = re.compile(
    r"[\s,.;:!?，。；：！？、（）()「」“”]+(?!.*[\s,.;:!?，。；：！？、（）()「」“”])"
)
_PREV_WORDS = re.compile(r"(?:\S+ ){1,2}$")
#: "Sullivan says talks with Xi ...": the speaker is no party to the talks
_SPEECH = frozenset(
    """
    says said say tells told expects expected hopes hoped wants wanted confirms confirmed
    announces announced urges urged sees
    """.split()  # noqa: SIM905
)
_CLAUSE_BREAK = re.compile(r"[,;:!?()\"]")
_CJK_CLAUSE_END = re.compile(r"[\s,.;:!?，。；：！？、（）()「」“”]")
_CLAUSE_END = frozenset(",;:!?)")


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and not _CJK_RE.match(ch)


def _lower(text: str) -> str:
    """Lower-case without changing the length (a few characters lower to two)."""
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def _alias_form(text: str) -> str:
    return match_form(normalize(text))


# -- compiled structures ---------------------------------------------------------------


@dataclass(slots=True)
class _Term:
    """A phrase in match form with its case rule. Shared by every alias spelled alike."""

    id: int
    form: str  # match form, case as written
    key: str  # lower-cased form: the trie key
    exact: tuple[int, ...]  # positions that must match the form's case exactly
    bound_start: bool
    bound_end: bool


@dataclass(slots=True)
class _AliasC:
    id: int
    text: str  # as written in the watchlist
    term: _Term
    exclude: tuple[_Term, ...]
    context: tuple[tuple[_AliasC, ...], ...]
    window: int | None
    implies: tuple[str, ...] = ()


@dataclass(slots=True)
class _RuleC:
    index: int
    groups: tuple[tuple[_AliasC, ...], ...]
    scope: str
    window: int | None
    last_follows: bool
    context: tuple[tuple[_AliasC, ...], ...]
    exclusive: bool = False


@dataclass(slots=True)
class _EntryC:
    index: int
    id: str
    kind: EntryKind
    aliases: tuple[_AliasC, ...]
    context: tuple[tuple[_AliasC, ...], ...]
    rules: tuple[_RuleC, ...]


@dataclass(slots=True)
class _Hit:
    term: _Term
    seg: int  # 0 title, 1 summary
    start: int
    end: int


class _Segment:
    """One field of an item in match form, with lazily computed word and sentence maps."""

    __slots__ = ("__dict__", "field", "index", "text")

    def __init__(self, index: int, field: Field, text: str) -> None:
        self.index = index
        self.field = field
        self.text = text

    @cached_property
    def token_starts(self) -> list[int]:
        return [m.start() for m in _TOKEN_RE.finditer(self.text)]

    def token(self, pos: int) -> int:
        return max(0, bisect_right(self.token_starts, pos) - 1)

    @cached_property
    def sentence_starts(self) -> list[int]:
        starts = [0]
        text = self.text
        for m in _SENT_END.finditer(text):
            end = m.end()
            if end >= len(text):
                break
            if m.group(1) is not None and m.group(1).endswith("."):
                before = text[: m.start(1)].rsplit(" ", 1)[-1].lower()
                if before in _ABBREV or len(before.rstrip(".")) <= 1 or "." in before:
                    continue
                nxt = text[end]
                if nxt.islower():
                    continue
            starts.append(end)
        return starts

    def sentence(self, pos: int) -> int:
        return bisect_right(self.sentence_starts, pos) - 1

    @cached_property
    def caps(self) -> bool:
        """Written (mostly) in capitals: "BIDEN, XI TO MEET WEDNESDAY"."""
        return _mostly_upper(self.text)

    @cached_property
    def title_case(self) -> bool:
        """Capitals carry no signal here: most longer words start with one ("China
        Weighs Xi Trip to San Francisco"), or the field is in capitals."""
        words = re.findall(r"[^\W\d_]{4,}", self.text)
        if len(words) < 3:
            return self.caps
        return sum(1 for w in words if w[0].isupper()) >= 0.7 * len(words)

    def in_lead(self, pos: int) -> bool:
        """In the part read with the title: the whole title, the summary's first
        sentence."""
        return self.index == 0 or self.sentence(pos) == 0

    def snippet(self, start: int, end: int, width: int = 30) -> str:
        a = max(0, start - width)
        b = min(len(self.text), end + width)
        return ("…" if a > 0 else "") + self.text[a:b] + ("…" if b < len(self.text) else "")


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A hit the matcher considered for an entry, accepted or not, and why."""

    entry_id: str
    alias: str
    field: Field
    accepted: bool
    reason: str
    snippet: str = ""


@dataclass(frozen=True, slots=True)
class Explanation:
    """What :meth:`Matcher.explain` found: the matches and every candidate with its
    reason, for ``/test`` and ``briefbot match --explain``."""

    matches: tuple[Match, ...]
    candidates: tuple[Candidate, ...] = field(default=())

    @property
    def accepted(self) -> list[Candidate]:
        return [c for c in self.candidates if c.accepted]

    @property
    def rejected(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.accepted]

    def lines(self) -> list[str]:
        """Human-readable: one line per match, then the near misses of the entries that
        did not match."""
        out: list[str] = []
        matched = {m.entry_id for m in self.matches}
        for m in self.matches:
            out.append(f"✓ {m.entry_id}: {m.alias!r} in the {m.field.value}")
        seen: set[tuple[str, str, str]] = set()
        for c in self.rejected:
            if c.entry_id in matched:
                continue
            key = (c.entry_id, c.alias, c.reason)
            if key in seen:
                continue
            seen.add(key)
            out.append(f"✗ {c.entry_id}: {c.alias!r} in the {c.field.value}: {c.reason}")
        if not out:
            out.append("No watchlist entry is mentioned.")
        return out


# -- the matcher -------------------------------------------------------------------------


def _describe(group: Sequence[_AliasC], limit: int = 3) -> str:
    texts: list[str] = []
    for a in group:
        if a.text not in texts:
            texts.append(a.text)
    shown = ", ".join(repr(t) for t in texts[:limit])
    return shown + (", …" if len(texts) > limit else "")


class Matcher:
    """A compiled watchlist. Thread-safe; build with :func:`compile_watchlist`."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self._terms: list[_Term] = []
        self._term_by_spec: dict[tuple[str, str], _Term] = {}
        self._aliases: dict[Alias, _AliasC] = {}
        self._alias_list: list[_AliasC] = []
        self._entries: list[_EntryC] = []
        # term id -> entries to evaluate when the term is hit
        self._triggers: dict[int, set[int]] = {}
        for e in watchlist.entries:
            self._entries.append(self._compile_entry(e))
        self._by_key: dict[str, list[_Term]] = {}
        for t in self._terms:
            self._by_key.setdefault(t.key, []).append(t)
        self._trie: dict[str, Any] = {}
        for key in self._by_key:
            node = self._trie
            for ch in key:
                node = node.setdefault(ch, {})
            node[""] = {}
        self._scanner = self._build_scanner()
        self._index_by_id = {e.id: e.index for e in self._entries}
        # the people the watchlist tracks: a meeting with one of them is a meeting with
        # a third party for a rule about others
        self._actor_aliases = tuple(
            a for e in self._entries if e.kind is EntryKind.ACTOR for a in e.aliases
        )

    # -- compilation --------------------------------------------------------------------
    def _term(self, text: str, case: str) -> _Term:
        form = _alias_form(text)
        spec = (form, case)
        term = self._term_by_spec.get(spec)
        if term is not None:
            return term
        if case == "sensitive":
            exact = tuple(range(len(form)))
        elif case == "insensitive":
            exact = ()
        else:
            positions: list[int] = []
            for m in _SHORT_WORD.finditer(form):
                word = m.group()
                if len(word) <= 3 and any(ch.isupper() for ch in word):
                    positions.extend(range(m.start(), m.end()))
            exact = tuple(positions)
        term = _Term(
            id=len(self._terms),
            form=form,
            key=_lower(form),
            exact=exact,
            bound_start=_is_word_char(form[0]),
            bound_end=_is_word_char(form[-1]),
        )
        self._terms.append(term)
        self._term_by_spec[spec] = term
        return term

    def _alias(self, a: Alias) -> _AliasC:
        done = self._aliases.get(a)
        if done is not None:
            return done
        compiled = _AliasC(
            id=len(self._alias_list),
            text=a.text,
            term=self._term(a.text, a.case),
            exclude=tuple(self._term(x.text, x.case) for x in a.exclude),
            context=tuple(tuple(self._alias(x) for x in g) for g in a.context),
            window=a.window,
            implies=a.implies,
        )
        self._aliases[a] = compiled
        self._alias_list.append(compiled)
        return compiled

    def _compile_entry(self, e: Entry) -> _EntryC:
        index = len(self._entries)
        entry_excl = tuple(self._term(x.text, x.case) for x in e.exclude)
        aliases = []
        for a in e.aliases:
            ac = self._alias(a)
            if entry_excl:
                ac = _AliasC(
                    id=-1,
                    text=ac.text,
                    term=ac.term,
                    exclude=ac.exclude + entry_excl,
                    context=ac.context,
                    window=ac.window,
                    implies=ac.implies,
                )
                ac.id = len(self._alias_list)
                self._alias_list.append(ac)
            aliases.append(ac)
            self._triggers.setdefault(ac.term.id, set()).add(index)
        rules = []
        for ri, r in enumerate(e.rules):
            rc = self._compile_rule(ri, r)
            rules.append(rc)
            for g in rc.groups:
                for ac in g:
                    self._triggers.setdefault(ac.term.id, set()).add(index)
        return _EntryC(
            index=index,
            id=e.id,
            kind=e.kind,
            aliases=tuple(aliases),
            context=tuple(tuple(self._alias(x) for x in g) for g in e.context),
            rules=tuple(rules),
        )

    def _compile_rule(self, index: int, r: Rule) -> _RuleC:
        return _RuleC(
            index=index,
            groups=tuple(tuple(self._alias(a) for a in g) for g in r.all),
            scope=r.scope,
            window=r.window,
            last_follows=r.last_follows,
            context=tuple(tuple(self._alias(a) for a in g) for g in r.context),
            exclusive=r.exclusive,
        )

    def _build_scanner(self) -> re.Pattern[str]:
        """One regex for the places a term can begin: a word start whose letter begins
        some term, or any character that begins a non-Latin term (CJK has no word
        boundaries). The trie walk from each such place is the automaton proper."""

        def charset(chars: Iterable[str]) -> str:
            return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"

        latin = [ch for ch in self._trie if _is_word_char(ch)]
        other = [ch for ch in self._trie if not _is_word_char(ch)]
        parts = []
        if latin:
            parts.append(f"(?<!{_WORD_CHAR}){charset(latin)}")
        if other:
            parts.append(charset(other))
        if not parts:
            return re.compile(r"(?!)")
        return re.compile("|".join(parts), re.IGNORECASE)

    # -- scanning -----------------------------------------------------------------------
    def _scan(
        self, segments: Sequence[_Segment], case_misses: list[_Hit] | None = None
    ) -> dict[int, list[_Hit]]:
        hits: dict[int, list[_Hit]] = {}
        trie = self._trie
        by_key = self._by_key
        for seg in segments:
            text = seg.text
            if not text:
                continue
            low = _lower(text)
            n = len(text)
            for m in self._scanner.finditer(text):
                p = m.start()
                node = trie
                i = p
                while i < n:
                    node = node.get(low[i])  # type: ignore[assignment]
                    if node is None:
                        break
                    i += 1
                    if "" in node:
                        for term in by_key[low[p:i]]:
                            if term.bound_end and i < n and _is_word_char(text[i]):
                                continue
                            if term.bound_start and p > 0 and _is_word_char(text[p - 1]):
                                continue
                            form = term.form
                            if any(text[p + k] != form[k] for k in term.exact) and not (
                                seg.caps and not _numeral_after_name(text, p, i)
                            ):
                                if case_misses is not None:
                                    case_misses.append(_Hit(term, seg.index, p, i))
                                continue
                            hits.setdefault(term.id, []).append(_Hit(term, seg.index, p, i))
        return hits

    # -- evaluation ---------------------------------------------------------------------
    def match(self, title: str, summary: str) -> list[Match]:
        """The entries the item matches, sorted by entry id, one Match per entry (a
        title hit preferred over a summary hit)."""
        return list(_Evaluation(self, title, summary, explain=False).run().matches)

    def explain(self, title: str, summary: str) -> Explanation:
        """Matches plus every candidate hit considered, accepted or rejected, with why."""
        return _Evaluation(self, title, summary, explain=True).run()


@dataclass(slots=True)
class _Found:
    field: Field
    pos: int
    alias: str


class _Evaluation:
    """The state of matching one item."""

    def __init__(self, matcher: Matcher, title: str, summary: str, *, explain: bool) -> None:
        self.m = matcher
        self.explain = explain
        self.segments = [
            _Segment(0, Field.TITLE, match_form(plain(title or ""))),
            _Segment(1, Field.SUMMARY, match_form(plain(summary or ""))),
        ]
        self.case_misses: list[_Hit] | None = [] if explain else None
        self.hits = matcher._scan(self.segments, self.case_misses)
        self.accepted: dict[int, list[_Hit]] = {}
        self.candidates: list[Candidate] = []
        self.implied: list[tuple[str, _Found]] = []
        self._actor_spans: list[list[tuple[int, int]]] | None = None

    # an alias's hits that count, with the reasons others do not
    def _check(self, a: _AliasC, hit: _Hit) -> str | None:
        for x in a.exclude:
            for xh in self.hits.get(x.id, ()):
                if xh.seg == hit.seg and xh.start < hit.end and hit.start < xh.end:
                    return f"excluded by {x.form!r}"
        for group in a.context:
            if not self._context_near(group, hit, a.window):
                if not self.explain:
                    return "needs context"
                where = f" within {a.window} words" if a.window else ""
                return f"needs context{where}: one of {_describe(group)}"
        return None

    def _context_near(self, group: Sequence[_AliasC], hit: _Hit, window: int | None) -> bool:
        for c in group:
            if c.term.id not in self.hits:
                continue
            for ch in self.ok(c):
                if window is None:
                    return True
                if ch.seg == hit.seg:
                    seg = self.segments[hit.seg]
                    if abs(seg.token(ch.start) - seg.token(hit.start)) <= window:
                        return True
                elif hit.seg == 0:
                    # a headline names someone briefly ("China's Wang warns ...") and
                    # leaves who they are to the summary: context anywhere there counts
                    return True
                elif self.segments[1].in_lead(hit.start):
                    # and the summary's lead goes on from the headline: "China's foreign
                    # minister warns ..." / "Wang said ..."
                    return True
        return False

    def ok(self, a: _AliasC) -> list[_Hit]:
        done = self.accepted.get(a.id)
        if done is not None:
            return done
        self.accepted[a.id] = []  # guards against a (malformed) context cycle
        out = [h for h in self.hits.get(a.term.id, ()) if self._check(a, h) is None]
        self.accepted[a.id] = out
        return out

    def _group_hits(self, group: Sequence[_AliasC]) -> list[tuple[_Hit, _AliasC]]:
        out = [(h, a) for a in group if a.term.id in self.hits for h in self.ok(a)]
        out.sort(key=lambda x: (x[0].seg, x[0].start))
        return out

    def _groups_ok(self, groups: Sequence[Sequence[_AliasC]]) -> str | None:
        for g in groups:
            if not any(self.ok(a) for a in g if a.term.id in self.hits):
                return f"no {_describe(g)} in the item" if self.explain else "no context"
        return None

    # -- exclusive rules: is a relation word tied to a third name? --------------------
    def actor_spans(self, seg: int) -> list[tuple[int, int]]:
        """(start, end) of every accepted hit of a tracked person in a field."""
        if self._actor_spans is None:
            spans: list[list[tuple[int, int]]] = [[], []]
            for a in self.m._actor_aliases:
                if a.term.id in self.hits:
                    for h in self.ok(a):
                        spans[h.seg].append((h.start, h.end))
            self._actor_spans = spans
        return self._actor_spans[seg]

    def _tie(
        self, hit: _Hit, partners: Sequence[tuple[int, int]], *, after_only: bool = False
    ) -> int:
        """What a relation word (a meeting) is tied to: 1 to one of the rule's own
        people (``partners``: (start, end) of their hits in this field: "talks with
        Biden", "Xi and Biden hold talks"), -1 to someone else ("talks with (Russia's)
        Putin", "met Albanese": a capitalised name in sentence-case text, "Xi-Putin
        talks": a tracked person right before it), 0 to nobody in particular. With
        ``after_only``, only a partner the relation word names ("a meeting with Biden",
        "to meet Biden") ties it, not one before it ("Biden talks tough")."""
        seg = self.segments[hit.seg]
        text = seg.text
        actors = self.actor_spans(hit.seg)
        starts = {a for a, _ in partners}
        if _CJK_RE.match(text[hit.start]) or _CJK_RE.match(text[hit.end - 1]):
            return self._tie_cjk(hit, starts, [*actors, *partners])
        # a tracked person just before it, in its clause: "Xi-Putin talks", "Putin holds
        # talks with Xi" (but "Sullivan says talks with Xi ..." is about the talks)
        m = _PREV_WORDS.search(text, max(0, hit.start - 60), hit.start)
        if m is not None:
            near = [
                (end, a)
                for a, end in actors
                if m.start() <= a
                and end <= hit.start
                and not _CLAUSE_BREAK.search(text, end, hit.start)
            ]
            if near:
                end, a = max(near)
                between = text[end : hit.start].split()
                if a not in starts and not any(w.lower() in _SPEECH for w in between):
                    return -1
        named = False
        pos = hit.end
        for _ in range(6):
            m = _NEXT_WORD.match(text, pos)
            if m is None:
                break
            start = m.start(1)
            if start in starts:
                return 1
            if any(a == start for a, _ in actors):
                return -1
            word = m.group(1)
            core = word.strip(".,;:!?\"'()[]")
            low = core.lower()
            if not core or low in _CALENDAR:
                break
            if low not in _PARTNER_SKIP:
                if not core[0].isupper():
                    break
                if not seg.title_case:
                    named = True
            if word[-1] in _CLAUSE_END or (word[-1] == "." and "." not in core):
                break
            pos = m.end(1)
        if named:
            return -1
        if after_only:
            return 0
        # one of them just before it, in the same clause: "Xi and Biden hold talks",
        # "the two leaders last met", "their four-hour talks"
        tok = seg.token(hit.start)
        sentence = seg.sentence(hit.start)
        for a, end in partners:
            if (
                a < hit.start
                and tok - seg.token(end - 1) <= 3
                and seg.sentence(a) == sentence
                and not _CLAUSE_BREAK.search(text, end, hit.start)
            ):
                return 1
        return 0

    def _tie_cjk(self, hit: _Hit, partners: set[int], people: list[tuple[int, int]]) -> int:
        """Chinese has no word spaces: the person nearest the relation word in its
        clause, just before ("习近平同普京会谈") or after ("会见俄罗斯总统普京"), decides."""
        text = self.segments[hit.seg].text
        lo = max(0, hit.start - 8)
        m = _CJK_CLAUSE_START.search(text, lo, hit.start)
        left = m.end() if m else lo
        hi = min(len(text), hit.end + 10)
        m = _CJK_CLAUSE_END.search(text, hit.end, hi)
        right = m.start() if m else hi
        before = max(
            ((end, a) for a, end in people if left <= a and end <= hit.start), default=None
        )
        after = min(((a, end) for a, end in people if hit.end <= a < right), default=None)
        if (before is not None and before[1] not in partners) or (
            after is not None and after[0] not in partners
        ):
            return -1
        return 1 if before is not None or after is not None else 0

    def _named_partner(self, hit: _Hit, combo: Sequence[tuple[_Hit, _AliasC]]) -> bool:
        """In a spread over title and lead, the relation word must name its partner
        where it stands: "... a meeting with Biden", not "Biden talks tough"."""
        partners = [(h.start, h.end) for h, _ in combo[:-1] if h.seg == hit.seg]
        return bool(partners) and self._tie(hit, partners, after_only=True) == 1

    @staticmethod
    def _partners(per_group: list[list[tuple[_Hit, _AliasC]]]) -> list[list[tuple[int, int]]]:
        spans: list[list[tuple[int, int]]] = [[], []]
        for g in per_group[:-1]:
            for h, _ in g:
                spans[h.seg].append((h.start, h.end))
        return spans

    def _rule(self, r: _RuleC) -> tuple[_Found | None, str]:
        per_group = [self._group_hits(g) for g in r.groups]
        if r.exclusive and all(per_group):
            partners = self._partners(per_group)
            per_group[-1] = [x for x in per_group[-1] if self._tie(x[0], partners[x[0].seg]) >= 0]
            if not per_group[-1]:
                if not self.explain:
                    return None, ""
                return None, f"{_describe(r.groups[-1], 2)}: only with someone else"
        missing = [i for i, g in enumerate(per_group) if not g]
        if missing:
            if not self.explain:
                return None, ""
            return None, "needs all of: " + "; ".join(
                ("✗ " if i in missing else "") + _describe(g) for i, g in enumerate(r.groups)
            )
        if r.context:
            why = self._groups_ok(r.context)
            if why:
                return None, f"rule context: {why}"
        if r.window is None and r.scope == "item":
            for seg in (0, 1):
                picked = [next((x for x in g if x[0].seg == seg), None) for g in per_group]
                chosen = [x for x in picked if x is not None]
                if len(chosen) == len(per_group):
                    return self._found(seg, chosen), ""
            chosen = [g[0] for g in per_group]
            return self._found(1, chosen), ""
        for seg in (0, 1):
            segment = self.segments[seg]
            in_seg = [[x for x in g if x[0].seg == seg] for g in per_group]
            if not all(in_seg):
                continue
            combos = itertools.islice(itertools.product(*in_seg), 20000)
            for combo in combos:
                if r.scope == "sentence":
                    sents = {segment.sentence(h.start) for h, _ in combo}
                    if len(sents) != 1:
                        continue
                if r.window is not None:
                    toks = [segment.token(h.start) for h, _ in combo]
                    if max(toks) - min(toks) > r.window:
                        continue
                if r.last_follows:
                    last = combo[-1][0].start
                    if not any(h.start < last for h, _ in combo[:-1]):
                        continue
                return self._found(seg, list(combo)), ""
        if r.scope == "lead":
            found = self._lead_spread(r, per_group)
            if found is not None:
                return found, ""
        if not self.explain:
            return None, ""
        if r.window is not None:
            return None, f"not within {r.window} words: " + " + ".join(
                _describe(g, 2) for g in r.groups
            )
        order = ", with the last after another" if r.last_follows else ""
        where = "one sentence" if r.scope == "sentence" else "one sentence or title + lead"
        return None, f"not in {where}" + order + ": " + " + ".join(
            _describe(g, 2) for g in r.groups
        )

    def _lead_spread(
        self,
        r: _RuleC,
        per_group: list[list[tuple[_Hit, _AliasC]]],
    ) -> _Found | None:
        """A rule's hits spread over the title and the summary's first sentence. For an
        exclusive rule the relation word must be tied to one of the others where it
        stands ("... a meeting with Biden"): "Biden hosts island leaders for summit" /
        "Xi was not invited" is no Xi-Biden summit."""
        summary = self.segments[1]
        lead = [[x for x in g if summary.in_lead(x[0].start) or x[0].seg == 0] for g in per_group]
        if not all(lead):
            return None
        for combo in itertools.islice(itertools.product(*lead), 20000):
            segs = {h.seg for h, _ in combo}
            if len(segs) < 2:
                continue  # all in one field: the sentence check above decides
            if r.window is not None:
                ok = True
                for seg in segs:
                    toks = [self.segments[seg].token(h.start) for h, _ in combo if h.seg == seg]
                    if max(toks) - min(toks) > r.window:
                        ok = False
                if not ok:
                    continue
            last = combo[-1][0]
            if r.last_follows and not any(
                (h.seg, h.start) < (last.seg, last.start) for h, _ in combo[:-1]
            ):
                continue
            if r.exclusive and not self._named_partner(last, combo):
                continue
            return self._found(1, list(combo))
        return None

    def _found(self, seg: int, chosen: Sequence[tuple[_Hit, _AliasC]]) -> _Found:
        return _Found(
            field=self.segments[seg].field,
            pos=min(h.start for h, _ in chosen),
            alias=" + ".join(a.text for _, a in chosen),
        )

    def _entry(self, e: _EntryC) -> _Found | None:
        found: list[_Found] = []
        context_why = self._groups_ok(e.context) if e.context else None
        for a in e.aliases:
            for h in self.hits.get(a.term.id, ()):
                why = self._check(a, h)
                if why is None and context_why:
                    why = f"entry context: {context_why}"
                seg = self.segments[h.seg]
                if why is None:
                    found.append(_Found(seg.field, h.start, a.text))
                    for target in a.implies:
                        self.implied.append((target, found[-1]))
                if self.explain:
                    self.candidates.append(
                        Candidate(
                            e.id,
                            a.text,
                            seg.field,
                            why is None,
                            why or "",
                            seg.snippet(h.start, h.end),
                        )
                    )
        for r in e.rules:
            if found and not self.explain and any(f.field is Field.TITLE for f in found):
                break
            hits = self.hits
            if not self.explain:
                if not all(any(a.term.id in hits for a in g) for g in r.groups):
                    continue
            else:
                present = sum(1 for g in r.groups if any(self.ok(a) for a in g))
                if present < min(2, len(r.groups)):
                    continue
            f, why = self._rule(r)
            if f is not None and context_why:
                f, why = None, f"entry context: {context_why}"
            if f is not None:
                found.append(f)
            if self.explain:
                label = " + ".join(_describe(g, 2) for g in r.groups)
                self.candidates.append(
                    Candidate(
                        e.id,
                        f.alias if f is not None else f"rule {r.index + 1}: {label}",
                        f.field if f is not None else Field.SUMMARY,
                        f is not None,
                        why,
                    )
                )
        if not found:
            return None
        return min(found, key=lambda f: (f.field is not Field.TITLE, f.pos))

    def run(self) -> Explanation:
        touched: set[int] = set()
        for term_id in self.hits:
            touched |= self.m._triggers.get(term_id, set())
        matches = []
        for index in sorted(touched):
            e = self.m._entries[index]
            f = self._entry(e)
            if f is not None:
                matches.append(Match(entry_id=e.id, alias=f.alias, field=f.field))
        if self.implied:
            matched = {m.entry_id for m in matches}
            index_by_id = self.m._index_by_id
            for target, f in sorted(
                self.implied, key=lambda x: (x[0], x[1].field is not Field.TITLE, x[1].pos)
            ):
                if target not in matched and target in index_by_id:
                    matched.add(target)
                    matches.append(Match(entry_id=target, alias=f.alias, field=f.field))
        if self.explain and self.case_misses:
            for h in self.case_misses:
                for index in sorted(self.m._triggers.get(h.term.id, set())):
                    e = self.m._entries[index]
                    for a in e.aliases:
                        if a.term is h.term:
                            seg = self.segments[h.seg]
                            got = seg.text[h.start : h.end]
                            self.candidates.append(
                                Candidate(
                                    e.id,
                                    a.text,
                                    seg.field,
                                    False,
                                    f"case differs: {got!r} is not {a.term.form!r}",
                                    seg.snippet(h.start, h.end),
                                )
                            )
                            break
        matches.sort(key=lambda m: m.entry_id)
        return Explanation(matches=tuple(matches), candidates=tuple(self.candidates))


# -- compile cache -----------------------------------------------------------------------

_CACHE: OrderedDict[str, Matcher] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()


def compile_watchlist(wl: Watchlist) -> Matcher:
    """The compiled matcher for ``wl``, cached by the watchlist's content."""
    key = wl.content_hash()
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    matcher = Matcher(wl)
    with _LOCK:
        _CACHE[key] = matcher
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return matcher


def match_item(wl: Watchlist, title: str, summary: str) -> list[Match]:
    """Convenience: compile (cached) and match one item."""
    return compile_watchlist(wl).match(title, summary)


def entries_matched(matches: Iterable[Match]) -> list[str]:
    return sorted({m.entry_id for m in matches})


__all__ = [
    "Candidate",
    "Explanation",
    "Matcher",
    "compile_watchlist",
    "entries_matched",
    "match_item",
]
