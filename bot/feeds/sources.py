"""The configured feed list: the shipped ``defaults/feeds.toml`` merged with the
user's ``feeds.toml`` (or ``feeds.opml``) from the config directory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.config import DEFAULTS_DIR, read_toml, validate
from bot.core.models import FeedSource
from bot.errors import ConfigError


class FeedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    name: str = Field(min_length=1, max_length=200)
    lang: str | None = Field(None, max_length=16)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value


class FeedsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    feed: list[FeedConfig] = Field(default_factory=list)
    disable: list[str] = Field(default_factory=list)
    replace_defaults: bool = False


def _load_file(path: Path) -> FeedsFile:
    return validate(FeedsFile, read_toml(path), str(path))


def _load_opml(path: Path) -> list[FeedSource]:
    from bot.core.opml import parse_opml

    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read: {err}", source=str(path)) from None
    try:
        return list(parse_opml(data))
    except Exception as err:  # parse_opml raises InputError with a clear message
        raise ConfigError(str(err), source=str(path)) from None


def load_feed_sources(cfg_dir: Path | None) -> list[FeedSource]:
    """Default feeds, then the user's additions/removals. Duplicate URLs keep the last."""
    defaults = _load_file(DEFAULTS_DIR / "feeds.toml")
    feeds: dict[str, FeedSource] = {
        f.url: FeedSource(url=f.url, name=f.name, lang=f.lang) for f in defaults.feed
    }
    if cfg_dir is not None:
        toml_path = cfg_dir / "feeds.toml"
        if toml_path.is_file():
            user = _load_file(toml_path)
            if user.replace_defaults:
                feeds.clear()
            for i, url in enumerate(user.disable):
                if url not in feeds:
                    raise ConfigError(
                        f"{url!r} is not a default feed (disable takes the url of one)",
                        source=str(toml_path),
                        key=f"disable[{i + 1}]",
                    )
                del feeds[url]
            for f in user.feed:
                feeds[f.url] = FeedSource(url=f.url, name=f.name, lang=f.lang)
        opml_path = cfg_dir / "feeds.opml"
        if opml_path.is_file():
            for src in _load_opml(opml_path):
                feeds[src.url] = src
    return list(feeds.values())
