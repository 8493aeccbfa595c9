"""The watchlist: the shipped defaults, loading user files, merging, JSON definitions and
entries made from /track input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.matching import compile_watchlist
from bot.core.models import EntryKind
from bot.core.watchlist import Alias, Entry, Watchlist, slugify
from bot.core.watchlist_resolve import merge_watchlists
from bot.core.watchlist_user import make_user_entry
from bot.errors import ConfigError, InputError
from bot.watchlist_files import default_terms, default_watchlist, load_watchlist, loads_watchlist

ACTORS = {
    "xi-jinping": "Xi Jinping",
    "joe-biden": "Joe Biden",
    "wang-yi": "Wang Yi",
    "he-lifeng": "He Lifeng",
    "jake-sullivan": "Jake Sullivan",
    "antony-blinken": "Antony Blinken",
    "janet-yellen": "Janet Yellen",
    "gina-raimondo": "Gina Raimondo",
    "han-zheng": "Han Zheng",
    "vladimir-putin": "Vladimir Putin",
    "li-shangfu": "Li Shangfu",
    "gavin-newsom": "Gavin Newsom",
}
TOPICS = [
    "apec", "xi-biden-summit", "taiwan", "south-china-sea", "east-china-sea",
    "export-controls", "belt-and-road", "economic-dialogue", "military-ties", "ukraine-war",
    "israel-hamas", "hong-kong", "spy-balloon", "xinjiang", "north-korea", "covid-origins",
    "government-shutdown", "climate", "iran",
]  # fmt: skip

# Chinese names the spec lists, simplified and traditional where they differ
CHINESE = {
    "xi-jinping": ["习近平", "習近平"],
    "joe-biden": ["拜登"],
    "wang-yi": ["王毅"],
    "he-lifeng": ["何立峰"],
    "jake-sullivan": ["沙利文"],
    "antony-blinken": ["布林肯"],
    "janet-yellen": ["耶伦", "耶倫"],
    "gina-raimondo": ["雷蒙多"],
    "han-zheng": ["韩正", "韓正"],
    "vladimir-putin": ["普京"],
    "li-shangfu": ["李尚福"],
    "gavin-newsom": ["纽森", "紐森"],
    "apec": ["亚太经合组织", "亞太經合組織"],
    "xi-biden-summit": ["习拜会", "習拜會"],
    "taiwan": ["台湾", "台灣"],
    "south-china-sea": ["南海"],
    "east-china-sea": ["东海", "東海"],
    "export-controls": ["出口管制"],
    "belt-and-road": ["一带一路", "一帶一路"],
    "military-ties": ["两军", "兩軍"],
    "ukraine-war": ["乌克兰", "烏克蘭"],
    "israel-hamas": ["以色列", "哈马斯", "哈馬斯", "加沙"],
    "hong-kong": ["香港"],
    "spy-balloon": ["间谍气球", "間諜氣球"],
    "xinjiang": ["新疆"],
    "north-korea": ["朝鲜", "朝鮮"],
    "covid-origins": ["新冠溯源"],
    "government-shutdown": ["政府停摆"],
    "climate": ["气候变化", "氣候變化"],
    "iran": ["伊朗"],
}


def write(tmp_path: Path, text: str, name: str = "watchlist.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the default watchlist -------------------------------------------------------------


def test_default_has_exactly_the_spec_entries_in_order_of_kind() -> None:
    wl = default_watchlist()
    assert wl.ids == [*ACTORS, *TOPICS]
    for e in wl.entries:
        expected_kind = EntryKind.ACTOR if e.id in ACTORS else EntryKind.TOPIC
        assert e.kind is expected_kind, e.id
    for entry_id, name in ACTORS.items():
        entry = wl.get(entry_id)
        assert entry is not None
        assert entry.name == name


def test_default_is_cached_and_self_contained() -> None:
    assert default_watchlist() is default_watchlist()
    for e in default_watchlist().entries:
        # references were expanded at load: every entry stands alone
        assert "@" not in json.dumps(e.to_definition(), ensure_ascii=False)


@pytest.mark.parametrize(("entry_id", "names"), sorted(CHINESE.items()))
def test_default_carries_chinese_names(entry_id: str, names: list[str]) -> None:
    entry = default_watchlist().get(entry_id)
    assert entry is not None
    texts = set(entry.alias_texts())
    for rule in entry.rules:
        for group in rule.all:
            texts |= {a.text for a in group}
    for name in names:
        assert any(name in t for t in texts), (entry_id, name)


def test_default_terms_are_exposed() -> None:
    terms = default_terms()
    assert {"us", "china", "meeting"} <= set(terms)
    assert any(a.text == "Washington" for a in terms["us"])


# -- loading user files ------------------------------------------------------------------


def test_load_user_file_with_options_and_references(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[terms]
rate-words = ["rate cut", "rate hike"]

[[entry]]
id = "li-qiang"
kind = "actor"
name = "Li Qiang"
aliases = ["Li Qiang", "李强", { text = "Premier Li", exclude = ["Vice Premier Li"] }]

[[entry]]
id = "fed-china"
kind = "topic"
name = "Fed and China"
[[entry.rules]]
all = ["$rate-words", "@xi-jinping"]
scope = "sentence"
""",
    )
    wl = load_watchlist(path)
    assert wl.ids == ["li-qiang", "fed-china"]
    li = wl.get("li-qiang")
    assert li is not None
    premier = li.aliases[2]
    assert premier.text == "Premier Li"
    assert [x.text for x in premier.exclude] == ["Vice Premier Li"]
    rule = wl.get("fed-china").rules[0]  # type: ignore[union-attr]
    assert [a.text for a in rule.all[0]] == ["rate cut", "rate hike"]
    # @xi-jinping from the default file, with that entry's exclusions carried along
    xi = {a.text: a for a in rule.all[1]}
    assert "习近平" in xi
    assert any(x.text == "Xi'an" for x in xi["Xi"].exclude)


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[[entry]]\nid = "a"\nkind = "actor"\nname = "A"\naliasez = ["x"]\n',
         "entry[1].aliasez", "unknown key"),
        ('[[entry]]\nid = "Bad Id"\nkind = "actor"\nname = "A"\naliases = ["Abc"]\n',
         "entry[1].id", "pattern"),
        ('[[entry]]\nid = "a"\nkind = "person"\nname = "A"\naliases = ["Abc"]\n',
         "entry[1].kind", "actor"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\naliases = ["ok", "  "]\n',
         "entry[1].aliases[2]", "empty alias"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n'
         'aliases = [{ text = "x", window = 3 }]\n',
         "entry[1].aliases[1]", "window needs a context"),
        # (the name counts as an alias unless match_name = false)
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\nmatch_name = false\n',
         "entry[1]", "can never match"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\naliases = ["abc"]\n'
         '[[entry]]\nid = "a"\nkind = "topic"\nname = "B"\naliases = ["def"]\n',
         "entry[2].id", "duplicate id"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\naliases = ["@no-such-entry"]\n',
         "entry[1].aliases", "unknown entry '@no-such-entry'"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n[[entry.rules]]\n'
         'all = ["abc", "$nope"]\n',
         "entry[1].rules[1].all[2]", "unknown term list '$nope'"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\naliases = ["@b"]\n'
         '[[entry]]\nid = "b"\nkind = "topic"\nname = "B"\naliases = ["@a"]\n',
         "entry", "cycle"),
        ('disable = ["Not An Id"]\n', "disable[1]", "not an entry id"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n'
         'aliases = [{ text = "abc", implies = ["no-such-entry"] }]\n',
         "entry[1].aliases[1].implies", "unknown entry 'no-such-entry'"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n'
         'aliases = [{ text = "abc", implies = ["Not An Id"] }]\n',
         "entry[1].aliases[1].implies", "not an entry id"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n'
         'aliases = [{ text = "@joe-biden", implies = ["xi-jinping"] }]\n',
         "entry[1].aliases[1]", "takes no options"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n[[entry.rules]]\n'
         'all = ["abc"]\nexclusive = true\n',
         "entry[1].rules[1]", "exclusive needs at least two groups"),
        ('[[entry]]\nid = "a"\nkind = "topic"\nname = "A"\n[[entry.rules]]\n'
         'all = ["abc", "def"]\nscope = "paragraph"\n',
         "entry[1].rules[1].scope", "'item', 'sentence' or 'lead'"),
    ],
)  # fmt: skip
def test_load_errors_name_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_watchlist(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert key in message, message
    assert problem in message, message


def test_implies_and_lead_rules_load_and_round_trip(tmp_path: Path) -> None:
    wl = load_watchlist(
        write(
            tmp_path,
            """
[[entry]]
id = "sunak"
kind = "actor"
name = "Rishi Sunak"
aliases = ["Sunak"]

[[entry]]
id = "uk-china"
kind = "topic"
name = "Sunak-Xi meeting"
# "implies" may name this file's entries or the default watchlist's
aliases = [{ text = "Sunak-Xi", implies = ["sunak", "xi-jinping", "sunak"] }]
[[entry.rules]]
all = ["@sunak", "@xi-jinping", "$meeting"]
scope = "lead"
exclusive = true
""",
        )
    )
    entry = wl.get("uk-china")
    assert entry is not None
    assert entry.aliases[0].implies == ("sunak", "xi-jinping")  # deduplicated
    assert entry.rules[0].scope == "lead"
    assert entry.rules[0].exclusive
    data = json.loads(json.dumps(entry.to_definition(), ensure_ascii=False))
    assert data["aliases"][0]["implies"] == ["sunak", "xi-jinping"]
    assert data["rules"][0]["exclusive"] is True
    assert Entry.from_definition(data) == entry
    # a channel's stored definition may imply an entry it no longer has: no error
    stored = Entry.from_definition(
        {"id": "y", "kind": "topic", "name": "Y",
         "aliases": [{"text": "abc", "implies": ["long-gone"]}]}
    )  # fmt: skip
    assert compile_watchlist(Watchlist(entries=(stored,))).match("abc", "")[0].entry_id == "y"


def test_load_missing_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_watchlist(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_watchlist(write(tmp_path, "[[entry]\nid = 1"))


# -- merging -----------------------------------------------------------------------------


def test_merge_adds_replaces_and_disables(tmp_path: Path) -> None:
    user = load_watchlist(
        write(
            tmp_path,
            """
disable = ["climate", "covid-origins"]

[[entry]]
id = "iran"
kind = "topic"
name = "Iran (narrow)"
match_name = false
aliases = ["Tehran"]

[[entry]]
id = "li-qiang"
kind = "actor"
name = "Li Qiang"
aliases = ["Li Qiang"]
""",
        )
    )
    base = default_watchlist()
    merged = merge_watchlists(base, user)
    assert "climate" not in merged.ids
    assert "covid-origins" not in merged.ids
    assert merged.ids[-1] == "li-qiang"
    # replaced in place, not moved
    assert merged.ids.index("iran") == [i for i in base.ids if i not in user.disabled].index("iran")
    iran = merged.get("iran")
    assert iran is not None
    assert iran.alias_texts() == ["Tehran"]
    assert len(merged) == len(base) - 2 + 1
    # the base is untouched
    assert "climate" in base.ids


def test_merge_rejects_unknown_disabled_id(tmp_path: Path) -> None:
    path = write(tmp_path, 'disable = ["xi-jinpin"]\n')
    user = load_watchlist(path)
    with pytest.raises(ConfigError) as info:
        merge_watchlists(default_watchlist(), user)
    assert "xi-jinpin" in str(info.value)
    assert "disable[1]" in str(info.value)
    assert str(path) in str(info.value)


def test_watchlist_rejects_duplicate_ids() -> None:
    e = Entry(id="a", kind=EntryKind.TOPIC, name="A", aliases=(Alias(text="abc"),))
    with pytest.raises(ValueError, match="duplicate"):
        Watchlist(entries=(e, e))


# -- JSON definitions ----------------------------------------------------------------------


def test_definitions_round_trip_through_json() -> None:
    for e in default_watchlist().entries:
        data = json.loads(json.dumps(e.to_definition(), ensure_ascii=False))
        assert Entry.from_definition(data) == e, e.id


def test_plain_aliases_are_stored_as_strings() -> None:
    e = Entry.from_definition(
        {"id": "x", "kind": "topic", "name": "X", "aliases": ["abc", {"text": "Abc"}]}
    )
    assert e.to_definition()["aliases"] == ["abc", "Abc"]


@pytest.mark.parametrize(
    "data",
    [
        {"id": "x", "kind": "topic", "name": "X"},
        {"id": "x", "kind": "bogus", "name": "X", "aliases": ["abc"]},
        {"id": "x", "kind": "topic", "name": "X", "aliases": ["@joe-biden"]},
        {"kind": "topic", "name": "X", "aliases": ["abc"]},
    ],
)
def test_bad_definitions_are_input_errors(data: dict[str, object]) -> None:
    with pytest.raises(InputError, match="invalid entry definition"):
        Entry.from_definition(data)


# -- /track ------------------------------------------------------------------------------


def test_make_user_entry_actor_with_safe_surname() -> None:
    e = make_user_entry("actor", "Rishi Sunak", "Prime Minister Sunak, 苏纳克", existing_ids=[])
    assert e.id == "rishi-sunak"
    assert e.kind is EntryKind.ACTOR
    assert e.alias_texts() == ["Rishi Sunak", "Prime Minister Sunak", "苏纳克", "Sunak"]
    surname = e.aliases[-1]
    assert surname.case == "sensitive"
    m = compile_watchlist(Watchlist(entries=(e,)))
    assert [x.entry_id for x in m.match("Sunak calls election", "")] == ["rishi-sunak"]
    assert m.match("sunak", "") == []  # the surname keeps its capital
    assert [x.alias for x in m.match("英国首相苏纳克访美", "")] == ["苏纳克"]


@pytest.mark.parametrize(
    ("name", "surname_added"),
    [
        ("Li Qiang", False),  # Chinese order: "Qiang" is a given name
        ("Wang Wentao", False),
        ("Jerome Powell", False),  # common surname
        ("Mark Rutte", True),
        ("Olaf Scholz", True),
        ("Kim Jong Un", False),
        ("Emmanuel Macron", True),
        ("Ursula von der Leyen", True),
        ("Nancy Pelosi", True),
        ("Ted Cruz", False),  # too short and common
    ],
)
def test_surname_only_when_safe(name: str, surname_added: bool) -> None:
    e = make_user_entry("actor", name, [], existing_ids=[])
    last = name.rsplit(maxsplit=1)[-1]
    assert (last in e.alias_texts()) is surname_added


def test_topic_gets_no_surname_and_name_is_alias() -> None:
    e = make_user_entry("Topic", "Panama Canal", [], existing_ids=[])
    assert e.kind is EntryKind.TOPIC
    assert e.alias_texts() == ["Panama Canal"]


def test_chinese_only_name_gets_a_hash_id() -> None:
    e = make_user_entry("actor", "李强", ["Li Qiang"], existing_ids=[])
    assert e.id.startswith("entry-")
    assert len(e.id) > len("entry-")
    assert e.alias_texts() == ["李强", "Li Qiang"]


@pytest.mark.parametrize(
    ("kind", "name", "aliases", "message"),
    [
        ("person", "Li Qiang", [], "Kind must be 'actor'"),
        ("actor", "   ", [], "Give a name"),
        ("topic", "Chips", ["x"], "too short"),
        ("topic", "Chips", ["中"], "single character"),
        ("topic", "Chips", ["the"], "too common"),
        ("topic", "Chips", ["!!!"], "no letters"),
        ("topic", "Chips", [f"alias{i}" for i in range(21)], "Too many aliases"),
        ("topic", "Chips", ["@joe-biden"], "cannot start with @"),
        ("topic", "x" * 101, [], "too long"),
    ],
)
def test_make_user_entry_rejects_bad_input(
    kind: str, name: str, aliases: list[str], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        make_user_entry(kind, name, aliases, existing_ids=[])


def test_make_user_entry_rejects_duplicate_id() -> None:
    with pytest.raises(InputError, match="already tracked"):
        make_user_entry("actor", "Li Qiang", [], existing_ids=["li-qiang"])


def test_make_user_entry_dedupes_aliases_and_splits_commas() -> None:
    e = make_user_entry(
        "topic", "Chip war", ["chip war, Chip War ; 芯片战、芯片战争"], existing_ids=[]
    )
    assert e.alias_texts() == ["Chip war", "芯片战", "芯片战争"]
    assert Entry.from_definition(e.to_definition()) == e


def test_slugify() -> None:
    assert slugify("  Gina Raimondo ") == "gina-raimondo"
    assert slugify("Tête-à-tête talks!") == "tete-a-tete-talks"
    assert slugify("李强") == ""


def test_loads_watchlist_from_text() -> None:
    wl = loads_watchlist(
        '[[entry]]\nid = "t"\nkind = "topic"\nname = "T"\naliases = ["$meeting"]\n'
    )
    assert "summit" in wl.entries[0].alias_texts()


def test_merge_for_a_channel_ignores_vanished_disabled_ids() -> None:
    own = make_user_entry("actor", "Li Qiang", ["李强"], existing_ids=default_watchlist().ids)
    channel = Watchlist(
        entries=(Entry.from_definition(own.to_definition()),),
        disabled=("climate", "retired-entry"),
    )
    merged = merge_watchlists(default_watchlist(), channel, strict=False)
    assert "climate" not in merged.ids
    assert merged.ids[-1] == "li-qiang"
    m = compile_watchlist(merged)
    assert {x.entry_id for x in m.match("李强会见外宾", "Climate change")} == {"li-qiang"}


# -- the core reads no files -------------------------------------------------------------


def test_the_core_watchlist_modules_import_nothing_from_the_edge() -> None:
    """Model, validation, references and merging live in the core; reading files
    (bot.config, bot.watchlist_files) is the edge's."""
    code = (
        "import sys\n"
        "import bot.core.watchlist, bot.core.watchlist_resolve, bot.core.timeparse\n"
        "import bot.core.validation, bot.core.common_names\n"
        "print(sorted(m for m in sys.modules if m.startswith('bot.')\n"
        "      and m.split('.')[1] not in ('core', 'errors')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_parse_watchlist_takes_data_already_read() -> None:
    from bot.core.watchlist_resolve import parse_watchlist

    base = default_watchlist()
    wl, terms = parse_watchlist(
        {
            "terms": {"talks": ["talks", "summit"]},
            "entry": [
                {"id": "xi-talks", "kind": "topic", "name": "Xi talks",
                 "rules": [{"all": ["@xi-jinping", "$talks"]}]},
            ],
        },
        "data",
        base_entries={e.id: e for e in base.entries},
        base_terms=default_terms(),
    )  # fmt: skip
    assert wl.ids == ["xi-talks"]
    assert wl.source == "data"
    assert [a.text for a in wl.entries[0].rules[0].all[1]] == ["talks", "summit"]
    assert "Xi Jinping" in [a.text for a in wl.entries[0].rules[0].all[0]]
    assert set(terms) == {"talks"}
    with pytest.raises(ConfigError) as info:
        parse_watchlist({"entry": [{"id": "a"}]}, "data", base_entries={}, base_terms={})
    assert str(info.value).startswith("data: entry[1].kind: Field required")
