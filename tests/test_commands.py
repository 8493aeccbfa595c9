"""The command spec and the console parser (syntax as typed in Discord)."""

from __future__ import annotations

import pytest

from bot.core.command_line import parse_command_line, tokenize
from bot.core.commands import (
    COMMANDS,
    Autocomplete,
    OptionType,
    get_command,
    help_lines,
    validate_args,
)
from bot.errors import InputError


@pytest.mark.parametrize(
    ("line", "name", "args"),
    [
        ("/brief", "brief", {}),
        ("/brief entry:wang-yi hours:48", "brief", {"entry": "wang-yi", "hours": 48}),
        ("brief 48", "brief", {"hours": 48}),
        ("/brief wang-yi 48h", "brief", {"entry": "wang-yi", "hours": 48}),
        (
            '/track kind:actor name:"Li Qiang" aliases:"Premier Li,李强" mode:instant',
            "track",
            {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li,李强", "mode": "instant"},
        ),
        (
            "/track kind:Topic name:Export controls",
            "track",
            {"kind": "topic", "name": "Export controls"},
        ),
        ("/track actor Li Qiang", "track", {"kind": "actor", "name": "Li Qiang"}),
        ("/untrack li-qiang", "untrack", {"entry": "li-qiang"}),
        ("/digest now", "digest now", {}),
        (
            "/digest schedule time:08:00 tz:Asia/Shanghai days:mon-fri",
            "digest schedule",
            {"time": "08:00", "tz": "Asia/Shanghai", "days": "mon-fri"},
        ),
        ("/digest schedule 07:30", "digest schedule", {"time": "07:30"}),
        ("/digest off", "digest off", {}),
        # quotes are kept in a search query: they make a phrase
        ('/search "export controls" 48', "search", {"query": '"export controls"', "hours": 48}),
        (
            '/search "export controls" china',
            "search",
            {"query": '"export controls" china'},
        ),
        ('/search query:"export controls"', "search", {"query": '"export controls"'}),
        ("/search export controls 48", "search", {"query": "export controls", "hours": 48}),
        ("/search china 2024", "search", {"query": "china 2024"}),  # 2024 h is out of range
        ("/test text:Xi's visit to Paris", "test", {"text": "Xi's visit to Paris"}),
        ("/test entry:li-qiang 48", "test", {"entry": "li-qiang", "hours": 48}),
        (
            "/feeds add https://x.example/feed name:X News",
            "feeds add",
            {"url": "https://x.example/feed", "name": "X News"},
        ),
        ("/feeds remove 2", "feeds remove", {"feed": "2"}),
        ("/feeds import file:subs.opml", "feeds import", {"file": b"subs.opml"}),
        ("/FEEDS LIST", "feeds list", {}),
        ("/help track", "help", {"command": "track"}),
        ("/search \u201cexport controls\u201d", "search", {"query": "\u201cexport controls\u201d"}),
        ("/digest group by:story", "digest group", {"by": "story"}),
        ("/digest group Entry", "digest group", {"by": "entry"}),
        (
            "/digest schedule time:08:00 days:fri-mon",
            "digest schedule",
            {"time": "08:00", "days": "fri-mon"},
        ),
        # bare words after a typed option fill a typed option, or a required text one
        ("/brief entry:wang-yi 48", "brief", {"entry": "wang-yi", "hours": 48}),
        ("/search hours:48 export controls", "search", {"query": "export controls", "hours": 48}),
        (
            "/track kind:actor mode:instant Li Qiang",
            "track",
            {"kind": "actor", "mode": "instant", "name": "Li Qiang"},
        ),
    ],
)
def test_parse(line: str, name: str, args: dict[str, object]) -> None:
    spec, got = parse_command_line(line)
    assert spec.name == name
    assert got == args


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "type a command"),
        ("/", "type a command after /"),
        ("/frobnicate", "unknown command /frobnicate"),
        ("/digest", "needs a subcommand: /digest now|schedule|off"),
        ("/digest later", "needs a subcommand \\(got 'later'\\)"),
        ("/brief hours:abc", "hours must be a whole number"),
        ("/brief hours:0", "hours must be at least 1"),
        ("/brief hours:100000", "hours must be at most 720"),
        ("/brief a b c", "too many values"),
        ("/track kind:person name:x", "kind must be one of: actor, topic"),
        ("/track kind:actor", "/track needs name"),
        ("/track kind:actor name:x mode:loud", "mode must be one of: digest, instant"),
        ("/brief entry:a entry:b", "entry is given twice"),
        ('/brief "unclosed', "quote is not closed"),
        ("/untrack", "/untrack needs entry"),
        ("/status now", "unexpected 'now'"),
        ("/brief colour:red", "has no option .colour. \\(options: entry, hours\\)"),
    ],
)
def test_bad_syntax_is_an_input_error_with_usage(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_command_line(line)
    text = str(info.value)
    if (
        line.strip("/ ")
        and "unknown command" not in text
        and "subcommand" not in text
        and "quote" not in text
        and "type a command" not in text
    ):
        assert "Usage: /" in text


def test_quoted_option_name_is_a_value() -> None:
    assert tokenize('a "b:c d" e:"f g"')[1].quoted
    _spec, args = parse_command_line('/search "hours:5"')
    assert args == {"query": '"hours:5"'}
    _spec, args = parse_command_line('/track kind:actor name:"Li Qiang" aliases:"alias:x"')
    assert args["aliases"] == "alias:x"


def test_validate_args_for_typed_transports() -> None:
    spec = get_command("brief")
    assert validate_args(spec, {"entry": " wang-yi ", "hours": 12}) == {
        "entry": "wang-yi",
        "hours": 12,
    }
    assert validate_args(spec, {"entry": None}) == {}
    with pytest.raises(InputError, match="has no option 'colour'"):
        validate_args(spec, {"colour": "red"})
    with pytest.raises(InputError, match="hours must be a whole number"):
        validate_args(spec, {"hours": True})
    with pytest.raises(InputError, match="entry must not be empty"):
        validate_args(spec, {"entry": "  "})


def test_spec_is_complete_for_discord() -> None:
    names = {c.name for c in COMMANDS}
    assert names == {
        "brief",
        "digest now",
        "digest schedule",
        "digest off",
        "digest group",
        "track",
        "untrack",
        "watchlist",
        "feeds add",
        "feeds remove",
        "feeds list",
        "feeds import",
        "feeds export",
        "search",
        "test",
        "status",
        "help",
    }
    manage = {c.name for c in COMMANDS if c.manage}
    assert manage == {
        "track",
        "untrack",
        "digest schedule",
        "digest off",
        "digest group",
        "feeds add",
        "feeds remove",
        "feeds import",
    }
    assert get_command("untrack").options[0].autocomplete is Autocomplete.ENTRY
    assert get_command("feeds remove").options[0].autocomplete is Autocomplete.FEED
    assert get_command("feeds import").options[0].type is OptionType.ATTACHMENT
    # Discord limits: names 1-32 chars lowercase, descriptions <= 100 chars
    for spec in COMMANDS:
        assert len(spec.description) <= 100, spec.name
        for opt in spec.options:
            assert opt.name.islower()
            assert len(opt.name) <= 32
            assert len(opt.description) <= 100, (spec.name, opt.name)
        required_seen_optional = False
        for opt in spec.options:  # Discord: required options come first
            if not opt.required:
                required_seen_optional = True
            assert not (opt.required and required_seen_optional), spec.name


def test_help() -> None:
    lines = help_lines()
    assert any(line.startswith("/brief [entry:<text>] [hours:<number>]") for line in lines)
    detail = help_lines("/track")
    assert any("Manage Server" in line for line in detail)
    with pytest.raises(InputError):
        help_lines("nope")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # a misspelled option name inside free text is refused, with the likely option
        (
            '/track kind:actor name:"Li Qiang" alias:"Premier Li"',
            "/track has no option 'alias' — did you mean aliases:\\?",
        ),
        ("/track kind:actor name:Li Qiang alias:Premier", "did you mean aliases:\\?"),
        ("/test text:Xi visits Paris entyr:x", "did you mean entry:\\?"),
        ("/search export controls hours:48 huors:2", "did you mean hours:\\?"),
        ("/feeds add https://x.example/feed nmae:X", "did you mean name:\\?"),
        # stray words after a complete set of options would silently become aliases
        (
            '/track kind:actor name:"Li Qiang" mode:instant extra words',
            "unexpected 'extra words' after mode:… — if it is aliases, "
            'write aliases:"extra words"',
        ),
        ("/feeds add url:https://x.example/feed X News", "unexpected 'X News' after url:"),
        ("/test entry:li-qiang some words", "unexpected 'some words' after entry:"),
    ],
)
def test_misspelled_options_and_stray_words_are_refused(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_command_line(line)
    assert "Usage: /" in str(info.value)


def test_text_with_colons_stays_text_when_quoted_or_not_an_option_shape() -> None:
    _spec, args = parse_command_line('/test text:"note: Xi visits" ')
    assert args == {"text": "note: Xi visits"}
    _spec, args = parse_command_line("/test text:Breaking: Xi visits Paris at 10:30")
    assert args == {"text": "Breaking: Xi visits Paris at 10:30"}
    _spec, args = parse_command_line("/feeds add https://x.example/feed name:X News")
    assert args == {"url": "https://x.example/feed", "name": "X News"}
