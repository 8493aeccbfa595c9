"""What rule features beyond the scanner need (see :mod:`bot.core.matching_rules`): an
entry's ``unless`` phrases, compiled apart in a second, small scanner (so the main one
knows nothing of them), and the order check of ``ordered`` (actor/action/target) rules.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.matching_scan import CompiledWatchlist
from bot.core.matching_text import _AliasC, _Hit
from bot.core.models import EntryKind
from bot.core.watchlist import Entry, Watchlist

# -- unless: veto phrases anywhere in the title and lead --------------------------------


@dataclass(frozen=True, slots=True)
class _Unless:
    """The ``unless`` phrases of a watchlist, compiled on their own (a second, small
    scanner, so the main one needs no knowledge of them): entry index -> phrases."""

    compiled: CompiledWatchlist | None
    by_entry: dict[int, tuple[_AliasC, ...]]


_UNLESS: weakref.WeakKeyDictionary[CompiledWatchlist, _Unless] = weakref.WeakKeyDictionary()
_UNLESS_LOCK = threading.Lock()


def unless_of(m: CompiledWatchlist) -> _Unless:
    with _UNLESS_LOCK:
        done = _UNLESS.get(m)
    if done is not None:
        return done
    vetoing = [(i, e) for i, e in enumerate(m.watchlist.entries) if e.unless]
    if not vetoing:
        result = _Unless(None, {})
    else:
        aux = CompiledWatchlist(
            Watchlist(
                entries=tuple(
                    Entry(
                        id=f"unless-{i}",
                        kind=EntryKind.TOPIC,
                        name="unless",
                        aliases=e.unless,
                        match_name=False,
                    )
                    for i, e in vetoing
                )
            )
        )
        result = _Unless(aux, {i: aux._entries[k].aliases for k, (i, _) in enumerate(vetoing)})
    with _UNLESS_LOCK:
        _UNLESS[m] = result
    return result


def in_order(combo: Sequence[tuple[_Hit, _AliasC]]) -> bool:
    """Each group's hit after the previous group's (title before summary)."""
    return all((a.seg, a.end) <= (b.seg, b.start) for (a, _), (b, _) in itertools.pairwise(combo))


__all__ = ["in_order", "unless_of"]
