"""Matching and explaining take different paths through the matcher: ``match`` and
``match_plain`` decide only the entries whose gates hold (a term that can make the entry
match, with a hit for each of its other needs), keep hits as positions and look for the
best hit only; ``explain`` walks every entry a hit mentions and every hit. They must
decide alike: checked on the items and watchlists of ``benchmarks/match.py``.

(Matches and explanations identical to another revision's matcher, on the same items:
``python benchmarks/match.py --check REV``.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.core.matching import Matcher
from bot.core.text import plain
from bot.core.watchlist import Watchlist
from bot.watchlist_files import default_watchlist

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_match", ROOT / "benchmarks" / "match.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_match"] = module
    spec.loader.exec_module(module)
    return module


def _watchlist(bench: ModuleType, extra: int) -> Watchlist:
    wl = default_watchlist()
    return bench.big_watchlist(wl, extra, 5) if extra else wl


@pytest.mark.parametrize("extra", [0, 1000])
def test_matching_decides_as_explaining_does_on_the_benchmark_items(
    bench: ModuleType, extra: int
) -> None:
    wl = _watchlist(bench, extra)
    vocab = [t for t in bench.phrases(default_watchlist()) if t[0] not in "@$"]
    items = bench.make_items(1200, vocab, 5)
    m = Matcher(wl)
    matched = by_rule = 0
    for title, summary in items:
        why = m.explain(title, summary)
        want = list(why.matches)
        assert m.match(title, summary) == want, (title, summary)
        assert m.match_plain(plain(title), plain(summary)) == want, (title, summary)
        matched += bool(want)
        by_rule += any(" + " in x.alias for x in want)
        # what explaining accepts, matching finds: each match is an accepted candidate
        # (or an entry an accepted alias implies)
        accepted = {(c.entry_id, c.alias) for c in why.accepted}
        for x in want:
            implied = x.entry_id not in {c.entry_id for c in why.candidates}
            assert implied or (x.entry_id, x.alias) in accepted, (x, title, summary)
    # the set exercises matches, rules among them, not only misses
    assert matched >= 250
    assert by_rule >= 3


def test_an_entry_is_decided_when_one_of_its_gates_holds() -> None:
    """The gates: an alias (with the entry's context), or a rule's group with the fewest
    terms (with the rule's other groups and context, and the entry's context)."""
    wl = Watchlist.model_validate(
        {
            "entries": [
                {
                    "id": "talks",
                    "kind": "topic",
                    "name": "talks",
                    "aliases": ["trade talks"],
                    "context": [["China", "Beijing"]],
                    "rules": [{"all": [["tariff", "tariffs"], ["talks", "talk", "meeting"]]}],
                },
                {"id": "china", "kind": "topic", "name": "China", "aliases": ["China"]},
            ]
        }
    )
    m = Matcher(wl)

    def ids(title: str) -> list[str]:
        got = [x.entry_id for x in m.match(title, "")]
        assert got == [x.entry_id for x in m.explain(title, "").matches], title
        return got

    assert ids("trade talks resume") == []  # no context
    assert ids("trade talks with China resume") == ["china", "talks"]
    assert ids("talks on tariffs") == []  # the rule holds, the entry's context does not
    assert ids("Beijing: talks on tariffs") == ["talks"]
    assert ids("Beijing talks, then a meeting") == []  # one group of the rule only
    assert ids("China tariffs") == ["china"]
