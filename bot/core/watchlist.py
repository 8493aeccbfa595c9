"""The watchlist: tracked actors and topics, their aliases and match rules.

A watchlist is an ordered list of :class:`Entry`. The shipped default lives in
``bot/defaults/watchlist.toml`` (31 entries with fixed ids); a user's
``watchlist.toml`` is merged over it (:func:`~bot.core.watchlist_resolve.merge_watchlists`):
its ``[[entry]]`` tables add or replace entries by id, a top-level ``disable =
["id", ...]`` removes default entries, and ``replace_defaults = true`` drops them all.
The edge reads those files (:mod:`bot.watchlist_files`);
:mod:`bot.core.watchlist_resolve` validates and merges what they hold. A channel's own
entries (``/track``) are stored as JSON definitions (:meth:`Entry.to_definition`).

What an entry can say (see ``bot/defaults/watchlist.toml`` for worked examples):

``aliases``
    Words or phrases that name the entry. A plain string, or a table with options:

    - ``case``: ``"auto"`` (default): a word of three letters or fewer written with a
      capital (Xi, He, Li, Yi, US, BRI) must match with exactly that case, every other
      word in any case; so "Xi" does not match "XI" (Pius XI), "He Lifeng" needs the
      capital H. ``"sensitive"``: the whole alias exactly as written.
      ``"insensitive"``: any case.
    - ``exclude``: phrases that veto the alias where they overlap the hit ("Hunter
      Biden" vetoes the "Biden" inside it, but not another "Biden" in the same item).
    - ``context``: the alias counts only when the item also contains one of these
      phrases (a list), or one of each list (a list of lists).
    - ``window``: with ``context``, the context must be within this many words (in
      the same field). The title and the summary's first sentence (its *lead*) are
      read together: for a hit in the title, context anywhere in the summary counts
      (headlines name people briefly and leave who they are to the summary), and for a
      hit in the lead, context in the title counts ("China's foreign minister warns
      ..." / "Wang said ...").
    - ``implies``: entry ids this alias also refers to: a hit of "习拜会" (the Xi–Biden
      meeting) credits ``xi-jinping`` and ``joe-biden`` as well as its own entry.
      Ids missing from the effective watchlist (disabled) are ignored.

    Latin-script aliases match whole words (possessives like "Xi's" and hyphenated
    compounds like "Xi-Biden" included); Chinese/Japanese aliases match anywhere. In a
    field written (mostly) in capitals ("BIDEN, XI TO MEET"), case rules relax, except
    that a hit that reads as a roman numeral after the name it numbers ("PIUS XI",
    "SUPER BOWL XI") is still rejected.
    - ``inflect``: also the plural and verb forms of a Latin-script phrase's last
      word ("sanction": sanctions, sanctioned, sanctioning), see
      :mod:`bot.core.watchlist_inflect`; None (unset): as the entry's ``inflect``.
``exclude`` / ``context`` at the entry level
    Apply to every alias and rule of the entry.
``name``
    Counts as an alias (a file's entry gets it added when it resolves; ``match_name =
    false`` opts out).
``unless``
    Phrases that veto the entry for an item whose title or lead has one of them,
    wherever it stands (``exclude`` vetoes only the hits it overlaps).
``inflect`` at the entry level
    Inflect every phrase of the entry that does not set its own ``inflect``.
``[[entry.rules]]``
    Co-occurrence: the entry matches when the item has a hit of *every* group in
    ``all`` (each group: any of its phrases), optionally within one ``scope =
    "sentence"``, or ``scope = "lead"`` (one sentence, or spread over the title and the
    summary's first sentence read as one), or within ``window`` words, with
    ``last_follows = true`` (a hit of the last group must come after a hit of another
    group: "Albanese meets Biden ... Xi" is no Xi-Biden meeting), ``exclusive = true``
    (the last group is a relation between the others, such as a meeting: a hit of it
    tied to a third name, "talks with Putin", "Xi-Putin talks", does not count, and in
    a spread over title and lead it must name one of the others where it stands: "... a
    meeting with Biden"), ``ordered = true`` (the groups' hits in the order of
    ``all``) and ``context`` (as above).

    Who does what to whom: ``actor``, ``action`` and (optional) ``target`` instead of
    ``all`` are ``all = [actor, action, target]`` with ``ordered = true`` and ``window``
    (default :data:`SVO_WINDOW` words): "China restricts ... U.S." but not "the U.S.
    restricts China".

References, expanded when the file is loaded (so every entry stands alone):
``"@entry-id"`` stands for that entry's aliases (with its exclusions and context), and
``"$name"`` for a named list in the file's ``[terms]`` table (or the default file's).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.core.models import EntryKind
from bot.core.text import normalize
from bot.core.validation import error_location
from bot.errors import InputError

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
MAX_ID = 64
MAX_NAME = 100
MAX_ALIAS = 200
MAX_WINDOW = 60
_REF = re.compile(r"^[@$][A-Za-z0-9_-]+$")

Case = Literal["auto", "sensitive", "insensitive"]


def _alias_list(value: Any) -> Any:
    """A list of aliases: one alias (a string or a table) is a list of one."""
    return [value] if isinstance(value, str | dict) else value


def _groups(value: Any) -> Any:
    """``context`` as a tuple of groups: a flat list is one group (any of)."""
    if value is None:
        return ()
    if isinstance(value, str | dict):
        return [[value]]
    if isinstance(value, list | tuple):
        if not value:
            return ()
        if all(isinstance(v, list | tuple) for v in value):
            if any(not v for v in value):
                raise ValueError(
                    "an empty list in context: every list needs at least one phrase "
                    "(one phrase of each list must be in the item)"
                )
            return value
        if any(isinstance(v, list | tuple) for v in value):
            raise ValueError(
                "mix of phrases and lists: give one list of phrases (any of them), "
                "or a list of lists (one of each list)"
            )
        return [value]
    return value


class Alias(BaseModel):
    """A phrase that names an entry, with its options (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    case: Case = "auto"
    exclude: tuple[Alias, ...] = ()
    context: tuple[tuple[Alias, ...], ...] = ()
    window: int | None = Field(default=None, ge=1, le=MAX_WINDOW)
    implies: tuple[str, ...] = Field(default=(), max_length=8)
    #: also match plural and verb forms ("sanction": sanctions, sanctioned ...); None:
    #: as the entry says (its ``inflect``)
    inflect: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"text": data}
        return data

    @field_validator("implies", mode="before")
    @classmethod
    def _implies_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("implies")
    @classmethod
    def _implies_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry_id in value:
            if len(entry_id) > MAX_ID or not re.match(ID_PATTERN, entry_id):
                raise ValueError(f"implies: {entry_id!r} is not an entry id")
        return tuple(dict.fromkeys(value))

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("empty alias")
        if len(value) > MAX_ALIAS:
            raise ValueError(f"alias longer than {MAX_ALIAS} characters")
        if value[0] in "@$":
            if not _REF.match(value):
                raise ValueError(
                    f"{value!r}: a reference is @entry-id or $term-list (letters, digits, -)"
                )
            return value
        if not any(ch.isalnum() for ch in normalize(value)):
            raise ValueError(f"{value!r} has no letters or digits")
        return value

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclude_list(cls, value: Any) -> Any:
        return _alias_list(value)

    @field_validator("context", mode="before")
    @classmethod
    def _context_groups(cls, value: Any) -> Any:
        return _groups(value)

    @model_validator(mode="after")
    def _check(self) -> Alias:
        if self.window is not None and not self.context:
            raise ValueError("window needs a context")
        if self.is_ref and (
            self.case != "auto"
            or self.exclude
            or self.context
            or self.window
            or self.implies
            or self.inflect is not None
        ):
            raise ValueError(f"{self.text!r} is a reference: it takes no options")
        return self

    @property
    def is_ref(self) -> bool:
        return self.text[0] in "@$"

    def compact(self) -> str | dict[str, Any]:
        """JSON-safe form: a bare string when the alias has no options."""
        if (
            self.case == "auto"
            and not self.exclude
            and not self.context
            and self.window is None
            and not self.implies
            and self.inflect is None
        ):
            return self.text
        out: dict[str, Any] = {"text": self.text}
        if self.case != "auto":
            out["case"] = self.case
        if self.exclude:
            out["exclude"] = [a.compact() for a in self.exclude]
        if self.context:
            out["context"] = [[a.compact() for a in g] for g in self.context]
        if self.window is not None:
            out["window"] = self.window
        if self.implies:
            out["implies"] = list(self.implies)
        if self.inflect is not None:
            out["inflect"] = self.inflect
        return out


#: the words an ``actor``/``action``/``target`` rule spans when it gives no ``window``
SVO_WINDOW = 8


class Rule(BaseModel):
    """Co-occurrence: a hit of every group of ``all`` (each group: any of its phrases)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[tuple[Alias, ...], ...] = Field(min_length=1, max_length=8)
    scope: Literal["item", "sentence", "lead"] = "item"
    window: int | None = Field(default=None, ge=1, le=MAX_WINDOW)
    last_follows: bool = False
    exclusive: bool = False
    #: the groups' hits must come in the order of ``all`` (an ``actor``/``action``/
    #: ``target`` rule: who does what to whom)
    ordered: bool = False
    context: tuple[tuple[Alias, ...], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _svo(cls, data: Any) -> Any:
        """``actor = [...], action = [...], target = [...]`` (``target`` optional) is
        ``all = [actor, action, target], ordered = true``, within ``window`` words
        (default :data:`SVO_WINDOW`), ``scope = "lead"`` unless given (one field, or
        from the title on into the summary's first sentence)."""
        if not isinstance(data, dict) or not {"actor", "action", "target"} & data.keys():
            return data
        data = dict(data)
        if "all" in data:
            raise ValueError("give either all = [...] or actor/action/target, not both")
        missing = [k for k in ("actor", "action") if k not in data]
        if missing:
            raise ValueError(
                f"an actor/action/target rule needs {' and '.join(missing)} (target is optional)"
            )
        parts = [data.pop("actor"), data.pop("action")]
        if "target" in data:
            parts.append(data.pop("target"))
        data["all"] = parts
        data["ordered"] = True
        data.setdefault("window", SVO_WINDOW)
        data.setdefault("scope", "lead")  # or from the title on into the lead
        return data

    @field_validator("all", mode="before")
    @classmethod
    def _all_groups(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [[g] if isinstance(g, str | dict) else g for g in value]
        return value

    @field_validator("all")
    @classmethod
    def _nonempty_groups(cls, value: tuple[tuple[Alias, ...], ...]) -> Any:
        if any(not g for g in value):
            raise ValueError("a group in 'all' is empty")
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context_groups(cls, value: Any) -> Any:
        return _groups(value)

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.last_follows and len(self.all) < 2:
            raise ValueError("last_follows needs at least two groups in 'all'")
        if self.exclusive and len(self.all) < 2:
            raise ValueError("exclusive needs at least two groups in 'all'")
        if self.ordered and len(self.all) < 2:
            raise ValueError("ordered needs at least two groups in 'all'")
        return self

    def compact(self) -> dict[str, Any]:
        out: dict[str, Any] = {"all": [[a.compact() for a in g] for g in self.all]}
        if self.scope != "item":
            out["scope"] = self.scope
        if self.window is not None:
            out["window"] = self.window
        if self.last_follows:
            out["last_follows"] = True
        if self.exclusive:
            out["exclusive"] = True
        if self.ordered:
            out["ordered"] = True
        if self.context:
            out["context"] = [[a.compact() for a in g] for g in self.context]
        return out


class Entry(BaseModel):
    """A tracked actor or topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)
    kind: EntryKind
    name: str = Field(min_length=1, max_length=MAX_NAME)
    description: str = Field(default="", max_length=500)
    aliases: tuple[Alias, ...] = Field(default=(), max_length=500)
    exclude: tuple[Alias, ...] = ()
    context: tuple[tuple[Alias, ...], ...] = ()
    rules: tuple[Rule, ...] = Field(default=(), max_length=50)
    #: phrases that veto the entry when the item's title or lead has one of them
    unless: tuple[Alias, ...] = Field(default=(), max_length=100)
    #: plural and verb forms for every Latin-script alias and rule phrase that does
    #: not say otherwise (its own ``inflect``)
    inflect: bool = False
    #: a watchlist file's entry gets its name as an alias when it is read (a
    #: ``/track`` entry lists it as one); false: it does not
    match_name: bool = True

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = normalize(value)
        if not value:
            raise ValueError("empty name")
        return value

    @field_validator("aliases", "exclude", "unless", mode="before")
    @classmethod
    def _alias_list(cls, value: Any) -> Any:
        return _alias_list(value)

    @field_validator("context", mode="before")
    @classmethod
    def _context_groups(cls, value: Any) -> Any:
        return _groups(value)

    @model_validator(mode="after")
    def _check(self) -> Entry:
        if not self.aliases and not self.rules:
            raise ValueError(f"entry {self.id!r} has no aliases and no rules: it can never match")
        return self

    # -- JSON definitions (a channel's own entries in the database) --------------------
    def to_definition(self) -> dict[str, Any]:
        """A JSON-safe dict, the same shape as an ``[[entry]]`` table."""
        out: dict[str, Any] = {"id": self.id, "kind": self.kind.value, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.aliases:
            out["aliases"] = [a.compact() for a in self.aliases]
        if self.exclude:
            out["exclude"] = [a.compact() for a in self.exclude]
        if self.context:
            out["context"] = [[a.compact() for a in g] for g in self.context]
        if self.rules:
            out["rules"] = [r.compact() for r in self.rules]
        if self.unless:
            out["unless"] = [a.compact() for a in self.unless]
        if self.inflect:
            out["inflect"] = True
        if not self.match_name:
            out["match_name"] = False
        return out

    @classmethod
    def from_definition(cls, data: Mapping[str, Any]) -> Entry:
        """The inverse of :meth:`to_definition`. Raises :class:`InputError` when the
        definition is not a valid, self-contained entry."""
        try:
            entry = cls.model_validate(dict(data))
        except ValidationError as err:
            first = err.errors()[0]
            raise InputError(
                f"invalid entry definition: {_loc(first['loc'])}: {first['msg']}"
            ) from None
        refs = list(_refs_in_entry(entry))
        if refs:
            raise InputError(f"invalid entry definition: unresolved reference {refs[0]!r}")
        return entry

    # -- convenience ------------------------------------------------------------------
    def alias_texts(self) -> list[str]:
        return [a.text for a in self.aliases]


def _refs_in_aliases(aliases: Iterable[Alias]) -> Iterable[str]:
    for a in aliases:
        if a.is_ref:
            yield a.text
        yield from _refs_in_aliases(a.exclude)
        for g in a.context:
            yield from _refs_in_aliases(g)


def _refs_in_entry(entry: Entry) -> Iterable[str]:
    yield from _refs_in_aliases(entry.aliases)
    yield from _refs_in_aliases(entry.exclude)
    yield from _refs_in_aliases(entry.unless)
    for g in entry.context:
        yield from _refs_in_aliases(g)
    for r in entry.rules:
        for g in r.all:
            yield from _refs_in_aliases(g)
        for g in r.context:
            yield from _refs_in_aliases(g)


class Watchlist(BaseModel):
    """Ordered entries with unique ids. ``disabled``: ids this watchlist removes when
    merged over a base (a user file's ``disable = [...]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entries: tuple[Entry, ...] = ()
    disabled: tuple[str, ...] = ()
    #: merged over a base, this watchlist replaces it entirely (a user file's
    #: ``replace_defaults = true``)
    replace_defaults: bool = False
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> Watchlist:
        seen: set[str] = set()
        for e in self.entries:
            if e.id in seen:
                raise ValueError(f"duplicate entry id {e.id!r}")
            seen.add(e.id)
            refs = list(_refs_in_entry(e))
            if refs:
                raise ValueError(f"entry {e.id!r}: unresolved reference {refs[0]!r}")
        return self

    def get(self, entry_id: str) -> Entry | None:
        for e in self.entries:
            if e.id == entry_id:
                return e
        return None

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def content_hash(self) -> str:
        """A digest of the entries' definitions (not of ``source``)."""
        key = id(self)
        with _HASH_LOCK:
            cached = _HASHES.get(key)
            if cached is not None and cached[0] is self:
                return cached[1]
        blob = json.dumps(
            [e.to_definition() for e in self.entries], sort_keys=True, ensure_ascii=False
        )
        digest = hashlib.sha256(blob.encode("utf-8")).hexdigest()
        with _HASH_LOCK:
            _HASHES[key] = (self, digest)
            while len(_HASHES) > 128:
                _HASHES.pop(next(iter(_HASHES)))
        return digest


# content_hash by identity (a frozen model cannot carry a cache without changing ==)
_HASHES: dict[int, tuple[Watchlist, str]] = {}
_HASH_LOCK = threading.Lock()


#: pydantic's error location as a TOML-style key: entry[3].aliases[2] (1-based)
_loc = error_location


def slugify(name: str) -> str:
    """An entry id from a display name: ASCII lower-case words joined by '-'."""
    text = unicodedata.normalize("NFKD", normalize(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:MAX_ID].strip("-")


__all__ = [
    "Alias",
    "Entry",
    "Rule",
    "Watchlist",
    "slugify",
]
