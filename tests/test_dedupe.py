"""Canonical links and dedupe keys; cross-feed dedupe through the real SQL storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.core.models import FeedSource, Item
from bot.feeds.dedupe import canonical_link, dedupe_keys, keys_for_batch, link_key
from bot.storage.sql import SqlStorage


def item(guid: str, link: str | None, feed_url: str = "https://a.example/feed") -> Item:
    return Item(
        guid=guid,
        title="t",
        summary="s",
        link=link,
        canonical_link=canonical_link(link),
        published=None,
        feed_url=feed_url,
        source="A",
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTPS://News.Example.COM/World/Story?b=2&a=1",
            "https://news.example.com/World/Story?a=1&b=2",
        ),
        ("https://news.example:443/x", "https://news.example/x"),
        ("http://news.example:80/x", "http://news.example/x"),
        ("http://news.example:8080/x", "http://news.example:8080/x"),
        ("https://news.example/x#comments", "https://news.example/x"),
        (
            "https://news.example/x?utm_source=rss&utm_medium=feed&id=7&fbclid=abc&gclid=1",
            "https://news.example/x?id=7",
        ),
        (
            "https://news.example/x?mc_cid=1&mc_eid=2&ref=home&cmpid=rss&ocid=win&ns_mchannel=a"
            "&at_medium=b&_ga=3&igshid=4&WT.mc_id=5",
            "https://news.example/x",
        ),
        ("https://news.example/2023/10/26/story/", "https://news.example/2023/10/26/story"),
        ("https://news.example", "https://news.example/"),
        ("https://news.example/", "https://news.example/"),
        ("https://user:pw@news.example/x", "https://news.example/x"),
        ("https://news.example/%7euser/%e6%96%b0", "https://news.example/~user/%E6%96%B0"),
        ("https://news.example/新闻", "https://news.example/%E6%96%B0%E9%97%BB"),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("  https://news.example/x  ", "https://news.example/x"),
    ],
)
def test_canonical_link(url: str, expected: str) -> None:
    assert canonical_link(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "HTTPS://News.Example.COM/World/Story/?b=2&a=1&utm_source=x#c",
        "https://www.news.example/%7euser/./a/../b//amp",
        "https://news.example/a;b?c=d;e&amp;f=g",
        "https://news.example/a b?q=x y",
        "https://bücher.example/ä?ü=1",
        "https://news.example/p%2Fq?x=%2f&y=%zz",
        "https://user:pw@news.example./a",
        "http://www.\\u8a79\\u59c6.com/feed",  # a backslash w3lib reads as a slash
    ],
)
def test_canonical_link_is_idempotent_so_keys_need_it_once(url: str) -> None:
    """The parser gives every item its canonical link; the dedupe keys are taken from it
    without canonicalising again (issue 9): the same keys as from the raw link."""
    canon = canonical_link(url)
    assert canon is not None
    assert canonical_link(canon) == canon
    assert dedupe_keys(item("g", url))[0] == link_key(url)


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "mailto:desk@news.example",
        "/relative/path",
        "https://",
        "ftp://x.example/f",
        "http://news.example:99999/x",
        "javascript:alert(1)",
    ],
)
def test_canonical_link_rejects_non_http(url: str | None) -> None:
    assert canonical_link(url) is None


def test_keeps_meaningful_query_params() -> None:
    assert canonical_link("https://news.example/article.php?id=42&page=2") == (
        "https://news.example/article.php?id=42&page=2"
    )
    # a parameter that merely starts like a tracking one is kept
    assert canonical_link("https://news.example/x?reference=9") == (
        "https://news.example/x?reference=9"
    )


def test_canonical_link_equates_spellings_of_one_url() -> None:
    # one canonical form whatever the escaping, the parameter order or dot segments
    same = [
        "https://news.example/a/b?q=x y&id=1",
        "https://news.example/a/b?id=1&q=x+y",
        "https://news.example/a/b?id=1&q=x%20y",
        "https://news.example/a/./c/../b/?q=x%20y&id=1&utm_source=rss",
        "HTTPS://NEWS.EXAMPLE:443/a/b?q=x y&id=1#top",
    ]
    assert len({canonical_link(u) for u in same}) == 1
    assert canonical_link(same[0]) == "https://news.example/a/b?id=1&q=x+y"
    # repeated and blank parameters are kept (they may matter to the site)
    assert canonical_link("https://news.example/x?b=&a=2&a=1&c") == (
        "https://news.example/x?a=1&a=2&b=&c="
    )
    # a tracking parameter's name is compared decoded; a bare "?" goes
    assert canonical_link("https://news.example/x?%75tm_source=rss") == "https://news.example/x"
    assert canonical_link("https://news.example/x?") == "https://news.example/x"
    assert canonical_link("https://news.example./x") == "https://news.example/x"
    assert canonical_link("http://[2001:DB8::1]:8080/x") == "http://[2001:db8::1]:8080/x"


def test_link_key_ignores_scheme_and_www() -> None:
    a = link_key("http://www.news.example/story?utm_campaign=x")
    b = link_key("https://news.example/story/")
    assert a == b == "link:news.example/story"
    # mobile and AMP copies of an article are the article
    assert link_key("https://m.news.example/story") == a
    assert link_key("https://amp.news.example//story/amp") == a
    assert link_key("https://news.example/story?id=3") == "link:news.example/story?id=3"
    assert link_key("https://news.example/?p=3") == "link:news.example/?p=3"
    # but a host that is only "m.example" keeps its name
    assert link_key("https://m.example/story") == "link:m.example/story"
    # a site's home page identifies no article
    assert link_key("https://news.example/") is None
    assert link_key("https://news.example/?utm_source=x") is None


def test_dedupe_keys_global_guids() -> None:
    assert dedupe_keys(item("urn:uuid:1234-5678", "https://a.example/s")) == [
        "link:a.example/s",
        "guid:urn:uuid:1234-5678",
    ]
    assert dedupe_keys(item("tag:a.example,2023:story-9", None)) == [
        "guid:tag:a.example,2023:story-9",
    ]
    # a URL guid is canonicalised like a link
    assert dedupe_keys(item("http://www.a.example/?p=123&utm_source=x", None)) == [
        "guid:a.example/?p=123",
    ]


def test_bare_guids_are_scoped_to_their_feed() -> None:
    one = item("1", None, feed_url="https://a.example/feed")
    other = item("1", None, feed_url="https://b.example/rss")
    assert dedupe_keys(one) == ["guid:https://a.example/feed#1"]
    assert set(dedupe_keys(one)).isdisjoint(dedupe_keys(other))


def test_batch_drops_a_link_shared_by_different_items() -> None:
    # some feeds link every entry to the same page: the link then identifies nothing
    batch = [
        item("a-1", "https://live.example/blog"),
        item("a-2", "https://live.example/blog"),
        item("a-3", "https://live.example/other"),
    ]
    keys = {i.guid: k for i, k in keys_for_batch(batch)}
    assert keys["a-1"] == ["guid:https://a.example/feed#a-1"]
    assert keys["a-2"] == ["guid:https://a.example/feed#a-2"]
    assert keys["a-3"] == ["link:live.example/other", "guid:https://a.example/feed#a-3"]


@pytest.fixture
async def storage() -> AsyncIterator[SqlStorage]:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    yield s
    await s.close()


async def test_storage_dedupes_within_and_across_feeds(storage: SqlStorage) -> None:
    await storage.sync_config_feeds(
        [
            FeedSource("https://a.example/feed", "A"),
            FeedSource("https://b.example/rss", "B"),
        ]
    )
    fa, fb = await storage.feed_states()
    at = datetime(2023, 11, 1, tzinfo=UTC)
    story = item("1", "https://wire.example/2023/wang-yi?utm_source=a", fa.url)
    repeated = item("1", "https://wire.example/2023/wang-yi?utm_source=a", fa.url)
    new_a = await storage.insert_items(fa.id, keys_for_batch([story, repeated]), fetched_at=at)
    assert [s.item.guid for s in new_a] == ["1"]
    # the next fetch re-issues the story under a new guid, same page: still a duplicate
    reissued = item("2", "http://www.wire.example/2023/wang-yi/#top", fa.url)
    assert await storage.insert_items(fa.id, keys_for_batch([reissued]), fetched_at=at) == []
    # feed B carries the same story with other tracking params, and an unrelated "1"
    via_b = item("b-77", "https://wire.example/2023/wang-yi?fbclid=zz", fb.url)
    bare_one = item("1", "https://b.example/other", fb.url)
    new_b = await storage.insert_items(fb.id, keys_for_batch([via_b, bare_one]), fetched_at=at)
    assert [s.item.guid for s in new_b] == ["1"]
    assert new_b[0].feed_id == fb.id
