"""The text side of the watchlist matcher (:mod:`bot.core.matching`): the word, token
and sentence model of a field in match form, capitals and roman numerals, the words that
tie a relation word to a third party and the tie itself (exclusive rules), the compiled
structures (terms, aliases, rules, entries, hits) that the scanner
(:mod:`bot.core.matching_scan`) and the rules (:mod:`bot.core.matching_rules`) share, and
the results (:class:`Explanation`, :class:`Candidate`).

Scripts: "CJK" is :data:`bot.core.text.CJK_CLASS` (Han, kana, Bopomofo, Hangul): it has no
word boundaries, every character is a token.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Literal

import regex

from bot.core.models import EntryKind, Field, Match
from bot.core.text import CJK, CJK_CLASS, match_form, normalize

_CJK_RE = CJK
#: a letter or digit of a space-separated script (not CJK, not "_"); Unicode's word
#: characters (``regex``), so a combining mark belongs to its word
_WORD_CHAR = f"[^\\W_{CJK_CLASS}]"
_WORD_CHAR_RE = regex.compile(_WORD_CHAR)
_TOKEN_RE = regex.compile(f"{_WORD_CHAR}+(?:'{_WORD_CHAR}+)*|[{CJK_CLASS}]")
#: :data:`_TOKEN_RE` for ASCII text (the common case), with ``re``: several times faster
_ASCII_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")
#: :data:`_TOKEN_RE` over a text's character classes (:class:`_TokenClasses`)
_CLASS_TOKEN_RE = re.compile(r"w+(?:'w+)*|c")


class _TokenClasses(dict[int, str]):
    """Code point -> its class for :data:`_TOKEN_RE`: "w" a word character
    (:data:`_WORD_CHAR`), "c" CJK, "'" the apostrophe, " " anything else. A
    ``str.translate`` table filled on first sight of a character: the text's classes,
    one character each, are then tokenised with ``re``, several times faster than
    ``regex`` with script properties."""

    _LIMIT = 1 << 16  # characters remembered (the rest are classified every time)

    def __missing__(self, code: int) -> str:
        ch = chr(code)
        if _CJK_RE.match(ch):
            cls = "c"
        elif _WORD_CHAR_RE.match(ch):
            cls = "w"
        else:
            cls = "'" if ch == "'" else " "
        if len(self) < self._LIMIT:
            self[code] = cls
        return cls


_TOKEN_CLASSES = _TokenClasses()
_SHORT_WORD = regex.compile(f"{_WORD_CHAR}+")

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


@lru_cache(maxsize=4096)
def _is_word_char(ch: str) -> bool:
    """A letter or digit of a space-separated script (the class of :data:`_WORD_CHAR`)."""
    return _WORD_CHAR_RE.match(ch) is not None


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
    # the term ids of ``exclude``: an alias hit can only be excluded when one is hit
    exclude_ids: frozenset[int] = frozenset()


@dataclass(slots=True)
class _RuleC:
    index: int
    groups: tuple[tuple[_AliasC, ...], ...]
    scope: Literal["item", "sentence", "lead"]  # as watchlist.Rule.scope
    window: int | None
    last_follows: bool
    context: tuple[tuple[_AliasC, ...], ...]
    exclusive: bool = False
    # the term ids of each group: the rule can only hold when each group has a hit
    group_terms: tuple[frozenset[int], ...] = ()
    ordered: bool = False  # as watchlist.Rule.ordered
    # group_terms and the term ids of each context group: the rule can only hold when
    # each has a hit
    needs: tuple[frozenset[int], ...] = ()


@dataclass(slots=True)
class _EntryC:
    index: int
    id: str
    kind: EntryKind
    aliases: tuple[_AliasC, ...]
    context: tuple[tuple[_AliasC, ...], ...]
    rules: tuple[_RuleC, ...]
    alias_terms: frozenset[int] = frozenset()  # the term ids of its aliases
    # the term ids of each context group: no hit of the entry counts unless each has one
    context_terms: tuple[frozenset[int], ...] = ()
    unless: bool = False  # whether it has ``unless`` phrases
    # term id -> the positions in ``aliases`` of the aliases with that term
    alias_positions: dict[int, tuple[int, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class _Hit:
    term: _Term
    seg: int  # 0 title, 1 summary
    start: int
    end: int


def _unpacked(term: _Term, at: int, cut: int) -> _Hit:
    """The hit of ``term`` at ``at`` in an item's text as the scanner reads it: the
    title (``cut`` characters), a line break, the summary."""
    if at > cut:
        seg, start = 1, at - cut - 1
    else:
        seg, start = 0, at
    return _Hit(term, seg, start, start + len(term.key))


# -- results (what matching and explaining give) ---------------------------------------


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


def _describe(group: Sequence[_AliasC], limit: int = 3) -> str:
    texts: list[str] = []
    for a in group:
        if a.text not in texts:
            texts.append(a.text)
    shown = ", ".join(repr(t) for t in texts[:limit])
    return shown + (", …" if len(texts) > limit else "")


@dataclass(slots=True)
class _Found:
    field: Field
    pos: int
    alias: str


class _Segment:
    """One field of an item in match form, with lazily computed word and sentence maps."""

    __slots__ = ("__dict__", "field", "index", "text")

    def __init__(self, index: int, field: Field, text: str) -> None:
        self.index = index
        self.field = field
        self.text = text

    @cached_property
    def token_starts(self) -> list[int]:
        text = self.text
        if text.isascii():
            return [m.start() for m in _ASCII_TOKEN_RE.finditer(text)]
        classes = text.translate(_TOKEN_CLASSES)
        return [m.start() for m in _CLASS_TOKEN_RE.finditer(classes)]

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


_TITLE, _SUMMARY = Field.TITLE, Field.SUMMARY  # (an enum member's lookup is slow)


def _item_segments(title: str, summary: str) -> list[_Segment]:
    """An item's title and summary, in match form."""
    return [_Segment(0, _TITLE, title), _Segment(1, _SUMMARY, summary)]


# -- exclusive rules: is a relation word tied to a third name? --------------------------


def _tied(
    seg: _Segment,
    hit: _Hit,
    partners: Sequence[tuple[int, int]],
    actors: Sequence[tuple[int, int]],
    *,
    after_only: bool = False,
) -> int:
    """What a relation word (a meeting) is tied to: 1 to one of the rule's own
    people (``partners``: (start, end) of their hits in this field: "talks with
    Biden", "Xi and Biden hold talks"), -1 to someone else ("talks with (Russia's)
    Putin", "met Albanese": a capitalised name in sentence-case text, "Xi-Putin
    talks": a tracked person (``actors``: (start, end) of their hits in this field)
    right before it), 0 to nobody in particular. With
    ``after_only``, only a partner the relation word names ("a meeting with Biden",
    "to meet Biden") ties it, not one before it ("Biden talks tough")."""
    text = seg.text
    starts = {a for a, _ in partners}
    if _CJK_RE.match(text[hit.start]) or _CJK_RE.match(text[hit.end - 1]):
        return _tie_cjk(text, hit, starts, [*actors, *partners])
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


def _tie_cjk(text: str, hit: _Hit, partners: set[int], people: list[tuple[int, int]]) -> int:
    """Chinese has no word spaces: the person nearest the relation word in its
    clause, just before ("习近平同普京会谈") or after ("会见俄罗斯总统普京"), decides."""
    lo = max(0, hit.start - 8)
    m = _CJK_CLAUSE_START.search(text, lo, hit.start)
    left = m.end() if m else lo
    hi = min(len(text), hit.end + 10)
    m = _CJK_CLAUSE_END.search(text, hit.end, hi)
    right = m.start() if m else hi
    before = max(((end, a) for a, end in people if left <= a and end <= hit.start), default=None)
    after = min(((a, end) for a, end in people if hit.end <= a < right), default=None)
    if (before is not None and before[1] not in partners) or (
        after is not None and after[0] not in partners
    ):
        return -1
    return 1 if before is not None or after is not None else 0


def _partner_spans(per_group: list[list[tuple[_Hit, _AliasC]]]) -> list[list[tuple[int, int]]]:
    """(start, end) of the hits of a rule's groups but the last (the relation word's),
    by field."""
    spans: list[list[tuple[int, int]]] = [[], []]
    for g in per_group[:-1]:
        for h, _ in g:
            spans[h.seg].append((h.start, h.end))
    return spans
