"""Compiling a watchlist and scanning text for its terms (see :mod:`bot.core.matching`).

Every phrase the watchlist mentions becomes a :class:`~bot.core.matching_text._Term`; all
terms go into one character trie, and one regular expression finds the places a term can
begin. :class:`CompiledWatchlist` holds the result; :class:`bot.core.matching.Matcher`
adds matching and explanations on top.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.core.matching_text import (
    _SHORT_WORD,
    _alias_form,
    _AliasC,
    _EntryC,
    _Hit,
    _is_word_char,
    _lower,
    _numeral_after_name,
    _RuleC,
    _Segment,
    _Term,
)
from bot.core.models import EntryKind
from bot.core.watchlist import Alias, Case, Entry, Rule, Watchlist

#: Not right after an ASCII letter or digit (see ``_build_scanner``).
_AFTER_NO_LATIN_WORD = r"(?<![A-Za-z0-9])"


class CompiledWatchlist:
    """A watchlist compiled to terms, a trie and a scanner. Immutable once built."""

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
    def _term(self, text: str, case: Case) -> _Term:
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
        boundaries). The trie walk from each such place is the automaton proper.

        The word-start look-behind is only a fast pre-filter (``re``, no script
        classes): it rules out a place right after an ASCII letter or digit; the scan
        then checks every hit's boundaries with :func:`_is_word_char`."""

        def charset(chars: Iterable[str]) -> str:
            return "[" + "".join(re.escape(c) for c in sorted(chars)) + "]"

        latin = [ch for ch in self._trie if _is_word_char(ch)]
        other = [ch for ch in self._trie if not _is_word_char(ch)]
        parts = []
        if latin:
            parts.append(f"{_AFTER_NO_LATIN_WORD}{charset(latin)}")
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
