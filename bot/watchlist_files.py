"""Watchlist files: the shipped default ``bot/defaults/watchlist.toml`` and a user's
``watchlist.toml``, read here at the edge and handed to the core
(:func:`bot.core.watchlist_resolve.parse_watchlist`) as data.

A user's file adds or replaces entries by id and disables default entries
(``disable = [...]``); :func:`load_effective_watchlist` merges it over the default.
Every problem is a :class:`ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from bot.config import DEFAULTS_DIR, read_toml
from bot.core.watchlist import Alias, Watchlist
from bot.core.watchlist_resolve import merge_watchlists, parse_watchlist
from bot.errors import ConfigError

#: the name of a watchlist file, in the shipped defaults and in a config directory
WATCHLIST_FILE = "watchlist.toml"
DEFAULT_WATCHLIST_FILE = DEFAULTS_DIR / WATCHLIST_FILE


@functools.cache
def _default() -> tuple[Watchlist, dict[str, tuple[Alias, ...]]]:
    data = read_toml(DEFAULT_WATCHLIST_FILE)
    if data.get("disable"):
        raise ConfigError(
            "the default watchlist cannot disable entries",
            source=str(DEFAULT_WATCHLIST_FILE),
            key="disable",
        )
    return parse_watchlist(data, str(DEFAULT_WATCHLIST_FILE), base_entries={}, base_terms={})


def default_watchlist() -> Watchlist:
    """The shipped default watchlist (parsed once)."""
    return _default()[0]


def default_terms() -> dict[str, tuple[Alias, ...]]:
    """The named term lists of the default file (``$us``, ``$meeting``, ...)."""
    return dict(_default()[1])


def load_watchlist(path: str | Path) -> Watchlist:
    """A user's watchlist file. References (``@id``, ``$terms``) resolve against the file
    itself, then against the default watchlist. Raises :class:`ConfigError` naming the
    file, the key (``entry[3].aliases``, 1-based) and the problem."""
    path = Path(path)
    data = read_toml(path)
    base, base_terms = _default()
    wl, _ = parse_watchlist(
        data,
        str(path),
        base_entries={e.id: e for e in base.entries},
        base_terms=base_terms,
    )
    return wl


def loads_watchlist(text: str, source: str = "<string>") -> Watchlist:
    """Like :func:`load_watchlist`, from TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", source=source) from None
    base, base_terms = _default()
    wl, _ = parse_watchlist(
        data, source, base_entries={e.id: e for e in base.entries}, base_terms=base_terms
    )
    return wl


def load_effective_watchlist(cfg_dir: Path | None) -> Watchlist:
    """The shipped default watchlist with the user's watchlist.toml merged over it."""
    base = default_watchlist()
    if cfg_dir is not None and (cfg_dir / WATCHLIST_FILE).is_file():
        return merge_watchlists(base, load_watchlist(cfg_dir / WATCHLIST_FILE))
    return base


__all__ = [
    "DEFAULT_WATCHLIST_FILE",
    "WATCHLIST_FILE",
    "default_terms",
    "default_watchlist",
    "load_effective_watchlist",
    "load_watchlist",
    "loads_watchlist",
]
