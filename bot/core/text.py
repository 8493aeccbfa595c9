"""The core's text toolkit: HTML to plain text, normalisation, invisible characters and
script classes, shared by matching, clustering, search and display.

- :func:`strip_html` / :func:`plain`: feed text (HTML, entities, possibly encoded twice)
  to one line of plain text, through a real HTML parser (selectolax's lexbor, the HTML
  Standard's parsing rules), so broken or hostile markup cannot hide text or leak tags;
- :func:`normalize`: NFKC, typographic characters folded, invisible characters (zero
  width, soft hyphen, bidi controls) dropped, whitespace collapsed;
- :func:`strip_bidi`: bidi controls (:data:`BIDI_CONTROLS`) removed, for text that is
  printed without being normalised (feed and entry names);
- :data:`CJK_CLASS`, :data:`CJK`, :func:`is_cjk`, :func:`has_cjk`: the one definition of
  "CJK" (``regex`` module script properties);
- :func:`match_form`: the watchlist matcher's comparison form.
"""

from __future__ import annotations

import html
import re
import unicodedata

import regex
from selectolax.lexbor import LexborHTMLParser

# -- script classes ------------------------------------------------------------------------

#: The scripts "CJK" means everywhere (matching, clustering, search, alias checks), as the
#: body of a ``regex`` character class: Han (ideographs, radicals, iteration marks), the
#: kana (with the marks used inside kana words: the prolonged sound mark, the middle dot,
#: voicing marks), Bopomofo, and Hangul. These scripts write words without spaces, or
#: (Korean) glue particles to them ("바이든은", "바이든과"), so a name is found inside a
#: run of them without word boundaries, a search for it cannot rely on a word tokenizer,
#: and clustering compares them by character pairs. Thai, Lao, Khmer and Myanmar, which
#: also lack spaces, are not included (nothing in Briefbot handles them yet).
CJK_CLASS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Bopomofo}\p{Hangul}\u3099-\u309c\u30a0\u30fb\u30fc"
#: One CJK character (compile further patterns with ``regex`` and :data:`CJK_CLASS`).
CJK = regex.compile(f"[{CJK_CLASS}]")
#: A run of CJK characters.
CJK_RUN = regex.compile(f"[{CJK_CLASS}]+")


def is_cjk(ch: str) -> bool:
    """Whether the character ``ch`` is CJK (see :data:`CJK_CLASS`)."""
    return CJK.match(ch) is not None


def has_cjk(text: str) -> bool:
    """Whether ``text`` has a CJK character."""
    return CJK.search(text) is not None


# -- invisible characters ------------------------------------------------------------------

#: Bidirectional formatting characters: embeddings and overrides (U+202A-202E), isolates
#: (U+2066-2069), the implicit marks (U+200E, U+200F, U+061C) and the word joiner
#: (U+2060). In feed text or names they can reorder what a chat shows around them
#: ("Trojan Source"), so they are removed wherever zero-width characters are.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069"
#: Zero-width characters (and the soft hyphen) dropped by :func:`normalize`.
ZERO_WIDTH = "\u200b\u200c\u200d\ufeff\u00ad"
#: Control characters that are not whitespace (NUL, escape, DEL, C1...): dropped by
#: :func:`normalize`, as the HTML parser drops them.
_CONTROLS = "".join(
    chr(c) for c in range(0xA0) if unicodedata.category(chr(c)) == "Cc" and not chr(c).isspace()
)

_DROP_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS))


def strip_bidi(text: str) -> str:
    """``text`` without bidi controls (:data:`BIDI_CONTROLS`)."""
    return text.translate(_DROP_BIDI)


# -- HTML to text ----------------------------------------------------------------------------

#: Elements whose content is not text a reader sees.
_NOT_TEXT = ["script", "style", "template"]
#: A character reference left after one decoding: the text was encoded twice.
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _html_text(markup: str) -> str:
    """The text of an HTML fragment: every tag is a word break (as inline markup in feed
    text mostly separates words), character references decoded, the content of scripts,
    styles and templates and of comments dropped. Never raises: the HTML Standard's
    parser accepts any input (NUL and lone surrogates are dropped)."""
    tree = LexborHTMLParser(markup, is_fragment=True)
    if "<" in markup:
        tree.strip_tags(_NOT_TEXT)
    root = tree.root
    return "" if root is None else root.text(separator=" ")


def strip_html(text: str) -> str:
    """Remove tags and decode entities (twice, for double-encoded feeds:
    ``Xi&amp;#8217;s`` is ``Xi’s``). Whitespace and control characters are left to
    :func:`normalize`."""
    if not text:
        return ""
    if "<" not in text and "&" not in text:
        return text
    text = _html_text(text) if _needs_parser(text) else html.unescape(text)
    if "&" in text and _ENTITY.search(text):
        text = _html_text(text) if _needs_parser(text) else html.unescape(text)
    return text


#: A lone surrogate: the HTML parser drops it, ``html.unescape`` would keep it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _needs_parser(text: str) -> bool:
    """Whether ``text`` needs the HTML parser: it has markup (or a lone surrogate).
    Without, the parser only decodes character references, which ``html.unescape``
    does by the same (HTML Standard) rules, several times faster; the two differ only in
    carriage returns and NUL, which :func:`normalize` folds away."""
    return "<" in text or _SURROGATE.search(text) is not None


# -- normalisation ---------------------------------------------------------------------------

# Typographic characters folded to ASCII so that aliases written plainly still match;
# invisible characters dropped.
_FOLD = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-", "\ufe58": "-", "\ufe63": "-",
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ",
        "\u3000": " ",
        **dict.fromkeys(ZERO_WIDTH, ""),
        **dict.fromkeys(BIDI_CONTROLS, ""),
        **dict.fromkeys(_CONTROLS, ""),
    }
)  # fmt: skip


#: Any character :data:`_FOLD` changes (most text has none: the translation is skipped).
_FOLD_CHARS = re.compile("[" + re.escape("".join(chr(c) for c in _FOLD)) + "]")


def normalize(text: str) -> str:
    """NFKC (full-width forms to ASCII), typographic quotes/dashes/spaces folded,
    zero-width characters, bidi controls and other control characters dropped,
    whitespace collapsed. Case is
    kept: case rules belong to the matcher."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if _FOLD_CHARS.search(text) is not None:
        text = text.translate(_FOLD)
    # str.split() splits on the whitespace ``\s`` matches (str.isspace) and drops it at
    # both ends: the same as collapsing runs to one space and stripping
    return " ".join(text.split())


def plain(text: str) -> str:
    """Feed text as a single line of plain text, for display and matching."""
    return normalize(strip_html(text))


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary with an ellipsis, never above ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


# -- matching form ---------------------------------------------------------------------

# Characters folded further for matching only (never for display): middle dots used
# between the parts of transliterated names (亨特·拜登, 亨特‧拜登, 亨特・拜登) become one
# dot, modifier-letter apostrophes become "'", and hyphens become spaces so that
# "Xi-Biden", "lab-leak" and "military-to-military" match aliases written with spaces
# (and the other way round).
_MATCH_FOLD = str.maketrans(
    {
        "\u2027": "·",
        "\u30fb": "·",
        "\u2022": "·",
        "\u2219": "·",
        "\u22c5": "·",
        "\u02bc": "'",
        "\u02b9": "'",
        "`": "'",
        "-": " ",
    }
)
_SPACES = re.compile(r" {2,}")


#: Any character :data:`_MATCH_FOLD` changes but the hyphen.
_MATCH_FOLD_CHARS = re.compile(
    "[" + re.escape("".join(chr(c) for c in _MATCH_FOLD if c != ord("-"))) + "]"
)


def match_form(text: str) -> str:
    """Already-normalized text (see :func:`normalize`) in the form the watchlist matcher
    compares: dots between name parts unified, hyphens as spaces, single spaces.
    Length may shrink (spaces collapse); case is kept."""
    if _MATCH_FOLD_CHARS.search(text) is not None:
        text = text.translate(_MATCH_FOLD)
    elif "-" in text:
        text = text.replace("-", " ")
    if "  " in text:
        text = _SPACES.sub(" ", text)
    return text.strip()
