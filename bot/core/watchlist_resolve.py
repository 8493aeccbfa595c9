"""A watchlist file's data, already read, validated and resolved: ``[[entry]]`` tables,
``[terms]`` lists and ``disable = [...]``, with every ``@entry-id`` and ``$term-list``
reference expanded (see :mod:`bot.core.watchlist`); and one watchlist merged over
another (a user's file over the defaults, a channel's own entries over its watchlist).

Pure: it takes the parsed TOML as a mapping and reads no files (that is
:mod:`bot.watchlist_files`, at the edge). Every problem is a :class:`ConfigError`
naming the source, the key (``entry[3].aliases``, 1-based) and the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.text import normalize
from bot.core.validation import format_validation_error
from bot.core.watchlist import ID_PATTERN, Alias, Entry, Watchlist
from bot.errors import ConfigError


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry: list[Entry] = Field(default_factory=list)
    terms: dict[str, tuple[Alias, ...]] = Field(default_factory=dict)
    disable: list[str] = Field(default_factory=list)
    replace_defaults: bool = False

    @field_validator("terms")
    @classmethod
    def _term_names(cls, value: dict[str, tuple[Alias, ...]]) -> dict[str, tuple[Alias, ...]]:
        for name, items in value.items():
            if not re.match(r"^[A-Za-z0-9_-]+$", name):
                raise ValueError(f"term list name {name!r}: use letters, digits, - and _")
            if not items:
                raise ValueError(f"term list {name!r} is empty")
        return value


def _validation_error(err: ValidationError, source: str) -> ConfigError:
    return format_validation_error(err, source)


class _Resolver:
    """Expands @entry and $terms references, depth-first, detecting cycles."""

    def __init__(
        self,
        entries: Sequence[Entry],
        terms: Mapping[str, tuple[Alias, ...]],
        base_entries: Mapping[str, Entry],
        base_terms: Mapping[str, tuple[Alias, ...]],
        source: str,
    ) -> None:
        self.raw = {e.id: (i, e) for i, e in enumerate(entries)}
        self.terms = terms
        self.base_entries = base_entries
        self.base_terms = base_terms
        self.source = source
        self.done: dict[str, Entry] = {}
        self.active: list[str] = []

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, source=self.source, key=key)

    def expand(
        self, aliases: Iterable[Alias], key: str, terms_seen: tuple[str, ...] = ()
    ) -> tuple[Alias, ...]:
        out: list[Alias] = []
        for a in aliases:
            if not a.is_ref:
                if a.exclude or a.context:
                    expanded = {
                        "exclude": self.expand(a.exclude, key),
                        "context": tuple(self.expand(g, key) for g in a.context),
                    }
                    out.append(a.model_copy(update=expanded))
                else:
                    out.append(a)
                continue
            name = a.text[1:]
            if a.text[0] == "$":
                items = self.terms.get(name, self.base_terms.get(name))
                if items is None:
                    raise self.fail(key, f"unknown term list {a.text!r} (define it in [terms])")
                if name in terms_seen:
                    raise self.fail(key, f"term list {a.text!r} refers to itself")
                out.extend(self.expand(items, key, (*terms_seen, name)))
            else:
                target = self.entry(name, key)
                for ta in target.aliases:
                    update: dict[str, Any] = {}
                    if target.exclude:
                        update["exclude"] = ta.exclude + target.exclude
                    if target.context:
                        update["context"] = ta.context + target.context
                    out.append(ta.model_copy(update=update) if update else ta)
        # drop duplicates, keep order
        seen: set[Alias] = set()
        unique = []
        for a in out:
            if a not in seen:
                seen.add(a)
                unique.append(a)
        return tuple(unique)

    def entry(self, entry_id: str, key: str) -> Entry:
        if entry_id in self.done:
            return self.done[entry_id]
        if entry_id in self.raw:
            if entry_id in self.active:
                chain = " -> ".join([*self.active, entry_id])
                raise self.fail(key, f"references form a cycle: {chain}")
            index, raw = self.raw[entry_id]
            self.active.append(entry_id)
            try:
                resolved = self.resolve(raw, f"entry[{index + 1}]")
            finally:
                self.active.pop()
            self.done[entry_id] = resolved
            return resolved
        if entry_id in self.base_entries:
            return self.base_entries[entry_id]
        raise self.fail(key, f"unknown entry '@{entry_id}' (no entry has that id)")

    def resolve(self, e: Entry, key: str) -> Entry:
        rules = []
        for ri, r in enumerate(e.rules):
            rkey = f"{key}.rules[{ri + 1}]"
            groups = tuple(self.expand(g, f"{rkey}.all[{gi + 1}]") for gi, g in enumerate(r.all))
            context = tuple(
                self.expand(g, f"{rkey}.context[{gi + 1}]") for gi, g in enumerate(r.context)
            )
            rules.append(r.model_copy(update={"all": groups, "context": context}))
        return e.model_copy(
            update={
                "aliases": self.expand(e.aliases, f"{key}.aliases"),
                "exclude": self.expand(e.exclude, f"{key}.exclude"),
                "unless": self.expand(e.unless, f"{key}.unless"),
                "context": tuple(
                    self.expand(g, f"{key}.context[{gi + 1}]") for gi, g in enumerate(e.context)
                ),
                "rules": tuple(rules),
            }
        )


def _name_can_match(name: str) -> bool:
    """A name that reads as a phrase (not a reference, some letters or digits)."""
    return name[0] not in "@$" and any(ch.isalnum() for ch in name)


#: keys of an entry that take a list of phrases: a bare string there is a mistake
_LIST_KEYS = ("aliases", "unless")


def _prepare(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """The file's data with each entry's name among its aliases (unless ``match_name =
    false``), after refusing a bare string where a list of phrases belongs:
    ``aliases = "Wang Yi"`` reads as one alias but is almost always a list written wrong
    (or a comma-separated string)."""
    entries = data.get("entry")
    if not isinstance(entries, list):
        return data
    out = []
    for i, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            out.append(raw)
            continue
        for name in _LIST_KEYS:
            value = raw.get(name)
            if isinstance(value, str):
                raise ConfigError(
                    f"{name} must be a list: {name} = [{json.dumps(value, ensure_ascii=False)}]"
                    " (one phrase per string)",
                    source=source,
                    key=f"entry[{i + 1}].{name}",
                )
        out.append(_with_name(raw))
    return {**data, "entry": out}


def _with_name(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    name, aliases = raw.get("name"), raw.get("aliases", [])
    if (
        raw.get("match_name", True) is not True
        or not isinstance(name, str)
        or not isinstance(aliases, list)
    ):
        return raw  # (a wrong type is for validation to report)
    name = normalize(name)
    if not name or not _name_can_match(name):
        return raw
    texts = {
        (a if isinstance(a, str) else a.get("text") if isinstance(a, Mapping) else None)
        for a in aliases
    }
    if name.casefold() in {t.strip().casefold() for t in texts if isinstance(t, str)}:
        return raw
    return {**raw, "aliases": [*aliases, name]}


def parse_watchlist(
    data: Mapping[str, Any],
    source: str,
    *,
    base_entries: Mapping[str, Entry],
    base_terms: Mapping[str, tuple[Alias, ...]],
) -> tuple[Watchlist, dict[str, tuple[Alias, ...]]]:
    """The watchlist in ``data`` (a watchlist file's parsed TOML) and its named term
    lists. References resolve against ``data`` itself, then against ``base_entries``
    and ``base_terms`` (the default watchlist's, for a user's file)."""
    data = _prepare(data, source)
    try:
        model = _FileModel.model_validate(data)
    except ValidationError as err:
        raise _validation_error(err, source) from None
    seen: dict[str, int] = {}
    for i, e in enumerate(model.entry):
        if e.id in seen:
            raise ConfigError(
                f"duplicate id {e.id!r} (also entry[{seen[e.id] + 1}])",
                source=source,
                key=f"entry[{i + 1}].id",
            )
        seen[e.id] = i
    known = set(seen) | set(base_entries)
    for i, e in enumerate(model.entry):
        for ai, a in enumerate(e.aliases):
            for target in a.implies:
                if target not in known:
                    raise ConfigError(
                        f"implies unknown entry {target!r} (no entry has that id)",
                        source=source,
                        key=f"entry[{i + 1}].aliases[{ai + 1}].implies",
                    )
    resolver = _Resolver(model.entry, model.terms, base_entries, base_terms, source)
    entries = [resolver.entry(e.id, f"entry[{i + 1}]") for i, e in enumerate(model.entry)]
    for i, d in enumerate(model.disable):
        if not re.match(ID_PATTERN, d):
            raise ConfigError(f"{d!r} is not an entry id", source=source, key=f"disable[{i + 1}]")
    try:
        wl = Watchlist(
            entries=tuple(entries),
            disabled=tuple(model.disable),
            replace_defaults=model.replace_defaults,
            source=source,
        )
    except ValidationError as err:
        raise _validation_error(err, source) from None
    return wl, dict(model.terms)


def merge_watchlists(base: Watchlist, user: Watchlist, *, strict: bool = True) -> Watchlist:
    """``base`` with ``user``'s entries added (new ids, at the end) or replacing the
    base entry of the same id (in its place), and ``user.disabled`` removed.

    An unknown id in ``user.disabled`` is a :class:`ConfigError` (a typo in a file);
    with ``strict=False`` it is ignored (a channel's stored choices may name an entry a
    newer default watchlist no longer has).

    With ``user.replace_defaults`` the result is ``user``'s entries alone (a beat of
    one's own: the default entries are not wanted at all)."""
    if user.replace_defaults:
        if not user.entries:
            raise ConfigError(
                "replace_defaults = true but the file has no [[entry]]: nothing would be tracked",
                source=user.source or None,
                key="replace_defaults",
            )
        if user.disabled:
            raise ConfigError(
                "disable = [...] has no effect with replace_defaults = true: remove it",
                source=user.source or None,
                key="disable",
            )
        return Watchlist(entries=user.entries, source=user.source or base.source)
    known = set(base.ids) | {e.id for e in user.entries}
    for i, d in enumerate(user.disabled):
        if strict and d not in known:
            raise ConfigError(
                f"unknown entry id {d!r} (not in the default watchlist)",
                source=user.source or None,
                key=f"disable[{i + 1}]",
            )
    disabled = set(user.disabled)
    replacements = {e.id: e for e in user.entries}
    out = [replacements.get(e.id, e) for e in base.entries if e.id not in disabled]
    base_ids = set(base.ids)
    out.extend(e for e in user.entries if e.id not in base_ids and e.id not in disabled)
    return Watchlist(entries=tuple(out), source=user.source or base.source)


__all__ = ["merge_watchlists", "parse_watchlist"]
