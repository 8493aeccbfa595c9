"""The matcher's scan (one Aho-Corasick pass, then word boundaries and case rules per hit)
and the fast paths of normalising: correctness, not speed (speed: benchmarks/match.py).

The big test compares a watchlist of 1,000+ generated aliases with a brute-force
reference (one regular expression per alias) on generated items."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import regex

from bot.core.matching import Matcher
from bot.core.text import CJK_CLASS, _html_text, match_form, normalize, plain
from bot.core.watchlist import Alias, Entry, Watchlist


def entry(eid: str, *aliases: str | Alias, kind: str = "actor") -> Entry:
    return Entry.model_validate({"id": eid, "kind": kind, "name": eid, "aliases": list(aliases)})


def ids(m: Matcher, title: str, summary: str = "") -> set[str]:
    return {x.entry_id for x in m.match(title, summary)}


# -- word boundaries, overlaps, CJK, case ---------------------------------------------------


def test_a_latin_alias_is_found_at_word_boundaries_only() -> None:
    m = Matcher(Watchlist(entries=(entry("biden", "Biden"), entry("g7", "G7"))))
    for text in ("Biden said", "said Biden", "Biden's plan", "(Biden)", "Biden-Xi talks",
                 "“Biden”", "Biden, Xi", "BIDEN"):  # fmt: skip
        assert ids(m, text) == {"biden"}, text
    for text in ("Bidenesque", "JBiden", "Biden2", "Bidén"):
        assert ids(m, text) == set(), text
    assert ids(m, "x_Biden_x") == {"biden"}  # "_" is no word character
    assert ids(m, "the G7 summit") == {"g7"}
    assert ids(m, "G77 nations, XG7") == set()
    # a letter with a combining mark continues a word: no boundary there
    assert ids(m, "Biden\u0301 x") == set()


def test_overlapping_aliases_are_all_found() -> None:
    m = Matcher(
        Watchlist(
            entries=(
                entry("hunter", "Hunter Biden"),
                entry("biden", "Biden"),
                entry("joe", "Joe Biden"),
                entry("ha", "Biden administration"),
            )
        )
    )
    assert ids(m, "Hunter Biden said") == {"hunter", "biden"}
    assert ids(m, "Joe Biden administration officials") == {"joe", "biden", "ha"}
    assert ids(m, "Hunter Bidens") == set()  # one key inside the other: both bounded


def test_cjk_aliases_are_found_inside_runs_and_latin_aliases_beside_cjk() -> None:
    m = Matcher(
        Watchlist(
            entries=(
                entry("biden", "拜登", "바이든", "Biden"),
                entry("xi", "习近平"),
                entry("tw", "Taiwan"),
            )
        )
    )
    assert ids(m, "美国总统拜登今天访华") == {"biden"}
    assert ids(m, "바이든은 오늘 회담했다") == {"biden"}  # a particle glued to the name
    assert ids(m, "拜登与习近平会晤") == {"biden", "xi"}
    assert ids(m, "美国议员访问Taiwan今天") == {"tw"}  # CJK is no word character
    assert ids(m, "Taiwanese firms") == set()


def test_case_rules_hold_on_each_hit() -> None:
    m = Matcher(
        Watchlist(
            entries=(
                entry("li", "Li"),  # auto: a short word with a capital is exact
                entry("nato", Alias(text="NATO", case="sensitive")),
                entry("apple", Alias(text="Apple", case="insensitive")),
                entry("us", Alias(text="US", case="sensitive"), Alias(text="U.S.", case="auto")),
            )
        )
    )
    assert ids(m, "Premier Li said") == {"li"}
    assert ids(m, "a li of rice") == set()
    assert ids(m, "NATO allies") == {"nato"}
    assert ids(m, "Nato allies") == set()
    assert ids(m, "apple pie, APPLE, Apple") == {"apple"}
    assert ids(m, "the US said") == {"us"}
    assert ids(m, "let us go") == set()
    # a field in capitals relaxes the case rules
    assert ids(m, "PREMIER LI WARNS OF SLOWDOWN") == {"li"}


def test_explain_lists_case_misses_in_text_order() -> None:
    m = Matcher(
        Watchlist(entries=(entry("li", "Li"), entry("us", Alias(text="US", case="sensitive"))))
    )
    why = m.explain("us and li, then Us", "")
    misses = [(c.entry_id, c.reason) for c in why.candidates if not c.accepted]
    assert misses == [
        ("us", "case differs: 'us' is not 'US'"),
        ("li", "case differs: 'li' is not 'Li'"),
        ("us", "case differs: 'Us' is not 'US'"),
    ]


def test_each_field_is_lower_cased_as_itself() -> None:
    """One scan reads the title and the summary together; each is still lower-cased on
    its own: a title letter that lowers to two ("İ") does not change how the summary's
    final sigma lowers."""
    m = Matcher(Watchlist(entries=(entry("odos", "ΟΔΟΣ", kind="topic"),)))
    for title in ("", "İstanbul", "ΟΔΟΣ"):
        assert ids(m, title, "η ΟΔΟΣ εδώ") == {"odos"}, title
        assert m.match_plain(title, "η ΟΔΟΣ εδώ") == list(m.explain(title, "η ΟΔΟΣ εδώ").matches)


def test_match_plain_is_match_on_plain_text() -> None:
    m = Matcher(Watchlist(entries=(entry("xi", "Xi Jinping", "习近平"), entry("tw", "Taiwan"))))
    raw = "<p>Xi&nbsp;Jinping &amp; Taiwan</p>", "习近平 &#8217;s <b>visit</b>"
    assert m.match_plain(plain(raw[0]), plain(raw[1])) == m.match(*raw)
    assert ids(m, *raw) == {"xi", "tw"}


# -- 1,000 generated aliases against a brute-force reference ------------------------------

_W = f"[^\\W_{CJK_CLASS}]"  # a word character of a space-separated script
FILLER = [
    "the",
    "a",
    "of",
    "to",
    "in",
    "and",
    "on",
    "for",
    "with",
    "said",
    "officials",
    "report",
    "government",
    "minister",
    "talks",
    "economy",
    "market",
    "trade",
    "week",
    "year",
    "people",
    "security",
    "plan",
    "new",
    "former",
    "leader",
    "visit",
    "据报道",
    "官员",
    "表示",
    "政府",
    "经济",
    "市场",
    "贸易",
    "政策",
    "本周",
    "今年",
]
SYLLABLES = [
    "ka",
    "ro",
    "vin",
    "del",
    "mar",
    "ten",
    "sol",
    "bri",
    "an",
    "ok",
    "el",
    "ra",
    "mu",
    "zen",
    "tor",
    "li",
    "ha",
    "gan",
    "ber",
    "wick",
]
HAN = "王李张刘陈杨赵黄周吴徐孙建国明华晓燕志强思远立新文博家宁海涛雅琴振丽娜"


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def generated_watchlist(rng: random.Random, n_aliases: int) -> Watchlist:
    """Entries with Latin names (full, surname, initial form, hyphenated), Chinese names
    and phrases; many aliases overlap others (a surname inside another's full name)."""
    entries: list[Entry] = []
    count = 0
    surnames = [_word(rng).capitalize() for _ in range(150)]
    while count < n_aliases:
        i = len(entries)
        first, last = _word(rng).capitalize(), rng.choice(surnames)
        aliases: list[str | Alias] = [
            f"{first} {last}",
            f"{first[0]}. {last}",
            "".join(rng.choice(HAN) for _ in range(rng.randint(2, 3))),
        ]
        if i % 3 == 0:
            aliases.append(Alias(text=last, case="sensitive"))
        if i % 5 == 0:
            aliases.append(
                Alias(text=f"{_word(rng)}-{_word(rng)} {_word(rng)}", case="insensitive")
            )
        entries.append(entry(f"e{i}", *aliases))
        count += len(aliases)
    return Watchlist(entries=tuple(entries))


def _alias_regex(a: Alias) -> regex.Pattern[str]:
    form = match_form(normalize(a.text))
    body = regex.escape(form)
    if regex.match(_W, form[0]):
        body = f"(?<!{_W})" + body
    if regex.match(_W, form[-1]):
        body += f"(?!{_W})"
    if a.case == "sensitive":
        return regex.compile(body)
    if a.case == "insensitive":
        return regex.compile(body, regex.IGNORECASE)
    # auto: the short words with a capital exactly as written, the rest in any case
    parts = regex.split(f"({_W}+)", form)
    out = []
    for p in parts:
        if regex.fullmatch(f"{_W}+", p) and len(p) <= 3 and any(c.isupper() for c in p):
            out.append(regex.escape(p))
        else:
            out.append(f"(?i:{regex.escape(p)})")
    body = "".join(out)
    if regex.match(_W, form[0]):
        body = f"(?<!{_W})" + body
    if regex.match(_W, form[-1]):
        body += f"(?!{_W})"
    return regex.compile(body)


def brute_force(wl: Watchlist) -> Callable[[str, str], set[str]]:
    """The reference: every alias's regular expression searched in turn."""
    patterns = [(e.id, _alias_regex(a)) for e in wl.entries for a in e.aliases]

    def match(title: str, summary: str) -> set[str]:
        fields = [match_form(plain(title)), match_form(plain(summary))]
        return {eid for eid, rx in patterns if any(rx.search(f) for f in fields)}

    return match


def generated_items(rng: random.Random, wl: Watchlist, n: int) -> list[tuple[str, str]]:
    """Filler with aliases dropped in: as written, lower-cased, glued to a word or to
    Chinese, with a hyphen for a space."""
    aliases = [a.text for e in wl.entries for a in e.aliases]

    def field() -> str:
        words = [rng.choice(FILLER) for _ in range(rng.randint(5, 14))]
        for _ in range(rng.randint(0, 4)):
            a = rng.choice(aliases)
            style = rng.randrange(6)
            if style == 1:
                a = a.lower()
            elif style == 2:
                a = rng.choice(SYLLABLES) + a  # glued before
            elif style == 3:
                a = a + rng.choice(SYLLABLES)  # glued after
            elif style == 4:
                a = rng.choice("据报道政府") + a + rng.choice("表示访问")  # inside Chinese
            elif style == 5:
                a = a.replace(" ", "-")
            words.insert(rng.randrange(len(words) + 1), a)
        return " ".join(words)

    return [(field(), f"<p>{field()}</p> &amp; {field()}") for _ in range(n)]


@pytest.fixture(scope="module")
def big() -> Watchlist:
    return generated_watchlist(random.Random(9), 1000)


def test_a_thousand_aliases_match_as_the_brute_force_reference(big: Watchlist) -> None:
    assert sum(len(e.aliases) for e in big.entries) >= 1000
    m = Matcher(big)
    rng = random.Random(10)
    items = generated_items(rng, big, 150)
    reference = brute_force(big)
    matched = 0
    for title, summary in items:
        want = reference(title, summary)
        assert ids(m, title, summary) == want, (title, summary)
        matched += bool(want)
    assert matched >= 100  # the set exercises matches, not only misses


# -- normalising: the fast paths give what the parser gives ------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Xi &amp; Biden",
        "Xi&amp;#8217;s visit",  # encoded twice
        "&notit; &notin; &not &copy &copyx &#0; &#x80; &#xD800; &#1114112; & &; &#",
        "a&nbsp;b&ZeroWidthSpace;c&#x200b;d &#13;&#9;e\r\nf",
        "&lt;b&gt;not a tag&lt;/b&gt;",
    ],
)
def test_text_without_markup_is_decoded_as_the_html_parser_does(text: str) -> None:
    assert plain(text) == normalize(
        _html_text(_html_text(text)) if "&amp;#" in text else _html_text(text)
    )


def test_normalize_fast_paths_keep_the_folding() -> None:
    assert normalize("  a\t\nb\u00a0c\u3000d  ") == "a b c d"
    assert normalize("Xi\u2019s \u201cvisit\u201d \u2014 ok\u200b") == 'Xi\'s "visit" - ok'
    assert normalize("ＴＡＩＷＡＮ") == "TAIWAN"
    assert normalize("a\x00b\x1bc\u202ed") == "abcd"
    assert match_form("Xi-Biden  talks") == "Xi Biden talks"
    assert match_form("亨特・拜登 ʼ `") == "亨特·拜登 ' '"
