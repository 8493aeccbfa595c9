"""Parsing feed bytes into Items: formats, fallbacks, bad input, the executor."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedserver import atom, rss

from bot.errors import ParseError
from bot.feeds.parse import ParsedFeed, ParserPool, parse_feed_bytes

NOW = datetime(2023, 11, 15, tzinfo=UTC)
URL = "https://wire.example/world/rss.xml"


def parse(body: bytes, **kw: object) -> ParsedFeed:
    return parse_feed_bytes(body, url=URL, now=NOW, **kw)  # type: ignore[arg-type]


def test_rss2_items() -> None:
    body = rss(
        [
            {
                "title": "Wang Yi to visit Washington &amp; meet Blinken",
                "link": "/2023/10/24/wang-yi?utm_source=rss",
                "guid": "wire-1001",
                "description": "<p>The foreign minister&#8217;s trip runs Oct. 26&ndash;28.</p>",
                "pubDate": "Tue, 24 Oct 2023 09:30:00 +0800",
            }
        ],
        title="The Wire: World",
    )
    parsed = parse(body, source="The Wire")
    assert parsed.title == "The Wire: World"
    assert parsed.bozo_warning is None
    (item,) = parsed.items
    assert item.guid == "wire-1001"
    assert item.title == "Wang Yi to visit Washington &amp; meet Blinken"
    assert "foreign minister" in item.summary
    assert item.link == "https://wire.example/2023/10/24/wang-yi?utm_source=rss"
    assert item.canonical_link == "https://wire.example/2023/10/24/wang-yi"
    assert item.published == datetime(2023, 10, 24, 1, 30, tzinfo=UTC)
    assert item.published.tzinfo is not None
    assert item.feed_url == URL
    assert item.source == "The Wire"
    assert item.lang == "en"


def test_relative_links_resolve_against_the_final_url() -> None:
    body = rss([{"title": "a", "link": "story.html"}])
    (item,) = parse(body, base_url="https://mirror.example/feeds/x.xml").items
    assert item.link == "https://mirror.example/feeds/story.html"
    assert item.feed_url == URL  # identity stays the configured URL


def test_atom_with_content_and_updated_only() -> None:
    body = atom(
        [
            {
                "id": "tag:ledger.example,2023:1",
                "title": "Yellen and He Lifeng agree to working groups",
                "link": "https://ledger.example/a/1",
                "content": "<div>Economic and financial working groups.</div>",
                "updated": "2023-09-22T14:00:00Z",
            }
        ],
        title="Ledger",
    )
    parsed = parse(body)
    (item,) = parsed.items
    assert item.summary == "<div>Economic and financial working groups.</div>"
    assert item.published == datetime(2023, 9, 22, 14, 0, tzinfo=UTC)
    assert item.guid == "tag:ledger.example,2023:1"
    assert item.source == "Ledger"  # no configured name: the feed's title


def test_rdf_rss1() -> None:
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
  xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://monitor.example/"><title>Monitor</title>
    <link>https://monitor.example/</link><description>d</description></channel>
  <item rdf:about="https://monitor.example/putin-bri">
    <title>Putin heads to Beijing for Belt and Road Forum</title>
    <link>https://monitor.example/putin-bri</link>
    <description>Oct. 17-18.</description>
    <dc:date>2023-10-16T08:00:00+00:00</dc:date>
  </item>
</rdf:RDF>"""
    (item,) = parse(body).items
    assert item.title.startswith("Putin heads")
    assert item.guid == "https://monitor.example/putin-bri"
    assert item.published == datetime(2023, 10, 16, 8, 0, tzinfo=UTC)


def test_guid_falls_back_to_link_then_hash() -> None:
    body = rss(
        [
            {"title": "linked", "link": "https://wire.example/x"},
            {"title": "bare", "description": "no link, no guid"},
        ]
    )
    linked, bare = parse(body).items
    assert linked.guid == "https://wire.example/x"
    assert bare.link is None
    assert bare.canonical_link is None
    assert bare.guid.startswith("sha1:")
    assert bare.guid == parse(body).items[1].guid  # stable across fetches
    other = rss([{"title": "bare", "description": "different text"}])
    assert parse(other).items[0].guid != bare.guid


def test_absurd_dates_are_dropped() -> None:
    body = rss(
        [
            {"title": "next week", "guid": "1", "pubDate": "Wed, 22 Nov 2023 00:00:00 GMT"},
            {"title": "far future", "guid": "2", "pubDate": "Fri, 01 Jan 2100 00:00:00 GMT"},
            {"title": "epoch", "guid": "3", "pubDate": "Thu, 01 Jan 1970 00:00:00 GMT"},
            {"title": "tomorrow", "guid": "4", "pubDate": "Thu, 16 Nov 2023 06:00:00 GMT"},
        ]
    )
    dates = {i.title: i.published for i in parse(body).items}
    assert dates == {
        "next week": None,
        "far future": None,
        "epoch": None,
        "tomorrow": datetime(2023, 11, 16, 6, 0, tzinfo=UTC),
    }


def test_javascript_links_are_dropped() -> None:
    body = rss([{"title": "x", "link": "javascript:alert(1)", "guid": "g"}])
    (item,) = parse(body).items
    assert item.link is None


def test_charset_from_the_http_header() -> None:
    text = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>环球</title><item>"
        "<title>王毅将访问华盛顿</title><guid>cn-1</guid></item></channel></rss>"
    )
    body = text.encode("gb18030")
    parsed = parse(body, headers={"Content-Type": "application/xml; charset=gb18030"})
    assert parsed.items[0].title == "王毅将访问华盛顿"
    assert parsed.title == "环球"


def test_bozo_feed_with_entries_is_accepted_with_a_warning() -> None:
    body = rss([{"title": "one", "guid": "1"}, {"title": "two", "guid": "2"}])
    broken = body.replace(b"<title>one</title>", b"<title>one &nbsp; &copy;</title>")
    broken = broken.replace(b"</channel></rss>", b"")  # truncated too
    parsed = parse(broken)
    assert [i.guid for i in parsed.items] == ["1", "2"]
    assert parsed.bozo_warning is not None
    assert "line" in parsed.bozo_warning


def test_valid_feed_without_items_is_not_an_error() -> None:
    parsed = parse(rss([], title="Quiet"))
    assert parsed.items == []
    assert parsed.title == "Quiet"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty document"),
        (b"   \n\t ", "empty document"),
        (
            b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>",
            "web page (HTML)",
        ),
        (b"<html><body>Not found</body></html>", "web page (HTML)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a feed"),
        (b'{"not": "a feed"}', "not a feed"),
        (b"<?xml version='1.0'?><note><to>x</to></note>", "not a feed"),
        (b"<rss version='2.0'><channel><title>x</ti", "not a feed"),
    ],
)
def test_not_a_feed(body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(body)
    assert message in str(info.value)


def test_a_body_naming_a_local_file_is_not_read(tmp_path: Path) -> None:
    # feedparser would open(bytes) a body that happens to be a path; we never let it
    secret = tmp_path / "local.xml"
    secret.write_bytes(rss([{"title": "from the local disk", "guid": "1"}]))
    with pytest.raises(ParseError):
        parse(str(secret).encode())


def test_a_url_string_is_refused_not_fetched() -> None:
    with pytest.raises(ParseError):
        parse_feed_bytes("http://127.0.0.1:9/feed.xml", url=URL)  # type: ignore[arg-type]


def test_random_and_hostile_bytes_only_ever_raise_parse_error() -> None:
    rng = random.Random(1234)
    good = rss(
        [{"title": "t", "guid": "g", "description": "<b>x</b>", "link": "https://a.example/1"}]
    )
    samples = [rng.randbytes(rng.randint(1, 3000)) for _ in range(150)]
    for _ in range(150):  # a valid feed with bytes flipped or cut short
        b = bytearray(good)
        for _ in range(rng.randint(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        samples.append(bytes(b[: rng.randint(1, len(b))]))
    samples += [
        b"<rss>" + b"<item>" * 5000,  # deep nesting
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;'
        b'&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss version="2.0">'
        b"<channel><item><title>&c;</title></item></channel></rss>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<rss version="2.0"><channel><item><title>&x;</title></item></channel></rss>',
        "<rss version='2.0'><channel><item><title>\ud800</title></item></channel></rss>".encode(
            "utf-8", "surrogatepass"
        ),
        b"\xff\xfe"
        + "<rss version='2.0'><channel><item><title>utf16</title></item>".encode("utf-16-le"),
    ]
    for body in samples:
        try:
            result = parse(body)
        except ParseError:
            continue
        for item in result.items:
            assert isinstance(item.guid, str)
            assert item.guid
            assert "root:" not in item.title  # the external entity was not expanded


@pytest.mark.parametrize("kind", ["process", "thread"])
async def test_parser_pool_returns_items_and_parse_errors(kind: str) -> None:
    pool = ParserPool(kind=kind)  # type: ignore[arg-type]
    try:
        body = rss(
            [{"title": "Blinken meets Wang Yi", "guid": "g-1", "link": "https://a.example/1"}]
        )
        parsed = await pool.parse(body, url=URL, source="A", now=NOW)
        assert parsed == parse(body, source="A")
        with pytest.raises(ParseError, match="web page"):
            await pool.parse(b"<html><body>hi</body></html>", url=URL)
    finally:
        pool.close()
    assert pool.kind == kind  # no silent fallback to threads


def test_a_relative_guid_stays_as_given_and_no_uri_in_the_summary_is_resolved() -> None:
    """No content-location pass: the guid keeps its own form (its dedupe key does not
    depend on where the feed was fetched from) and HTML summaries keep their links;
    only the item link is made absolute."""
    body = rss(
        [
            {
                "title": "a",
                "link": "story.html",
                "guid": "/items/17",
                "description": '<p>See <a href="/more/17">more</a>.</p>',
            }
        ]
    )
    (item,) = parse(body, base_url="https://mirror.example/feeds/x.xml").items
    assert item.guid == "/items/17"
    assert item.link == "https://mirror.example/feeds/story.html"
    assert 'href="/more/17"' in item.summary
    (again,) = parse(body, base_url="https://other.example/y.xml").items
    assert again.guid == item.guid


def test_prepared_rows_carry_keys_plain_text_and_worker_matches() -> None:
    """A parse asked to ``prepare`` gives the poller what it stores: the dedupe keys
    (a link shared by two guids is not a key), the plain title and summary, and, when
    the worker compiled a watchlist, the matches the same compiled watchlist finds."""
    from bot.core.matching import compile_watchlist
    from bot.core.text import plain
    from bot.feeds import parse as parse_module
    from bot.feeds.dedupe import keys_for_batch
    from bot.feeds.parse import ParseCall, _init_worker
    from bot.watchlist_files import default_watchlist

    body = rss(
        [
            {
                "title": "Wang Yi meets Blinken &amp; aides",
                "link": "https://w.example/1",
                "guid": "g1",
                "description": "<p>Talks on <b>Taiwan</b>.</p>",
            },
            {"title": "Live: day one", "link": "https://w.example/live", "guid": "g2"},
            {"title": "Live: day two", "link": "https://w.example/live", "guid": "g3"},
        ]
    )
    call = ParseCall(body, URL, None, "Wire", None, None, NOW, True)
    saved = parse_module._worker_matcher
    try:
        _init_worker(None)
        unmatched = call()
        _init_worker(default_watchlist())
        matched = call()
    finally:
        parse_module._worker_matcher = saved
    assert unmatched.rows is not None
    assert matched.rows is not None
    items = unmatched.items
    expected_keys = [keys for _, keys in keys_for_batch(items)]
    assert [r.keys for r in unmatched.rows] == expected_keys
    assert not any(k.startswith("link:") for k in unmatched.rows[1].keys)  # shared link
    assert [(r.title_plain, r.summary_plain) for r in unmatched.rows] == [
        (plain(i.title), plain(i.summary)) for i in items
    ]
    assert all(r.matches is None for r in unmatched.rows)
    matcher = compile_watchlist(default_watchlist())
    assert [r.matches for r in matched.rows] == [
        tuple(matcher.match(i.title, i.summary)) for i in matched.items
    ]
    assert {m.entry_id for m in matched.rows[0].matches or ()} >= {"wang-yi", "taiwan"}
    assert parse(body).rows is None  # not asked to prepare: nothing extra


async def test_a_pool_with_a_watchlist_matches_in_its_workers_and_a_new_one_restarts_it() -> None:
    from bot.core.watchlist import Watchlist
    from bot.watchlist_files import default_watchlist

    body = rss([{"title": "Wang Yi in Washington", "link": "https://w.example/1", "guid": "1"}])
    pool = ParserPool(kind="process", watchlist=default_watchlist())
    try:
        parsed = await pool.parse(body, url=URL, now=NOW, prepare=True)
        assert parsed.rows is not None
        assert [m.entry_id for m in parsed.rows[0].matches or ()] == ["wang-yi"]
        first = pool.generation
        pool.set_watchlist(default_watchlist())  # the same watchlist: the pool stays
        await pool.parse(body, url=URL, now=NOW, prepare=True)
        assert pool.generation == first
        pool.set_watchlist(Watchlist(entries=[]))  # another one: new workers compile it
        again = await pool.parse(body, url=URL, now=NOW, prepare=True)
        assert pool.generation == first + 1
        assert again.rows is not None
        assert again.rows[0].matches == ()
    finally:
        pool.close()
