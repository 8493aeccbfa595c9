"""Untrusted text and links made safe to print in chat (public: every renderer uses them).

Titles, summaries and outlet names come from feeds and are untrusted. Before any of it
is printed:

- :func:`neutralize_mentions` puts a zero-width space after ``@`` in ``@everyone`` /
  ``@here`` / ``@channel`` and after ``<`` in ``<@id>``, ``<@&id>``, ``<#id>``, ``<!here>``;
- :func:`neutralize_links` breaks ``scheme://`` and ``www.`` so chat clients do not turn
  feed text into links;
- :func:`escape_markdown` (Markdown output) backslash-escapes ``\\ * _ ~ ` | > < # [ ] ( )``
  and leading list markers, so feed text can neither format nor make a masked link.

:func:`inert` applies all three, after removing bidi controls (``text.strip_bidi``).
The only link printed is the story's own URL, through
:func:`safe_url` (http/https only, unsafe characters percent-encoded; anything else,
``javascript:`` included, is dropped).
"""

from __future__ import annotations

import re

from bot.core.links import MAX_PRINTED_URL, printable_link
from bot.core.text import strip_bidi

MAX_URL = MAX_PRINTED_URL
ZWSP = "\u200b"


_MD_SPECIAL = re.compile(r"([\\*_~`|<>#\[\]()])")
_LEADING_DASH = re.compile(r"^([ \t]*)([-+])", re.MULTILINE)
_LEADING_NUMBER = re.compile(r"^([ \t]*\d+)\.", re.MULTILINE)
_EVERYONE = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_ANGLE_MENTION = re.compile(r"<(?=[@#!])")
_SCHEME = re.compile(r"(?<=[A-Za-z0-9+.-])://")
_WWW = re.compile(r"\b(www)\.", re.IGNORECASE)


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown in untrusted text (Discord/CommonMark flavour), leading
    list markers ("- ", "+ ", "1. ") included."""
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _LEADING_DASH.sub(r"\1\\\2", text)
    return _LEADING_NUMBER.sub(r"\1\\.", text)


def neutralize_mentions(text: str) -> str:
    """``@everyone``/``@here``/``@channel`` and ``<@…>``/``<@&…>``/``<#…>``/``<!…>`` made
    inert with a zero-width space (after ``@`` or ``<``)."""
    text = _EVERYONE.sub("@" + ZWSP, text)
    return _ANGLE_MENTION.sub("<" + ZWSP, text)


def neutralize_links(text: str) -> str:
    """Stop chat clients from auto-linking URLs written in feed text."""
    text = _SCHEME.sub(ZWSP + "://", text)
    return _WWW.sub(lambda m: m.group(1) + ZWSP + ".", text)


def inert(text: str, *, markdown: bool = True) -> str:
    """Untrusted text made safe to print: no bidi control (they could reorder the rest of
    the message), no mention, no link, and (Markdown) no markup."""
    text = neutralize_links(neutralize_mentions(strip_bidi(text)))
    return escape_markdown(text) if markdown else text


def safe_url(url: str | None) -> str | None:
    """The URL if it is a printable http(s) link, normalised so it cannot break out of a
    Markdown link (``(``, ``)``, ``<``, ``>``, spaces, quotes percent-encoded); credentials
    dropped. None for anything else (``javascript:``, ``data:``, relative, too long).
    See :func:`bot.core.links.printable_link`."""
    return printable_link(url)
