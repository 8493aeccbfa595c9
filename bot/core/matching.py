"""Match items against a watchlist: :func:`compile_watchlist` -> :class:`Matcher`.

How it works
------------
Every phrase the watchlist mentions (aliases, exclusions, context phrases, rule words)
becomes a *term*. All terms go into one Aho-Corasick automaton (pyahocorasick, built once
per watchlist), which finds in one pass over a field *every* occurrence of every term, so
overlaps such as "Hunter Biden" / "Biden" are all seen. Each hit is checked for its word
boundaries (Latin script only: CJK has no word boundaries, a name is found inside a run)
and its case rule. Then only the entries touched by a hit are decided: alias hits minus
those overlapped by an exclusion or lacking their context, rules whose groups co-occur in
the required scope, and the entry's own context.

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

Matching (:meth:`Matcher.match`, :meth:`Matcher.match_plain`) takes the short way:
only the entries with a *gate* that holds are decided (worked out when compiling: a term
that can make the entry match, and the term sets that need a hit too: a rule's other
groups, the entry's context), hits stay positions until looked at, and each entry's best
hit is all that is sought. Explaining walks every entry a hit mentions and every hit.
Both decide alike.

Modules: :mod:`bot.core.matching_text` (the word and sentence model, the compiled
structures, the results), :mod:`bot.core.matching_scan` (compiling, the gates, the
automaton and the scan), :mod:`bot.core.matching_rules` (deciding matches,
explanations); this module is the public face: :class:`Matcher`,
:func:`compile_watchlist`, :class:`Explanation`, :class:`Candidate`.

Text is compared in *match form*: ``bot.core.text.plain`` (HTML and entities removed,
NFKC, curly quotes / dashes / odd spaces folded), then ``match_form`` (hyphens as
spaces, name dots unified). Aliases go through the same folding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from bot.core.matching_rules import explain_item, match_item
from bot.core.matching_scan import CompiledWatchlist
from bot.core.matching_text import Candidate, Explanation
from bot.core.models import Match
from bot.core.watchlist import Watchlist
from bot.core.watchlist_inflect import inflected


class Matcher(CompiledWatchlist):
    """A compiled watchlist. Thread-safe; build with :func:`compile_watchlist`."""

    def __init__(self, watchlist: Watchlist) -> None:
        # phrases with ``inflect`` compile with their plural and verb forms (so
        # ``self.watchlist`` is the expanded watchlist: same entries, same ids)
        super().__init__(inflected(watchlist))

    def match(self, title: str, summary: str) -> list[Match]:
        """The entries the item matches, sorted by entry id, one Match per entry (a
        title hit preferred over a summary hit)."""
        return match_item(self, title, summary, is_plain=False)

    def match_plain(self, title: str, summary: str) -> list[Match]:
        """:meth:`match` for text already through :func:`bot.core.text.plain` (as
        stored and displayed): the same result, without normalising again."""
        return match_item(self, title, summary, is_plain=True)

    def explain(self, title: str, summary: str) -> Explanation:
        """Matches plus every candidate hit considered, accepted or rejected, with why."""
        return explain_item(self, title, summary)


# -- compile cache -----------------------------------------------------------------------

_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class _ByContent:
    """A watchlist as a cache key: equal when the content is (:meth:`Watchlist.content_hash`)."""

    key: str
    watchlist: Watchlist = field(compare=False, hash=False)


@lru_cache(maxsize=_CACHE_SIZE)
def _compile(wl: _ByContent) -> Matcher:
    return Matcher(wl.watchlist)


def compile_watchlist(wl: Watchlist) -> Matcher:
    """The compiled matcher for ``wl``, cached by the watchlist's content (the last
    64 watchlists compiled)."""
    return _compile(_ByContent(wl.content_hash(), wl))


__all__ = [
    "Candidate",
    "Explanation",
    "Matcher",
    "compile_watchlist",
]
