"""Watchlist power for users' own beats (issue 10, points 8 and 10): an entry's name
matches, list keys refuse a bare string, replace_defaults, item-level ``unless``,
actor/action/target rules, and ``inflect`` forms."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.matching import compile_watchlist
from bot.core.watchlist import SVO_WINDOW, Entry, Rule
from bot.core.watchlist_inflect import inflected, phrase_forms, word_forms
from bot.core.watchlist_resolve import merge_watchlists
from bot.errors import ConfigError, InputError
from bot.watchlist_files import (
    default_watchlist,
    load_effective_watchlist,
    loads_watchlist,
)


def matched(wl_text: str, title: str, summary: str = "") -> list[str]:
    wl = loads_watchlist(wl_text)
    return [m.entry_id for m in compile_watchlist(wl).match(title, summary)]


# -- the name is an alias ----------------------------------------------------------------


def test_a_file_entrys_name_matches_like_an_alias() -> None:
    text = '[[entry]]\nid = "tai"\nkind = "actor"\nname = "Katherine Tai"\naliases = ["戴琪"]\n'
    wl = loads_watchlist(text)
    entry = wl.get("tai")
    assert entry is not None
    assert entry.alias_texts() == ["戴琪", "Katherine Tai"]
    assert matched(text, "Katherine Tai visits Beijing") == ["tai"]
    assert matched(text, "戴琪访华") == ["tai"]
    # a name that is an alias already is not added twice (any case)
    twice = loads_watchlist(
        '[[entry]]\nid = "tai"\nkind = "actor"\nname = "Katherine Tai"\n'
        'aliases = ["katherine tai"]\n'
    )
    assert twice.entries[0].alias_texts() == ["katherine tai"]


def test_match_name_false_keeps_the_name_out_and_an_entry_of_rules_only_gets_it() -> None:
    off = (
        '[[entry]]\nid = "x"\nkind = "topic"\nname = "Chip war"\nmatch_name = false\n'
        'aliases = ["semiconductor curbs"]\n'
    )
    assert matched(off, "The chip war heats up") == []
    assert loads_watchlist(off).entries[0].to_definition()["match_name"] is False
    rules_only = (
        '[[entry]]\nid = "x"\nkind = "topic"\nname = "Chip war"\n'
        '[[entry.rules]]\nall = ["chips", "tariffs"]\n'
    )
    assert matched(rules_only, "The chip war heats up") == ["x"]
    # the default watchlist's names match too: an entry of rules only, by its name
    dialogue = default_watchlist().get("economic-dialogue")
    assert dialogue is not None
    assert dialogue.name in dialogue.alias_texts()


# -- a bare string where a list is meant --------------------------------------------------


@pytest.mark.parametrize("key", ["aliases", "unless"])
def test_a_bare_string_for_a_list_key_is_refused(key: str) -> None:
    text = f'[[entry]]\nid = "x"\nkind = "topic"\nname = "X"\n{key} = "Wang Yi, 王毅"\n'
    with pytest.raises(ConfigError) as err:
        loads_watchlist(text, source="my.toml")
    message = str(err.value)
    assert "my.toml" in message
    assert f"entry[1].{key}" in message
    assert f'{key} must be a list: {key} = ["Wang Yi, 王毅"]' in message
    assert "\n" not in message


# -- replace_defaults ---------------------------------------------------------------------


BEAT = """
replace_defaults = true

[[entry]]
id = "openai"
kind = "topic"
name = "OpenAI"
"""


def test_replace_defaults_keeps_only_the_files_entries(tmp_path: Path) -> None:
    (tmp_path / "watchlist.toml").write_text(BEAT, encoding="utf-8")
    wl = load_effective_watchlist(tmp_path)
    assert wl.ids == ["openai"]
    assert matched(BEAT, "OpenAI ships a model") == ["openai"]
    # without it, the file's entries join the defaults
    merged = merge_watchlists(default_watchlist(), loads_watchlist(BEAT.split("\n", 2)[2]))
    assert "openai" in merged.ids
    assert "xi-jinping" in merged.ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replace_defaults = true\n", "nothing would be tracked"),
        ('disable = ["climate"]\n' + BEAT, "has no effect with replace_defaults"),
        ('replace_defaults = "yes"\n', "replace_defaults"),
    ],
)  # fmt: skip
def test_replace_defaults_mistakes_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        merge_watchlists(default_watchlist(), loads_watchlist(text))


# -- unless -------------------------------------------------------------------------------


UNLESS = """
[[entry]]
id = "chips"
kind = "topic"
name = "Chip curbs"
aliases = ["export controls"]
unless = ["podcast", "quiz"]
"""


def test_unless_vetoes_the_entry_from_anywhere_in_the_title_and_lead() -> None:
    assert matched(UNLESS, "New export controls on chips") == ["chips"]
    assert matched(UNLESS, "Podcast: new export controls") == []
    assert matched(UNLESS, "Export controls, explained", "Our weekly quiz. Test yourself.") == []
    # beyond the lead it does not count
    assert matched(
        UNLESS, "Export controls widen", "Officials said more. Listen to the podcast later."
    ) == ["chips"]
    why = compile_watchlist(loads_watchlist(UNLESS)).explain("Podcast: export controls", "")
    assert why.matches == ()
    assert any("vetoed: unless 'podcast' (in the title)" in line for line in why.lines())


def test_unless_also_stops_what_an_alias_implies() -> None:
    text = UNLESS.replace(
        'aliases = ["export controls"]',
        'aliases = [{ text = "export controls", implies = ["xi-jinping"] }]',
    )
    matcher = compile_watchlist(merge_watchlists(default_watchlist(), loads_watchlist(text)))
    assert [m.entry_id for m in matcher.match("Export controls", "")] == ["chips", "xi-jinping"]
    assert matcher.match("Quiz: export controls", "") == []


# -- actor / action / target --------------------------------------------------------------


SVO = """
[[entry]]
id = "china-curbs"
kind = "topic"
name = "China's curbs"
match_name = false

[[entry.rules]]
actor = ["China", "Beijing"]
action = ["restricts", "bans"]
target = ["$us", "Micron"]
"""


def test_actor_action_target_in_order_within_the_window() -> None:
    assert matched(SVO, "China restricts sales of Micron chips") == ["china-curbs"]
    assert matched(SVO, "Beijing bans U.S. chipmaker") == ["china-curbs"]
    # who acts on whom: the U.S. acting on China is another story
    assert matched(SVO, "U.S. restricts China chip sales") == []
    assert matched(SVO, "Micron says China bans nothing") == []
    # spread beyond the window (8 words by default)
    far = "China, after months of talks with several partners in Asia, restricts Micron"
    assert matched(SVO, far) == []
    # title then lead, in order
    assert matched(SVO, "China restricts chip sales", "Micron is the first target.") == [
        "china-curbs"
    ]


def test_actor_action_target_is_all_ordered_with_a_window() -> None:
    rule = Rule.model_validate({"actor": ["China"], "action": ["bans"]})
    assert (len(rule.all), rule.ordered, rule.window) == (2, True, SVO_WINDOW)
    assert rule.scope == "lead"
    assert rule.compact() == {
        "all": [["China"], ["bans"]],
        "scope": "lead",
        "window": 8,
        "ordered": True,
    }
    assert Rule.model_validate(rule.compact()) == rule
    explicit = Rule.model_validate(
        {"actor": "China", "action": "bans", "target": "Micron", "window": 3}
    )
    assert explicit.window == 3


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('actor = ["China"]\ntarget = ["Micron"]', "needs action"),
        ('all = ["a", "b"]\nactor = ["China"]\naction = ["bans"]', "not both"),
        ('all = ["a"]\nordered = true', "ordered needs at least two groups"),
    ],
)
def test_bad_actor_action_target_rules_are_config_errors(rule: str, message: str) -> None:
    text = f'[[entry]]\nid = "x"\nkind = "topic"\nname = "X"\n[[entry.rules]]\n{rule}\n'
    with pytest.raises(ConfigError, match=message):
        loads_watchlist(text)


def test_ordered_explains_why_it_did_not_match() -> None:
    why = compile_watchlist(loads_watchlist(SVO)).explain("U.S. restricts China", "")
    assert any("in this order" in line for line in why.lines())


# -- inflect ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "forms"),
    [
        ("sanction", ["sanctions", "sanctioned", "sanctioning"]),
        ("tax", ["taxes", "taxed", "taxing"]),
        ("levy", ["levies", "levied", "levying"]),
        ("impose", ["imposes", "imposed", "imposing"]),
        ("agree", ["agrees", "agreed", "agreeing"]),
        ("ban", ["bans", "baned", "baning", "banned", "banning"]),
        ("ASML", []),
        ("sanctions", []),
        ("王毅", []),
        ("ai", []),
    ],
)
def test_word_forms(word: str, forms: list[str]) -> None:
    assert word_forms(word) == forms


def test_phrase_forms_inflect_the_last_word() -> None:
    assert phrase_forms("export control") == [
        "export controls", "export controled", "export controling",
        "export controlled", "export controlling",
    ]  # fmt: skip
    assert phrase_forms("U.S.") == []


INFLECT = """
[[entry]]
id = "sanctions"
kind = "topic"
name = "Sanctions"
match_name = false
aliases = [{ text = "sanction", inflect = true }, "embargo"]
"""


def test_inflect_on_an_alias() -> None:
    for title in (
        "EU to sanction firms",
        "New sanctions on Russia",
        "Firms sanctioned",
        "Sanctioning Iran",
    ):
        assert matched(INFLECT, title) == ["sanctions"], title
    # only the alias that asks: "embargoes" is no form of a plain alias
    assert matched(INFLECT, "Oil embargoes widen") == []
    m = compile_watchlist(loads_watchlist(INFLECT)).match("Firms sanctioned", "")
    assert m[0].alias == "sanctioned"


def test_inflect_on_an_entry_reaches_rules_and_an_alias_may_opt_out() -> None:
    text = """
[[entry]]
id = "curbs"
kind = "topic"
name = "Curbs"
match_name = false
inflect = true
aliases = ["tariff", { text = "levy", inflect = false }]

[[entry.rules]]
actor = ["China"]
action = ["restrict"]
"""
    assert matched(text, "New tariffs announced") == ["curbs"]
    assert matched(text, "China restricted exports") == ["curbs"]
    assert matched(text, "A levy on steel") == ["curbs"]
    assert matched(text, "Levies on steel") == []


def test_without_inflect_nothing_changes() -> None:
    wl = default_watchlist()
    assert inflected(wl) is wl
    plain = INFLECT.replace("inflect = true", "inflect = false")
    assert matched(plain, "New sanctions on Russia") == []


def test_new_keys_survive_a_channel_definition_round_trip() -> None:
    wl = loads_watchlist(INFLECT + '\nunless = ["quiz"]\ninflect = true\n')
    entry = wl.entries[0]
    back = Entry.from_definition(entry.to_definition())
    assert back == entry
    assert back.unless[0].text == "quiz"
    assert back.aliases[0].inflect is True
    with pytest.raises(InputError, match="inflect"):
        Entry.from_definition({**entry.to_definition(), "inflect": "maybe"})


def test_watchlist_command_describes_unless_and_order() -> None:
    from bot.core.usecases.tracking import _describe_rules

    entry = loads_watchlist(SVO.replace("match_name = false", 'unless = ["podcast"]')).entries[0]
    text = _describe_rules(entry)
    assert "within 8 words, in this order" in text
    assert "not when the title or lead says 'podcast'" in text
