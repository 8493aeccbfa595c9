"""Typed settings and config-file loading.

Layers, later wins: the defaults shipped in ``bot/defaults/`` -> the user's config
directory (``--config DIR`` or ``BRIEFBOT_CONFIG_DIR``) -> environment variables
(``BRIEFBOT_<SECTION>__<KEY>``, e.g. ``BRIEFBOT_POLL__INTERVAL_MINUTES=5``). Secrets
(tokens) come only from the environment: ``DISCORD_TOKEN``, ``SLACK_BOT_TOKEN``.

Every problem is a :class:`ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

DEFAULTS_DIR = Path(__file__).parent / "defaults"
ENV_CONFIG_DIR = "BRIEFBOT_CONFIG_DIR"
ENV_PREFIX = "BRIEFBOT_"

M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {value!r} (use an IANA name like Asia/Shanghai)"
        ) from None
    return value


class StorageSettings(_Section):
    #: SQLAlchemy async URL; empty = a SQLite file in data_dir
    database_url: str = ""
    #: where the SQLite file lives; empty = the per-user data dir (XDG)
    data_dir: str = ""

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return Path(platformdirs.user_data_dir("briefbot", appauthor=False))

    def resolved_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.resolved_data_dir() / 'briefbot.db'}"


class PollSettings(_Section):
    interval_minutes: float = Field(15, gt=0, le=24 * 60)
    max_concurrency: int = Field(16, ge=1, le=256)
    per_host: int = Field(2, ge=1, le=32)
    backoff_base_seconds: float = Field(60, gt=0)
    backoff_max_seconds: float = Field(6 * 3600, gt=0)


class HttpSettings(_Section):
    connect_timeout: float = Field(10, gt=0)
    total_timeout: float = Field(30, gt=0)
    max_bytes: int = Field(10_000_000, ge=1024)
    max_redirects: int = Field(5, ge=0, le=20)
    user_agent: str = "Briefbot/0.1 (+https://github.com/briefbot/briefbot)"


class DigestSettings(_Section):
    default_timezone: str = "UTC"
    default_time: str = "08:00"
    group_by: str = Field("entry", pattern="^(entry|story)$")
    max_stories: int = Field(40, ge=1, le=500)
    brief_hours: int = Field(24, ge=1, le=24 * 30)
    misfire_grace_hours: float = Field(12, gt=0)

    _tz = field_validator("default_timezone")(check_timezone)


class SecuritySettings(_Section):
    #: hosts (or host:port) that feeds added from chat may use even when they resolve to
    #: loopback/private addresses: for self-hosters and tests
    allow_hosts: list[str] = Field(default_factory=list)


class DiscordSettings(_Section):
    api_base: str = "https://discord.com/api/v10"
    test_guild: int | None = None
    shard_count: int | None = None


class Settings(_Section):
    storage: StorageSettings = StorageSettings()
    poll: PollSettings = PollSettings()
    http: HttpSettings = HttpSettings()
    digest: DigestSettings = DigestSettings()
    security: SecuritySettings = SecuritySettings()
    discord: DiscordSettings = DiscordSettings()


def format_validation_error(err: ValidationError, source: str) -> ConfigError:
    """One clear message from pydantic's error: the file, the key, the problem."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}")
    first_key = ".".join(str(p) for p in err.errors()[0]["loc"]) if err.errors() else None
    more = "" if len(lines) == 1 else f" (and {len(lines) - 1} more: " + "; ".join(lines[1:]) + ")"
    return ConfigError(lines[0].split(": ", 1)[-1] + more, source=source, key=first_key)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {err}", source=str(path)) from None


def validate(model: type[M], data: Mapping[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, source) from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section and key:
            out.setdefault(section, {})[key] = value
    return out


def config_dir(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The user's config directory, or None to use only the shipped defaults."""
    env = os.environ if environ is None else environ
    raw = str(explicit) if explicit else env.get(ENV_CONFIG_DIR, "")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise ConfigError("config directory not found", source=str(path))
    return path


def load_settings(cfg_dir: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    defaults_file = DEFAULTS_DIR / "briefbot.toml"
    data = read_toml(defaults_file)
    validate(Settings, data, str(defaults_file))
    source = str(defaults_file)
    if cfg_dir is not None and (cfg_dir / "briefbot.toml").is_file():
        user_file = cfg_dir / "briefbot.toml"
        user = read_toml(user_file)
        validate(Settings, _deep_merge(data, user), str(user_file))
        data = _deep_merge(data, user)
        source = str(user_file)
    overrides = _env_overrides(env)
    if overrides:
        data = _deep_merge(data, overrides)
        source = "environment (BRIEFBOT_<SECTION>__<KEY>)"
    return validate(Settings, data, source)


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None
