"""Text helpers shared by matching and display: HTML to plain text, normalisation."""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]*>")
_WS = re.compile(r"\s+")
_BLOCK = re.compile(r"(?i)<\s*(br|/p|/div|/li|/h\d)\b[^>]*>")

# Typographic characters folded to ASCII so that aliases written plainly still match.
_FOLD = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-", "\ufe58": "-", "\ufe63": "-",
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ",
        "\u3000": " ", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "", "\u00ad": "",
    }
)


def strip_html(text: str) -> str:
    """Remove tags and decode entities (twice, for double-encoded feeds)."""
    if not text:
        return ""
    text = _BLOCK.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    if "&" in text and ";" in text:
        text = html.unescape(_TAG.sub(" ", text))
    return text


def normalize(text: str) -> str:
    """NFKC (full-width forms to ASCII), typographic quotes/dashes/spaces folded,
    whitespace collapsed. Case is kept: case rules belong to the matcher."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(_FOLD)
    return _WS.sub(" ", text).strip()


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


def match_form(text: str) -> str:
    """Already-normalized text (see :func:`normalize`) in the form the watchlist matcher
    compares: dots between name parts unified, hyphens as spaces, single spaces.
    Length may shrink (spaces collapse); case is kept."""
    text = text.translate(_MATCH_FOLD)
    if "  " in text:
        text = _SPACES.sub(" ", text)
    return text.strip()
