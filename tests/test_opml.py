"""OPML import/export."""

from __future__ import annotations

import pytest

from bot.core.models import FeedSource
from bot.core.opml import export_opml, parse_opml
from bot.errors import InputError

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="China" title="China">
      <outline type="rss" text="SCMP China" title="SCMP China"
               xmlUrl="https://www.scmp.com/rss/4/feed" htmlUrl="https://www.scmp.com/"/>
      <outline type="rss" text="Xinhua &amp; more" xmlUrl="https://xinhua.example/rss.xml"
               language="zh"/>
    </outline>
    <outline type="rss" xmlUrl="https://noname.example/atom.xml"/>
    <outline type="rss" text="dup" xmlUrl="https://www.scmp.com/rss/4/feed"/>
    <outline text="A folder with no feeds"/>
  </body>
</opml>
"""


def test_parse_reader_export_flattens_folders_and_drops_duplicates() -> None:
    feeds = parse_opml(READER_EXPORT)
    assert feeds == [
        FeedSource("https://www.scmp.com/rss/4/feed", "SCMP China"),
        FeedSource("https://xinhua.example/rss.xml", "Xinhua & more", lang="zh"),
        FeedSource("https://noname.example/atom.xml", "noname.example"),
    ]


def test_round_trip() -> None:
    feeds = [
        FeedSource("https://a.example/feed?x=1&y=2", 'A <News> & "Co"'),
        FeedSource("https://b.example/rss", "北京日报", lang="zh"),
    ]
    data = export_opml(feeds, title="Briefbot: #general")
    assert data.startswith(b"<?xml")
    assert parse_opml(data) == feeds
    assert parse_opml(data.decode("utf-8")) == feeds


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<opml><body><outline", "not a valid OPML"),
        (b"<rss><channel/></rss>", "root element is <rss>"),
        (b"<opml version='2.0'><head/></opml>", "no <body>"),
        (b"<opml><body><outline text='x'/></body></opml>", "lists no feeds"),
        (b"just some text", "not a valid OPML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>'
            b"<opml><body><outline xmlUrl='&lol;'/></body></opml>",
            "DOCTYPE",
        ),
    ],
)
def test_malformed_opml_is_a_clear_input_error(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_opml(data)


def test_too_many_feeds_refused() -> None:
    outlines = "".join(f'<outline xmlUrl="https://f{i}.example/rss"/>' for i in range(501))
    with pytest.raises(InputError, match="more than 500"):
        parse_opml(f"<opml><body>{outlines}</body></opml>")
