"""A channel's own entries from ``/track`` input: :func:`make_user_entry` checks the
name and aliases a user typed (too short, too common, a single CJK character ...) and
builds a self-contained :class:`~bot.core.watchlist.Entry`; :func:`add_user_aliases`
adds aliases to an entry a channel already tracks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

from bot.core.common_names import COMMON_SURNAMES as _COMMON_SURNAMES
from bot.core.common_names import COMMON_WORDS as _COMMON_WORDS
from bot.core.common_names import PINYIN_SURNAMES as _PINYIN_SURNAMES
from bot.core.models import EntryKind
from bot.core.text import is_cjk as _is_cjk
from bot.core.text import normalize
from bot.core.watchlist import ID_PATTERN, MAX_NAME, Alias, Entry, slugify
from bot.errors import InputError

# -- /track ---------------------------------------------------------------------------

MAX_USER_ALIASES = 20
MIN_SURNAME = 5

_SPLIT_ALIASES = re.compile(r"[,\n;，、；]")
_LATIN_LETTER = re.compile(r"[^\W\d_]")


def _check_user_alias(alias: str, what: str) -> str:
    text = normalize(alias)
    if not text:
        raise InputError(f"{what} is empty.")
    if len(text) > 80:
        raise InputError(f"{what} {text[:40]!r}… is too long (80 characters at most).")
    if text[0] in "@$":
        raise InputError(f"{what} {text!r} cannot start with @ or $.")
    cjk = sum(1 for ch in text if _is_cjk(ch))
    letters = [ch for ch in text if ch.isalnum() and not _is_cjk(ch)]
    if cjk == 0 and not letters:
        raise InputError(f"{what} {text!r} has no letters: it would match nothing useful.")
    if cjk == 1 and not letters:
        raise InputError(
            f"{what} {text!r} is a single character: it would match far too much; "
            "give a longer name."
        )
    if cjk == 0 and len(letters) < 2:
        raise InputError(f"{what} {text!r} is too short: a single letter would match far too much.")
    if text.lower() in _COMMON_WORDS:
        raise InputError(f"{what} {text!r} is too common a word to track on its own.")
    return text


def _surname_alias(name: str) -> Alias | None:
    """The surname alone, for an actor, only when that is safe (see make_user_entry)."""
    words = name.split()
    if len(words) < 2 or any(_is_cjk(ch) for ch in name):
        return None
    if words[0].lower().strip(".,") in _PINYIN_SURNAMES:
        return None  # Chinese order: the last word is a given name
    surname = words[-1].strip(".,")
    if surname.lower() in {"jr", "sr", "ii", "iii", "iv"} and len(words) > 2:
        surname = words[-2].strip(".,")
    if (
        len(surname) < MIN_SURNAME
        or not surname.isalpha()
        or not surname[0].isupper()
        or surname.isupper()
        or surname.lower() in _COMMON_SURNAMES
        or surname.lower() in _COMMON_WORDS
    ):
        return None
    return Alias(text=surname, case="sensitive")


def make_user_entry(
    kind: str,
    name: str,
    aliases: Sequence[str] | str,
    *,
    existing_ids: Iterable[str],
) -> Entry:
    """A channel's own entry from ``/track`` input.

    The id is a slug of the name (``"Li Qiang"`` -> ``li-qiang``; a name with no Latin
    letters gets ``entry-<hash>``). The name itself is always an alias. Aliases may be a
    list or one comma-separated string (Chinese commas too).

    For an actor with a multi-word Latin name, the surname alone is added, matched with
    its exact case, only when it is safe: at least five letters, not a common surname
    (Smith, Brown, Sullivan, Lee ...) or common word, and the name not in Chinese order
    (family name first, e.g. "Li Qiang", "Wang Wentao": there the last word is a given
    name). So "Jerome Powell" and "Ted Cruz" get only the full name; "Rishi Sunak" also
    gets "Sunak" (but not "sunak").

    Raises :class:`InputError` with a message fit for the user."""
    kind_text = (kind or "").strip().lower()
    try:
        entry_kind = EntryKind(kind_text)
    except ValueError:
        raise InputError(f"Kind must be 'actor' (a person) or 'topic', not {kind!r}.") from None
    clean_name = normalize(name or "")
    if not clean_name:
        raise InputError("Give a name for what to track.")
    if len(clean_name) > MAX_NAME:
        raise InputError(f"The name is too long ({MAX_NAME} characters at most).")
    _check_user_alias(clean_name, "The name")

    raw = [aliases] if isinstance(aliases, str) else list(aliases)
    parts: list[str] = []
    for chunk in raw:
        parts.extend(p for p in _SPLIT_ALIASES.split(chunk or "") if p.strip())
    if len(parts) > MAX_USER_ALIASES:
        raise InputError(f"Too many aliases ({len(parts)}): {MAX_USER_ALIASES} at most.")
    texts = [clean_name] + [_check_user_alias(p, "Alias") for p in parts]

    alias_list: list[Alias] = []
    seen: set[str] = set()
    for t in texts:
        if t.casefold() not in seen:
            seen.add(t.casefold())
            alias_list.append(Alias(text=t))
    if entry_kind is EntryKind.ACTOR:
        surname = _surname_alias(clean_name)
        if surname is not None and surname.text.casefold() not in seen:
            alias_list.append(surname)

    entry_id = slugify(clean_name)
    if not entry_id or not re.match(ID_PATTERN, entry_id):
        digest = hashlib.sha1(clean_name.encode("utf-8")).hexdigest()[:8]  # noqa: S324
        entry_id = f"entry-{digest}"
    taken = set(existing_ids)
    if entry_id in taken:
        raise InputError(
            f"An entry with id {entry_id!r} is already tracked here. Remove it first "
            f"(/untrack {entry_id}) or choose another name."
        )
    try:
        return Entry(id=entry_id, kind=entry_kind, name=clean_name, aliases=tuple(alias_list))
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(
            f"Cannot track this: {first['msg'].removeprefix('Value error, ')}"
        ) from None


def add_user_aliases(entry: Entry, aliases: Sequence[str] | str) -> tuple[Entry, list[str]]:
    """``entry`` with the aliases a user typed added (checked as :func:`make_user_entry`
    checks them; ones it has already, in any case, are skipped), and the texts added."""
    probe = make_user_entry(entry.kind.value, entry.name, aliases, existing_ids=())
    have = {a.text.casefold() for a in entry.aliases}
    extra = [a for a in probe.aliases[1:] if a.text.casefold() not in have]
    if not extra:
        return entry, []
    definition = entry.to_definition()
    definition["aliases"] = [*definition.get("aliases", []), *(a.compact() for a in extra)]
    try:
        updated = Entry.from_definition(definition)
    except InputError as err:
        raise InputError(f"Cannot add these aliases: {err}") from None
    return updated, [a.text for a in extra]


__all__ = ["add_user_aliases", "make_user_entry"]
