"""Deciding matches (see :mod:`bot.core.matching`): for one item, which entries its term
hits make count (exclusions, context, rules and their scopes, exclusive rules' third
parties, implied entries), and the :class:`Explanation` of every candidate considered.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bot.core.matching_order import in_order as _in_order
from bot.core.matching_order import unless_of as _unless_of
from bot.core.matching_scan import CompiledWatchlist, _may_hold
from bot.core.matching_text import (
    Candidate,
    Explanation,
    _AliasC,
    _describe,
    _EntryC,
    _Found,
    _Hit,
    _item_segments,
    _partner_spans,
    _RuleC,
    _Segment,
    _Term,
    _tied,
    _unpacked,
)
from bot.core.models import Field, Match
from bot.core.text import match_form, plain


class _Evaluation:
    """The state of matching one item."""

    __slots__ = (
        "_actor_spans",
        "_hit_lists",
        "_present",
        "_unless_hits",
        "accepted",
        "candidates",
        "case_misses",
        "cut",
        "explain",
        "hits",
        "implied",
        "m",
        "segments",
    )

    def __init__(
        self,
        matcher: CompiledWatchlist,
        segments: list[_Segment],
        hits: dict[int, list[int]],
        case_misses: list[_Hit] | None = None,
        *,
        explain: bool,
    ) -> None:
        self.m = matcher
        self.explain = explain
        self.segments = segments
        self.case_misses = case_misses
        # term id -> where it is hit (see :func:`_unpacked`); the hits: :meth:`hits_of`
        self.hits = hits
        self.cut = len(segments[0].text)
        self._hit_lists: dict[int, list[_Hit]] = {}
        self.accepted: dict[int, list[_Hit]] = {}
        self.candidates: list[Candidate] = []
        self.implied: list[tuple[str, _Found]] = []
        self._actor_spans: list[list[tuple[int, int]]] | None = None
        self._present: dict[int, list[_AliasC]] = {}
        self._unless_hits: dict[int, list[int]] | None = None

    def hits_of(self, term: _Term) -> list[_Hit]:
        """The hits of a term, in text order."""
        got = self._hit_lists.get(term.id)
        if got is None:
            cut = self.cut
            got = [_unpacked(term, at, cut) for at in self.hits.get(term.id, ())]
            self._hit_lists[term.id] = got
        return got

    def _veto(self, e: _EntryC) -> str | None:
        """The entry's ``unless`` phrase found in the title or the lead, if any."""
        if not e.unless:
            return None
        unless = _unless_of(self.m)
        phrases = unless.by_entry.get(e.index)
        if not phrases or unless.compiled is None:
            return None
        if self._unless_hits is None:
            title, summary = self.segments
            self._unless_hits = unless.compiled._scan(title.text, summary.text)
        for a in phrases:
            for at in self._unless_hits.get(a.term.id, ()):
                h = _unpacked(a.term, at, self.cut)
                if h.seg == 0 or self.segments[1].in_lead(h.start):
                    where = "title" if h.seg == 0 else "lead"
                    return f"vetoed: unless {a.text!r} (in the {where})"
        return None

    # an alias's hits that count, with the reasons others do not
    def _excluded_by(self, a: _AliasC, at: int, end: int) -> _Term | None:
        """The first exclusion of the alias with a hit overlapping its hit at
        ``at``..``end`` (where the scanner gives them: hits in two fields never
        overlap), if any."""
        hits = self.hits
        if hits.keys().isdisjoint(a.exclude_ids):
            return None
        for x in a.exclude:
            found = hits.get(x.id)
            if found is not None:
                n = len(x.key)
                for x_at in found:
                    if x_at < end and at < x_at + n:
                        return x
        return None

    def _check(self, a: _AliasC, hit: _Hit) -> str | None:
        if a.exclude_ids:
            at = hit.start + hit.seg * (self.cut + 1)
            x = self._excluded_by(a, at, at + hit.end - hit.start)
            if x is not None:
                return f"excluded by {x.form!r}"
        for group in a.context:
            if not self._context_near(group, hit, a.window):
                if not self.explain:
                    return "needs context"
                where = f" within {a.window} words" if a.window else ""
                return f"needs context{where}: one of {_describe(group)}"
        return None

    def _context_near(self, group: Sequence[_AliasC], hit: _Hit, window: int | None) -> bool:
        for c in self.present(group):
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

    def present(self, group: Sequence[_AliasC]) -> list[_AliasC]:
        """The aliases of ``group`` whose term is hit, in the group's order: found from
        the (few) hits, not by walking the (possibly long) group."""
        key = id(group)
        got = self._present.get(key)
        if got is None:
            index = self.m._positions(group)
            positions = [p for tid in self.hits if tid in index for p in index[tid]]
            positions.sort()
            got = [group[p] for p in positions]
            self._present[key] = got
        return got

    def ok(self, a: _AliasC) -> list[_Hit]:
        done = self.accepted.get(a.id)
        if done is not None:
            return done
        self.accepted[a.id] = []  # guards against a (malformed) context cycle
        out = [h for h in self.hits_of(a.term) if self._check(a, h) is None]
        self.accepted[a.id] = out
        return out

    def _group_hits(self, group: Sequence[_AliasC]) -> list[tuple[_Hit, _AliasC]]:
        out = [(h, a) for a in self.present(group) for h in self.ok(a)]
        out.sort(key=lambda x: (x[0].seg, x[0].start))
        return out

    def _groups_ok(self, groups: Sequence[Sequence[_AliasC]]) -> str | None:
        for g in groups:
            if not any(self.ok(a) for a in self.present(g)):
                return f"no {_describe(g)} in the item" if self.explain else "no context"
        return None

    # -- exclusive rules: is a relation word tied to a third name? --------------------
    def actor_spans(self, seg: int) -> list[tuple[int, int]]:
        """(start, end) of every accepted hit of a tracked person in a field."""
        if self._actor_spans is None:
            spans: list[list[tuple[int, int]]] = [[], []]
            for a in self.present(self.m._actor_aliases):
                for h in self.ok(a):
                    spans[h.seg].append((h.start, h.end))
            self._actor_spans = spans
        return self._actor_spans[seg]

    def _tie(
        self, hit: _Hit, partners: Sequence[tuple[int, int]], *, after_only: bool = False
    ) -> int:
        """:func:`_tied`, with the tracked people of the hit's field."""
        seg = self.segments[hit.seg]
        return _tied(seg, hit, partners, self.actor_spans(hit.seg), after_only=after_only)

    def _named_partner(self, hit: _Hit, combo: Sequence[tuple[_Hit, _AliasC]]) -> bool:
        """In a spread over title and lead, the relation word must name its partner
        where it stands: "... a meeting with Biden", not "Biden talks tough"."""
        partners = [(h.start, h.end) for h, _ in combo[:-1] if h.seg == hit.seg]
        return bool(partners) and self._tie(hit, partners, after_only=True) == 1

    def _rule(self, r: _RuleC, ordered: bool = False) -> tuple[_Found | None, str]:
        per_group = [self._group_hits(g) for g in r.groups]
        if r.exclusive and all(per_group):
            partners = _partner_spans(per_group)
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
        if r.window is None and r.scope == "item" and not ordered:
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
                if ordered and not _in_order(combo):
                    continue
                return self._found(seg, list(combo)), ""
        if r.scope == "lead":
            found = self._lead_spread(r, per_group, ordered)
            if found is not None:
                return found, ""
        if not self.explain:
            return None, ""
        if r.window is not None:
            in_order = " in this order" if ordered else ""
            return None, f"not within {r.window} words{in_order}: " + " + ".join(
                _describe(g, 2) for g in r.groups
            )
        order = ", with the last after another" if r.last_follows else ""
        if ordered:
            order = ", in this order"
        where = "one sentence" if r.scope == "sentence" else "one sentence or title + lead"
        return None, f"not in {where}" + order + ": " + " + ".join(
            _describe(g, 2) for g in r.groups
        )

    def _lead_spread(
        self,
        r: _RuleC,
        per_group: list[list[tuple[_Hit, _AliasC]]],
        ordered: bool = False,
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
            if ordered and not _in_order(combo):
                continue
            return self._found(1, list(combo))
        return None

    def _found(self, seg: int, chosen: Sequence[tuple[_Hit, _AliasC]]) -> _Found:
        return _Found(
            field=self.segments[seg].field,
            pos=min(h.start for h, _ in chosen),
            alias=" + ".join(a.text for _, a in chosen),
        )

    def _vetoed(self, e: _EntryC, why: str) -> None:
        if not self.explain:
            return
        for a in e.aliases:
            for h in self.hits_of(a.term):
                seg = self.segments[h.seg]
                snippet = seg.snippet(h.start, h.end)
                self.candidates.append(Candidate(e.id, a.text, seg.field, False, why, snippet))
        if not any(c.entry_id == e.id for c in self.candidates):
            self.candidates.append(Candidate(e.id, "rules", Field.SUMMARY, False, why))

    def _entry(self, e: _EntryC) -> _Found | None:
        """Explaining an entry: its best hit (:meth:`_entry_match` when matching), and a
        candidate for each of its alias hits and each rule looked at."""
        veto = self._veto(e)
        if veto is not None:
            self._vetoed(e, veto)
            return None
        found: list[_Found] = []
        context_why = self._groups_ok(e.context) if e.context else None
        hit_terms = self.hits.keys()
        for a in self.present(e.aliases):
            # nothing to check (the common case): no context, no exclusion hit
            checked = bool(a.context) or not hit_terms.isdisjoint(a.exclude_ids)
            for h in self.hits_of(a.term):
                why = self._check(a, h) if checked else None
                if why is None and context_why:
                    why = f"entry context: {context_why}"
                seg = self.segments[h.seg]
                if why is None:
                    found.append(_Found(seg.field, h.start, a.text))
                    for target in a.implies:
                        self.implied.append((target, found[-1]))
                self.candidates.append(
                    Candidate(
                        e.id, a.text, seg.field, why is None, why or "", seg.snippet(h.start, h.end)
                    )
                )
        for r in e.rules:
            present = sum(1 for g in r.groups if any(self.ok(a) for a in g))
            if present < min(2, len(r.groups)):
                continue
            f, why = self._rule(r, r.ordered)
            if f is not None and context_why:
                f, why = None, f"entry context: {context_why}"
            if f is not None:
                found.append(f)
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

    def _entry_match(self, e: _EntryC) -> Match | None:
        """:meth:`_entry` when not explaining: the same result, from the fewest hits
        (the first in the title, else the first in the summary; on a tie, the first
        alias, then the first rule)."""
        if e.unless and self._veto(e) is not None:
            return None
        if e.context and self._groups_ok(e.context):
            return None  # without its context, no hit of the entry counts
        hits = self.hits
        hit_terms = hits.keys()
        cut = self.cut
        best = -1  # where the best hit is (as the scanner gives it), -1 for none yet
        alias = ""
        # the aliases hit, in the entry's order (usually one)
        positions: list[int] = []
        for term_id in e.alias_terms.intersection(hits):
            positions += e.alias_positions[term_id]
        if len(positions) > 1:
            positions.sort()
        aliases = e.aliases
        for p in positions:
            a = aliases[p]
            if a.context or a.implies:
                for h in self.hits_of(a.term):
                    if self._check(a, h) is None:
                        for target in a.implies:
                            at_hit = _Found(self.segments[h.seg].field, h.start, a.text)
                            self.implied.append((target, at_hit))
                        at = h.start + h.seg * (cut + 1)
                        if best < 0 or at < best:
                            best, alias = at, a.text
            elif hit_terms.isdisjoint(a.exclude_ids):
                # every hit counts: the first (a term's hits are in text order)
                at = hits[a.term.id][0]
                if best < 0 or at < best:
                    best, alias = at, a.text
            else:  # the first hit no exclusion overlaps
                n = len(a.term.key)
                for at in hits[a.term.id]:
                    if self._excluded_by(a, at, at + n) is None:
                        if best < 0 or at < best:
                            best, alias = at, a.text
                        break
        for r in e.rules:
            if 0 <= best < cut:
                break  # in the title: no rule does better
            if _may_hold(r.needs, hit_terms):
                found, _ = self._rule(r, r.ordered)
                if found is not None:
                    at = found.pos if found.field is Field.TITLE else found.pos + cut + 1
                    if best < 0 or at < best:
                        best, alias = at, found.alias
        if best < 0:
            return None
        return Match(e.id, alias, self.segments[best > cut].field)

    def matches(self, entries: list[_EntryC]) -> list[Match]:
        """The matches (not explaining) among ``entries`` (those that may match, in
        order: :meth:`CompiledWatchlist._to_match`): :meth:`run`'s, without the
        explanation."""
        matches: list[Match] = []
        for e in entries:
            match = self._entry_match(e)
            if match is not None:
                matches.append(match)
        if self.implied:
            self._add_implied(matches)
        if len(matches) > 1:
            matches.sort(key=lambda m: m.entry_id)
        return matches

    def _add_implied(self, matches: list[Match]) -> None:
        """The entries the matched aliases imply, not matched already."""
        matched = {m.entry_id for m in matches}
        index_by_id = self.m._index_by_id
        for target, f in sorted(
            self.implied, key=lambda x: (x[0], x[1].field is not Field.TITLE, x[1].pos)
        ):
            if target not in matched and target in index_by_id:
                matched.add(target)
                matches.append(Match(entry_id=target, alias=f.alias, field=f.field))

    def run(self) -> Explanation:
        """The matches and the explanation (explaining)."""
        if not self.hits and not self.case_misses:
            return Explanation(matches=())  # the common case: no term in the item
        touched: set[int] = set()
        triggers = self.m._triggers
        for term_id in self.hits:
            triggered = triggers.get(term_id)
            if triggered:
                touched |= triggered
        matches = []
        entries = self.m._entries
        for index in sorted(touched):
            e = entries[index]
            f = self._entry(e)
            if f is not None:
                matches.append(Match(entry_id=e.id, alias=f.alias, field=f.field))
        if self.implied:
            self._add_implied(matches)
        if self.case_misses:
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


def match_item(m: CompiledWatchlist, title: str, summary: str, *, is_plain: bool) -> list[Match]:
    """:meth:`bot.core.matching.Matcher.match` (and ``match_plain``, for text already
    through :func:`plain`)."""
    if not is_plain:
        title, summary = plain(title or ""), plain(summary or "")
    title, summary = match_form(title or ""), match_form(summary or "")
    hits = m._scan(title, summary)
    if not hits:
        return []  # the common case: no term in the item
    entries = m._to_match(hits)
    if not entries:
        return []  # the next most common: only words of rules that cannot hold
    return _Evaluation(m, _item_segments(title, summary), hits, explain=False).matches(entries)


def explain_item(m: CompiledWatchlist, title: str, summary: str) -> Explanation:
    """:meth:`bot.core.matching.Matcher.explain`."""
    title, summary = match_form(plain(title or "")), match_form(plain(summary or ""))
    case_misses: list[_Hit] = []
    hits = m._scan(title, summary, case_misses)
    segments = _item_segments(title, summary)
    return _Evaluation(m, segments, hits, case_misses, explain=True).run()
