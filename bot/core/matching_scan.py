"""Compiling a watchlist and scanning text for its terms (see :mod:`bot.core.matching`).

Every phrase the watchlist mentions becomes a :class:`~bot.core.matching_text._Term`; all
terms go into one Aho-Corasick automaton (pyahocorasick), which finds every occurrence of
every term in one pass over an item (title and summary); each hit is then checked for
its word boundaries (Latin script only) and its case rule. The *gates* of each entry
(:meth:`CompiledWatchlist._build_gates`) tell from the terms hit which entries matching
needs to decide. :class:`CompiledWatchlist` holds the result;
:class:`bot.core.matching.Matcher` adds matching and explanations on top.
"""

from __future__ import annotations

from collections.abc import KeysView, Sequence
from typing import Any

import ahocorasick

from bot.core.matching_text import (
    _SHORT_WORD,
    _alias_form,
    _AliasC,
    _EntryC,
    _Hit,
    _is_word_char,
    _lower,
    _mostly_upper,
    _numeral_after_name,
    _RuleC,
    _Term,
)
from bot.core.models import EntryKind
from bot.core.watchlist import Alias, Case, Entry, Rule, Watchlist

_NO_TERMS: frozenset[int] = frozenset()  # (shared: an empty set takes 200 bytes)


class CompiledWatchlist:
    """A watchlist compiled to terms and an automaton. Immutable once built."""

    def __init__(self, watchlist: Watchlist) -> None:
        self.watchlist = watchlist
        self._terms: list[_Term] = []
        self._term_by_spec: dict[tuple[str, str], _Term] = {}
        self._aliases: dict[Alias, _AliasC] = {}
        self._alias_list: list[_AliasC] = []
        self._entries: list[_EntryC] = []
        # term id -> entries to evaluate when the term is hit (explaining: every entry
        # that mentions the term)
        self._triggers: dict[int, set[int]] = {}
        for e in watchlist.entries:
            self._entries.append(self._compile_entry(e))
        self._gates = self._build_gates()
        self._by_key: dict[str, list[_Term]] = {}
        for t in self._terms:
            self._by_key.setdefault(t.key, []).append(t)
        self._automaton = self._build_automaton()
        self._group_positions: dict[int, dict[int, tuple[int, ...]]] = {}
        self._index_by_id = {e.id: e.index for e in self._entries}
        # the people the watchlist tracks: a meeting with one of them is a meeting with
        # a third party for a rule about others
        self._actor_aliases = tuple(
            a for e in self._entries if e.kind is EntryKind.ACTOR for a in e.aliases
        )

    def _positions(self, group: Sequence[_AliasC]) -> dict[int, tuple[int, ...]]:
        """Term id -> the positions of the group's aliases with that term. ``group`` is
        one of the compiled structures' (immutable) tuples, so it is cached by identity;
        built on first use (concurrent first uses build equal values)."""
        key = id(group)
        got = self._group_positions.get(key)
        if got is None:
            got = _positions_by_term(group)
            self._group_positions[key] = got
        return got

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
        exclude = tuple(self._term(x.text, x.case) for x in a.exclude)
        compiled = _AliasC(
            id=len(self._alias_list),
            text=a.text,
            term=self._term(a.text, a.case),
            exclude=exclude,
            context=tuple(tuple(self._alias(x) for x in g) for g in a.context),
            window=a.window,
            implies=a.implies,
            exclude_ids=frozenset(x.id for x in exclude) if exclude else _NO_TERMS,
        )
        self._aliases[a] = compiled
        self._alias_list.append(compiled)
        return compiled

    def _compile_entry(self, e: Entry) -> _EntryC:
        index = len(self._entries)
        entry_excl = tuple(self._term(x.text, x.case) for x in e.exclude)
        entry_excl_ids = frozenset(x.id for x in entry_excl)
        aliases = []
        for a in e.aliases:
            ac = self._alias(a)
            if entry_excl:
                # (the entry's set itself when the alias has none: shared, the common case)
                excl_ids = ac.exclude_ids | entry_excl_ids if ac.exclude_ids else entry_excl_ids
                ac = _AliasC(
                    id=-1,
                    text=ac.text,
                    term=ac.term,
                    exclude=ac.exclude + entry_excl,
                    context=ac.context,
                    window=ac.window,
                    implies=ac.implies,
                    exclude_ids=excl_ids,
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
        context = tuple(tuple(self._alias(x) for x in g) for g in e.context)
        return _EntryC(
            index=index,
            id=e.id,
            kind=e.kind,
            aliases=tuple(aliases),
            context=context,
            rules=tuple(rules),
            alias_terms=frozenset(a.term.id for a in aliases),
            alias_positions=_positions_by_term(aliases),
            context_terms=tuple(frozenset(a.term.id for a in g) for g in context),
            unless=bool(e.unless),
        )

    def _compile_rule(self, index: int, r: Rule) -> _RuleC:
        groups = tuple(tuple(self._alias(a) for a in g) for g in r.all)
        context = tuple(tuple(self._alias(a) for a in g) for g in r.context)
        group_terms = tuple(frozenset(a.term.id for a in g) for g in groups)
        return _RuleC(
            index=index,
            groups=groups,
            group_terms=group_terms,
            scope=r.scope,
            window=r.window,
            last_follows=r.last_follows,
            context=context,
            exclusive=r.exclusive,
            ordered=r.ordered,
            needs=group_terms + tuple(frozenset(a.term.id for a in g) for g in context),
        )

    def _build_automaton(self) -> Any:
        """One Aho-Corasick automaton (pyahocorasick) over every term's lower-cased key:
        a single pass over a field finds every occurrence of every term, overlaps
        included ("Hunter Biden" / "Biden"). The value of a key: its length less one,
        whether its first / last character is a word character (Latin script: a hit must
        not continue a word there; CJK has no word boundaries), its terms, and the one
        term's id when the key has one term without a case rule (the common case)."""
        automaton = ahocorasick.Automaton()
        for key, terms in self._by_key.items():
            first = terms[0]
            simple = first.id if len(terms) == 1 and not first.exact else None
            automaton.add_word(
                key, (len(key) - 1, first.bound_start, first.bound_end, tuple(terms), simple)
            )
        if self._by_key:
            automaton.make_automaton()
        return automaton

    def _build_gates(self) -> dict[int, tuple[tuple[int, tuple[frozenset[int], ...]], ...]]:
        """Term id -> a *gate* (entry index, term sets) for each entry the term can
        make match: an entry can match (before any check) when one of its gates has its
        term hit and a hit in each of its term sets. The gates: each alias's term, with
        the entry's context groups; for each rule, each term of its group with the
        fewest (a rule holds only with a hit in every group), with the entry's context
        groups and the rule's other groups and context groups."""
        gates: dict[int, dict[tuple[int, tuple[frozenset[int], ...]], None]] = {}
        for e in self._entries:
            gate = (e.index, e.context_terms)  # (one tuple shared by the terms)
            for term_id in sorted(e.alias_terms):
                gates.setdefault(term_id, {})[gate] = None
            for r in e.rules:
                if not r.group_terms:
                    continue
                fewest = min(r.group_terms, key=len)
                gate = (e.index, e.context_terms + tuple(g for g in r.needs if g is not fewest))
                for term_id in sorted(fewest):
                    gates.setdefault(term_id, {})[gate] = None
        return {term_id: tuple(got) for term_id, got in gates.items()}

    def _to_match(self, hits: dict[int, list[int]]) -> list[_EntryC]:
        """The entries worth deciding for an item's hits when matching (not
        explaining), in order: those with a gate that holds (:meth:`_build_gates`)."""
        gates = self._gates
        hit_terms = hits.keys()
        chosen: set[int] = set()
        for term_id in hits:
            got = gates.get(term_id)
            if got is None:
                continue
            for index, needs in got:
                if index in chosen:
                    continue
                for g in needs:
                    if hit_terms.isdisjoint(g):
                        break  # the common case: a rule word without the rest
                else:
                    chosen.add(index)
        if len(chosen) == 1:
            return [self._entries[chosen.pop()]]
        return list(map(self._entries.__getitem__, sorted(chosen)))

    # -- scanning -----------------------------------------------------------------------
    def _scan(
        self, title: str, summary: str, case_misses: list[_Hit] | None = None
    ) -> dict[int, list[int]]:
        """Every term hit in an item's title and summary (in match form) at word
        boundaries (Latin script) whose case rule holds: term id -> where each starts in
        the text read (the title, a line break, the summary: see :func:`_unpacked`), in
        text order; a hit failing its case rule goes to ``case_misses`` (when given), in
        text order. (Just ints: most hits are of words no entry needs, built into a
        :class:`_Hit` only when looked at.)"""
        hits: dict[int, list[int]] = {}
        if not self._by_key:
            return hits
        # one pass over both fields: no term has a line break (folded to a space), and
        # a line break is no word character: a field's edge is a word boundary
        text = f"{title}\n{summary}"
        cut = len(title)
        low = text.lower()  # (as each field's: the line break ends a final sigma's word)
        if len(low) != len(text):
            low = f"{_lower(title)}\n{_lower(summary)}"
        after = text[1:] + " "  # after[i]: the character after text[i]; a space at the end
        before = " " + text  # before[i]: the character before text[i]; a space first
        word = _WORD_CHARS
        get = hits.get
        # the automaton reports a hit at its end: one key's hits (of one length) come in
        # the order of their starts
        for last, (most, bound_start, bound_end, terms, simple) in self._automaton.iter(low):
            if bound_end and word[after[last]]:
                continue
            start = last - most
            if bound_start and word[before[start]]:
                continue
            if simple is not None:
                got = get(simple)
                if got is None:
                    hits[simple] = [start]
                else:
                    got.append(start)
                continue
            for term in terms:
                exact = term.exact
                if exact:
                    form = term.form
                    if text[start : last + 1] != form and any(
                        text[start + k] != form[k] for k in exact
                    ):
                        seg, at = (1, start - cut - 1) if start > cut else (0, start)
                        field = summary if seg else title
                        end = at + len(form)
                        # a field in capitals relaxes the case rules (_Segment.caps)
                        if not (_mostly_upper(field) and not _numeral_after_name(field, at, end)):
                            if case_misses is not None:
                                case_misses.append(_Hit(term, seg, at, end))
                            continue
                got = get(term.id)
                if got is None:
                    hits[term.id] = [start]
                else:
                    got.append(start)
        if case_misses:
            case_misses.sort(key=_hit_order)
        return hits


def _may_hold(needs: Sequence[frozenset[int]], hit_terms: KeysView[int]) -> bool:
    """Whether each of the term sets ``needs`` (a rule's groups, an entry's context
    groups...) has a term hit (before any check)."""
    for g in needs:  # noqa: SIM110 (a loop: faster than all() over a generator)
        if hit_terms.isdisjoint(g):
            return False
    return True


def _positions_by_term(group: Sequence[_AliasC]) -> dict[int, tuple[int, ...]]:
    """Term id -> the positions of the group's aliases with that term."""
    index: dict[int, list[int]] = {}
    for i, a in enumerate(group):
        index.setdefault(a.term.id, []).append(i)
    return {tid: tuple(ps) for tid, ps in index.items()}


def _hit_order(h: _Hit) -> tuple[int, int, int]:
    """Text order, shorter first (the order of the former trie walk), stable for the
    terms that share a key."""
    return (h.seg, h.start, h.end)


class _WordChars(dict[str, bool]):
    """Character -> :func:`_is_word_char`, filled on first sight (a bounded number)."""

    _LIMIT = 1 << 16

    def __missing__(self, ch: str) -> bool:
        got = _is_word_char(ch)
        if len(self) < self._LIMIT:
            self[ch] = got
        return got


_WORD_CHARS = _WordChars()
