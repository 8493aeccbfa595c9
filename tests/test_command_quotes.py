"""Issue 10, point 9: single quotes group words like double quotes in typed commands;
an apostrophe stays a character; ``page:`` is only ever named."""

from __future__ import annotations

import pytest

from bot.core.command_line import parse_command_line, tokenize
from bot.errors import InputError


@pytest.mark.parametrize(
    ("line", "args"),
    [
        ("/track kind:actor name:'Li Qiang' aliases:'Premier Li,李强'",
         {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li,李强"}),
        ("/track actor 'Li Qiang'", {"kind": "actor", "name": "Li Qiang"}),
        ("/track kind:actor name:\u2018Li Qiang\u2019", {"kind": "actor", "name": "Li Qiang"}),
        # a search phrase: kept as a double-quoted phrase
        ("/search 'export controls' 48", {"query": '"export controls"', "hours": 48}),
        ("/search query:'export controls'", {"query": '"export controls"'}),
        # apostrophes are characters, inside quotes too
        ("/search Xi's visit", {"query": "Xi's visit"}),
        ("/test text:'Xi's visit to Paris'", {"text": "Xi's visit to Paris"}),
        ("/test '90s music", {"text": "'90s music"}),
        ("/feeds add https://x.org/rss 'My Feed'", {"url": "https://x.org/rss", "name": "My Feed"}),
        # page: is named only; a bare number after the query is still hours
        ("/search export controls 48 page:2",
         {"query": "export controls", "hours": 48, "page": 2}),
    ],
)  # fmt: skip
def test_single_quotes_work_like_double_quotes(line: str, args: dict[str, object]) -> None:
    assert parse_command_line(line)[1] == args


def test_a_single_quoted_token_is_never_an_option_name() -> None:
    _spec, args = parse_command_line("/search 'hours:5'")
    assert args == {"query": '"hours:5"'}
    [tok] = tokenize("'a b'")
    assert (tok.text, tok.quoted) == ("a b", True)


def test_page_is_checked() -> None:
    with pytest.raises(InputError, match="page must be at most 10"):
        parse_command_line("/search chips page:11")
