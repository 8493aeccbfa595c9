"""Plural and verb forms for Latin-script phrases (``inflect = true`` on an entry or an
alias): "sanction" also matches "sanctions", "sanctioned", "sanctioning"; "export
control" matches "export controls"; "ban" matches "bans", "banned", "banning".

Only the last word of a phrase is inflected, by English spelling rules (no dictionary):
a word that is not plain lower-case ASCII letters (an acronym such as "ASML", a name in
another script) or ends in "s" (plural already: "sanctions") gets no forms. A spelling
that is no real word ("visitted") costs nothing: it never occurs in text.

:func:`inflected` expands a watchlist's flagged phrases into extra aliases of the same
options, for the matcher; the watchlist itself keeps the phrases as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.core.watchlist import Alias, Entry, Rule, Watchlist

_VOWELS = frozenset("aeiou")
_LAST_WORD = re.compile(r"([A-Za-z]+)$")
MIN_LETTERS = 3


def word_forms(word: str) -> list[str]:
    """The inflected forms of one lower-case English word (not the word itself)."""
    if len(word) < MIN_LETTERS or not word.isascii() or not word.isalpha():
        return []
    if not word.islower() and not (word[0].isupper() and word[1:].islower()):
        return []  # an acronym or odd casing: leave it alone
    w = word
    low = w.lower()
    if low.endswith("s"):
        return []
    forms: list[str] = []
    consonant_y = low.endswith("y") and low[-2] not in _VOWELS
    if consonant_y:
        forms += [w[:-1] + "ies", w[:-1] + "ied", w + "ing"]
    elif low.endswith(("x", "z", "ch", "sh")):
        forms += [w + "es", w + "ed", w + "ing"]
    elif low.endswith("e"):
        forms += [w + "s", w + "d"]
        forms.append(w + "ing" if low.endswith(("ee", "ye", "oe")) else w[:-1] + "ing")
    else:
        forms += [w + "s", w + "ed", w + "ing"]
        # consonant-vowel-consonant: "ban" -> "banned", "banning" (both spellings kept:
        # "visited" and "visitted" alike, one of them never occurs)
        if (
            low[-1] not in _VOWELS
            and low[-1] not in "wxy"
            and low[-2] in _VOWELS
            and low[-3] not in _VOWELS
        ):
            forms += [w + w[-1] + "ed", w + w[-1] + "ing"]
    return forms


def phrase_forms(text: str) -> list[str]:
    """Inflected forms of a phrase: its last word inflected, the rest as written."""
    m = _LAST_WORD.search(text)
    if m is None:
        return []
    head = text[: m.start()]
    if head and head[-1].isalnum():
        return []  # the last "word" is glued to non-Latin letters
    return [head + form for form in word_forms(m.group(1))]


def _expand(aliases: Iterable[Alias], default: bool) -> tuple[Alias, ...]:
    out: list[Alias] = []
    for a in aliases:
        wanted = a.inflect if a.inflect is not None else default
        out.append(a)
        if wanted and not a.is_ref:
            out.extend(a.model_copy(update={"text": t}) for t in phrase_forms(a.text))
    return tuple(out)


def _groups(groups: Iterable[tuple[Alias, ...]], default: bool) -> tuple[tuple[Alias, ...], ...]:
    return tuple(_expand(g, default) for g in groups)


def _rule(r: Rule, default: bool) -> Rule:
    return r.model_copy(
        update={"all": _groups(r.all, default), "context": _groups(r.context, default)}
    )


def _wants(aliases: Iterable[Alias]) -> bool:
    return any(a.inflect for a in aliases)


def _entry(e: Entry) -> Entry:
    groups = [*e.context, *(g for r in e.rules for g in (*r.all, *r.context))]
    if (
        not e.inflect
        and not _wants(e.aliases)
        and not _wants(e.unless)
        and not any(_wants(g) for g in groups)
    ):
        return e
    d = e.inflect
    return e.model_copy(
        update={
            "aliases": _expand(e.aliases, d),
            "unless": _expand(e.unless, d),
            "context": _groups(e.context, d),
            "rules": tuple(_rule(r, d) for r in e.rules),
        }
    )


def inflected(watchlist: Watchlist) -> Watchlist:
    """``watchlist`` with every phrase that asks for it (its own ``inflect``, else its
    entry's) followed by its inflected forms. The same object when none asks."""
    entries = tuple(_entry(e) for e in watchlist.entries)
    if all(new is old for new, old in zip(entries, watchlist.entries, strict=True)):
        return watchlist
    return watchlist.model_copy(update={"entries": entries})


__all__ = ["inflected", "phrase_forms", "word_forms"]
