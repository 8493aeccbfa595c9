"""The core's text toolkit: HTML to text, normalisation, invisible characters, scripts."""

from __future__ import annotations

import random

import pytest

from bot.core.text import (
    BIDI_CONTROLS,
    CJK,
    has_cjk,
    is_cjk,
    match_form,
    normalize,
    plain,
    strip_bidi,
    strip_html,
    truncate,
)

# -- HTML to text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("No markup at all", "No markup at all"),
        ("<b>Xi&nbsp;Jinping</b> speaks", "Xi Jinping speaks"),
        ("Washington &amp; Beijing", "Washington & Beijing"),
        ("<p>The minister&#8217;s trip, Oct. 26&ndash;28.</p>", "The minister's trip, Oct. 26-28."),
        ("Xi&amp;#8217;s plan", "Xi's plan"),  # encoded twice
        ("Xi&amp;rsquo;an fair", "Xi'an fair"),
        ("<p>one</p><p>two</p>three<br>four<li>five</li>", "one two three four five"),
        ("<script>alert('x')</script>Summit<style>p { color: red }</style> talks", "Summit talks"),
        ("<SCRIPT type=text/javascript>var a = 1 < 2;</SCRIPT>News", "News"),
        ("<template><p>hidden</p></template>shown", "shown"),
        ("<!-- a comment -->Text<!-- another -->", "Text"),
        ("Talks in <a href='https://spam.test'>Woodside</a>", "Talks in Woodside"),
        ("  lots \n\n of\t\twhite   space  ", "lots of white space"),
        # not markup: kept as text
        ("3<5 and 6>4", "3<5 and 6>4"),
        ("AT&T shares; Q&A", "AT&T shares; Q&A"),
        ("&lt;@&amp;42&gt; pinged", "<@&42> pinged"),
        # double-encoded tags are shown, not interpreted (as before: one decoding of tags)
        ("&lt;b&gt;Summit&lt;/b&gt;", "<b>Summit</b>"),
    ],
)
def test_plain(html: str, text: str) -> None:
    assert plain(html) == text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<div>" * 20000 + "deep text" + "</div>" * 20000, "deep text"),
        ("<p>unclosed <b>bold <i>italic", "unclosed bold italic"),
        ("</p></div>stray closers</span>", "stray closers"),
        ("x\x00y", "xy"),
        ("a\ud800b <b>c</b>", "ab c"),  # a lone surrogate from a broken decoder
        ("<![CDATA[x]]>after", "after"),
        ("<svg><script>evil()</script><title>Chart</title></svg>", "Chart"),
        ("<html><head><title>Page</title></head><body>Body</body></html>", "Page Body"),
        ("<img src=x onerror=alert(1)>caption", "caption"),
        ("<textarea><b>raw</b></textarea>", "<b>raw</b>"),
        ("<" * 1000, "<" * 1000),
        ("&" * 1000 + ";", "&" * 1000 + ";"),
    ],
)
def test_broken_and_hostile_html(html: str, text: str) -> None:
    assert plain(html) == text


def test_strip_html_never_raises_on_random_input() -> None:
    rng = random.Random(11)
    alphabet = "<>/&;#!-=\"' abcxyz\x00\ud800\u202e\u200b0123456789pbrscriptstyle"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        out = strip_html(text)
        assert isinstance(out, str)
        assert "\x00" not in normalize(out)


def test_text_without_markup_is_returned_as_is() -> None:
    text = "Xi Jinping meets Biden"
    assert strip_html(text) is text


# -- normalisation and invisible characters ----------------------------------------------


def test_normalize_folds_typography_and_drops_invisible_characters() -> None:
    assert normalize("Biden\u2019s \u201cplan\u201d \u2014 ＡＰＥＣ\u3000summit") == (
        'Biden\'s "plan" - APEC summit'
    )
    assert normalize("Xi\u200bJin\u00adping\ufeff") == "XiJinping"


@pytest.mark.parametrize("control", list(BIDI_CONTROLS))
def test_bidi_controls_are_dropped(control: str) -> None:
    text = f"Xi {control}Jinping{control} visits"
    assert normalize(text) == "Xi Jinping visits"
    assert plain(f"<b>{text}</b>") == "Xi Jinping visits"
    assert strip_bidi(text) == "Xi Jinping visits"


def test_bidi_controls_listed() -> None:
    assert set(BIDI_CONTROLS) == {
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2066, 0x206A)),
        "\u200e",
        "\u200f",
        "\u2060",
        "\u061c",
    }
    # letters of right-to-left scripts stay
    assert strip_bidi("\u202eשלום مرحبا\u202c") == "שלום مرحبا"


def test_truncate_and_match_form() -> None:
    assert truncate("Wang Yi arrives in Washington", 16) == "Wang Yi arrives…"
    assert truncate("short", 16) == "short"
    assert match_form("Xi-Biden  talks 亨特\u30fb拜登") == "Xi Biden talks 亨特·拜登"


# -- script classes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ch", "cjk"),
    [
        ("习", True),  # Han
        ("々", True),  # Han iteration mark
        ("𠮷", True),  # Han, extension B
        ("の", True),  # Hiragana
        ("カ", True),  # Katakana
        ("ｶ", True),  # half-width Katakana
        ("ー", True),  # prolonged sound mark, inside kana words
        ("ㄅ", True),  # Bopomofo
        ("한", True),  # Hangul: Korean glues particles to words (바이든은)
        ("ᄀ", True),  # Hangul Jamo
        ("a", False),
        ("é", False),
        ("Ж", False),
        ("ไ", False),  # Thai: not handled as CJK
        ("。", False),  # CJK punctuation is punctuation
        ("、", False),
        ("Ａ", False),
        ("1", False),
        (" ", False),
    ],
)
def test_is_cjk(ch: str, cjk: bool) -> None:
    assert is_cjk(ch) is cjk
    assert has_cjk(f"abc {ch} def") is cjk


def test_cjk_runs() -> None:
    assert CJK.findall("Xi 习近平 meets 바이든 in サンフランシスコ") == [
        *"习近平",
        *"바이든",
        *"サンフランシスコ",
    ]
    assert not has_cjk("Xi Jinping meets Biden")
