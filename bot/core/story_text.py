"""The words of a story's title and summary, for clustering (:mod:`bot.core.stories`).

Tokens: case-folded words, stopwords dropped, plurals and possessives stemmed, CJK text
as character bigrams split at function characters. Previews and events: a title that
announces ("to meet", "will visit") versus one that reports it done ("meets").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.text import CJK_RUN as _CJK_RUN

# ---------------------------------------------------------------------------------------
# tokens


def wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


STOPWORDS = wordset(
    """
    a about above across after again against ahead all almost also am amid among an and
    another any are around as at be because been before being below between both but by
    can could did do does doing done down during each either even ever every few for
    from further had has have having he her here hers herself him himself his how
    however i if in into is it its itself just least less like many may me might more
    most much must my near new news no nor not now of off on once one only onto or other
    our ours out over own per report reports reported said same say says she should
    since so some such than that the their theirs them then there these they this those
    though through thus to too toward towards under until up upon very via was we were
    what when where whether which while who whom whose why will with within without
    would yet you your yours live update updates latest breaking video watch opinion
    analysis exclusive explainer mr mrs ms dr
    """
)

# Chinese function characters: bigrams across them are noise ("毅同", "同布")
_CJK_FUNCTION = re.compile("[的了在和与同是将对为及等被把从向就也都而并于之]")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
# capitalised, but never a principal of a story
NOT_NAMES = wordset(
    """
    january february march april may june july august september october november
    december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday
    thursday friday saturday sunday mon tue wed thu fri sat sun today tomorrow yesterday
    """
)
# words after which a capitalised run is a place, not a principal
PLACE_PREPS = wordset("in at near from to into across outside inside over visits visit")


def _stem(word: str) -> str:
    """Possessives and plurals only: "China's" -> "china", "talks" -> "talk"."""
    if word.endswith("'s"):
        word = word[:-2]
    elif word.endswith("'"):
        word = word[:-1]
    n = len(word)
    if n > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if n > 4 and word.endswith("sses"):
        return word[:-2]
    if n > 4 and (word.endswith(("ches", "shes", "xes", "zes"))):
        return word[:-2]
    if n > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")):
        return word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Word:
    surface: str  # as written
    token: str  # folded and stemmed
    cjk: bool
    initial: bool  # first word of the text or of a sentence


def split_words(text: str) -> list[Word]:
    text = _CJK_RUN.sub(lambda m: " " + _CJK_FUNCTION.sub(" ", m.group()) + " ", text)
    out: list[Word] = []
    prev_end = 0
    for m in _WORD.finditer(text):
        surface = m.group()
        gap = text[prev_end : m.start()]
        initial = not out or any(c in gap for c in '.!?:;"|')
        prev_end = m.end()
        if _CJK_RUN.fullmatch(surface):
            out.append(Word(surface, surface, True, initial))
            continue
        out.append(Word(surface, _stem(surface.casefold()), False, initial))
    return out


def word_tokens(words: Iterable[Word]) -> list[str]:
    out: list[str] = []
    for w in words:
        if w.cjk:
            s = w.token
            if len(s) == 1:
                out.append(s)
            else:
                out.extend(s[i : i + 2] for i in range(len(s) - 1))
        elif w.token not in STOPWORDS and (len(w.token) > 1 or w.token.isdigit()):
            out.append(w.token)
    return out


def is_title_case(words: Sequence[Word]) -> bool:
    """Headline Case ("Yellen Meets He Lifeng") says nothing about proper nouns."""
    latin = [w for w in words if not w.cjk and len(w.surface) > 3]
    if len(latin) < 3:
        return False
    caps = sum(1 for w in latin if w.surface[0].isupper())
    return caps >= 0.8 * len(latin)


# ---------------------------------------------------------------------------------------
# previews ("to meet") vs events ("meets")

_EVENT_VERBS: dict[str, tuple[str, ...]] = {
    "meet": ("meets", "met"),
    "visit": ("visits", "visited"),
    "hold": ("holds", "held"),
    "attend": ("attends", "attended"),
    "host": ("hosts", "hosted"),
    "sign": ("signs", "signed"),
    "travel": ("travels", "travelled", "traveled"),
    "speak": ("speaks", "spoke"),
    "discuss": ("discusses", "discussed"),
    "address": ("addresses", "addressed"),
    "announce": ("announces", "announced"),
    "unveil": ("unveils", "unveiled"),
    "launch": ("launches", "launched"),
    "release": ("releases", "released"),
    "decide": ("decides", "decided"),
    "rule": ("rules", "ruled"),
    "testify": ("testifies", "testified"),
    "resign": ("resigns", "resigned"),
    "raise": ("raises", "raised"),
    "cut": ("cuts",),
    "impose": ("imposes", "imposed"),
    "lift": ("lifts", "lifted"),
    "sanction": ("sanctions", "sanctioned"),
    "arrive": ("arrives", "arrived"),
}
_REALISED = {form: base for base, forms in _EVENT_VERBS.items() for form in forms}
_FUTURE = re.compile(
    r"\b(?:to|will|shall|would|'ll)\s+(?:(?:also|soon|then|likely|not)\s+)?([a-z]+)", re.IGNORECASE
)


def preview_verbs(title: str) -> tuple[frozenset[str], frozenset[str]]:
    """(verbs announced: "to meet", "will visit"; verbs reported done: "meets", "met")."""
    low = title.casefold()
    future = set()
    spans: list[tuple[int, int]] = []
    for m in _FUTURE.finditer(low):
        verb = m.group(1)
        if verb in _EVENT_VERBS:
            future.add(verb)
            spans.append(m.span(1))
    done = set()
    for m in re.finditer(r"[a-z]+", low):
        base = _REALISED.get(m.group())
        if base and not any(a <= m.start() < b for a, b in spans):
            done.add(base)
    return frozenset(future), frozenset(done)
