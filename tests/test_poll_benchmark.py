"""The pieces of ``benchmarks/cycle.py`` (its ``--quick`` run takes longer than a test
should on 2 shared cores, so it is not run here): the documents it serves, the config
it polls with, and how it judges the figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import feedparser
import pytest

from bot.app import load_config
from bot.feeds.parse import parse_feed_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cycle() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cycle", ROOT / "benchmarks" / "cycle.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cycle"] = module
    spec.loader.exec_module(module)
    return module


def test_documents_are_deterministic_feeds_of_n_items_with_some_syndicated_copies(
    cycle: ModuleType,
) -> None:
    docs = cycle.build_feeds(40, 50, 7)
    assert docs == cycle.build_feeds(40, 50, 7)
    assert docs != cycle.build_feeds(40, 50, 8)
    sizes = [len(d) for d in docs]
    assert 15_000 < sum(sizes) / len(sizes) < 60_000  # ~0.5 kB an item
    parsed = [parse_feed_bytes(d, url=f"http://x.test/{i}") for i, d in enumerate(docs)]
    assert all(len(p.items) == 50 for p in parsed)
    assert all(len(feedparser.parse(d).entries) == 50 for d in docs[:3])  # the floor's parse
    links = [it.canonical_link for p in parsed for it in p.items]
    copies = len(links) - len(set(links))
    assert 0 < copies < len(links) * 0.1  # about one item in 20 is another feed's story


def test_a_third_etag_a_third_last_modified_a_third_neither(cycle: ModuleType) -> None:
    kinds = [cycle.validators(i) for i in range(9)]
    assert sum(1 for e, lm in kinds if e and not lm) == 3
    assert sum(1 for e, lm in kinds if lm and not e) == 3
    assert sum(1 for e, lm in kinds if not e and not lm) == 3


def test_the_config_it_writes_is_the_one_briefbot_loads(cycle: ModuleType, tmp_path: Path) -> None:
    urls = cycle.feed_urls(["http://127.0.0.1:1", "http://127.0.0.2:2"], 5)
    assert urls[:3] == [
        "http://127.0.0.1:1/feed/0.xml",
        "http://127.0.0.2:2/feed/1.xml",
        "http://127.0.0.1:1/feed/2.xml",
    ]
    cycle.write_config(tmp_path / "cfg", tmp_path / "data", urls)
    config = load_config(tmp_path / "cfg")
    assert [f.url for f in config.feeds] == urls
    assert config.settings.storage.resolved_url().endswith(str(tmp_path / "data" / "briefbot.db"))


def test_percentiles_and_verdicts(cycle: ModuleType) -> None:
    assert cycle.percentile([], 0.99) == 0.0
    values = [float(i) for i in range(1, 101)]
    assert cycle.percentile(values, 0.5) == 51.0  # nearest rank
    assert cycle.percentile(values, 0.99) == 99.0

    def size(cold: float, warm: float, p99: float, rss: float, per_feed: float) -> dict:
        return {
            "cold_ratio": cold,
            "warm_ratio": warm,
            "cold": {"p99_ms": p99},
            "warm": {"p99_ms": p99 / 2},
            "rss_peak_mb": rss,
            "per_feed_vs_smallest": per_feed,
        }

    good = {
        "sizes": {
            "100": size(3, 0.2, 50, 100, 1.0),
            "1000": size(2.0, 0.1, 150, 200, 1.1),
            "3000": size(2.1, 0.1, 180, 390, 1.2),
        }
    }
    assert all(cycle.verdicts(good).values())
    assert set(cycle.verdicts(good)) == {
        "cold_1000_le_2.5x",
        "warm_1000_le_0.15x",
        "p99_le_200ms",
        "rss_3000_le_400mb",
        "linear",
    }
    bad = {"sizes": {"100": size(3, 0.2, 50, 100, 1.0), "1000": size(2.6, 0.2, 250, 200, 1.5)}}
    assert cycle.verdicts(bad) == {
        "cold_1000_le_2.5x": False,
        "warm_1000_le_0.15x": False,
        "p99_le_200ms": False,
        "linear": False,
    }
