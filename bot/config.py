"""Typed settings and config-file loading.

Layers, later wins: the defaults shipped in ``bot/defaults/`` -> the user's config
directory (``--config DIR`` or ``BRIEFBOT_CONFIG_DIR``) -> environment variables
(``BRIEFBOT_<SECTION>__<KEY>``, e.g. ``BRIEFBOT_POLL__INTERVAL_MINUTES=5``). Secrets
(tokens) come only from the environment: ``DISCORD_TOKEN``, ``SLACK_BOT_TOKEN``.

Every problem is a :class:`ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

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


#: the database URL schemes Briefbot runs on (SQLAlchemy async drivers)
DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
_URL_EXAMPLES = (
    "sqlite+aiosqlite:////path/to/briefbot.db or "
    "postgresql+asyncpg://user:password@host:5432/briefbot"
)
#: ``scheme://user:password@`` in a URL SQLAlchemy cannot parse
_PASSWORD_IN_URL = re.compile(r"(?<=://)([^:@/]*):.*@")


def hide_password(url: str) -> str:
    """A database URL fit to print or log: its password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _PASSWORD_IN_URL.sub(r"\1:***@", url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def check_database_url(url: str) -> URL:
    """The parsed URL if Briefbot can use it, else ValueError saying what to write."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise ValueError(
            f"{hide_password(url)!r} is not a database URL: write {_URL_EXAMPLES}"
        ) from None
    scheme = parsed.drivername
    backend = scheme.partition("+")[0]
    if scheme in DATABASE_SCHEMES:
        return parsed
    if backend in ("postgresql", "postgres"):
        raise ValueError(
            f"{scheme}:// needs the asyncpg driver: write postgresql+asyncpg://... "
            "(add +asyncpg after postgresql)"
        )
    if backend == "sqlite":
        raise ValueError(
            f"{scheme}:// needs the aiosqlite driver: write sqlite+aiosqlite://... "
            "(add +aiosqlite after sqlite)"
        )
    raise ValueError(
        f"unsupported database {backend!r}: Briefbot runs on SQLite or PostgreSQL ({_URL_EXAMPLES})"
    )


class StorageSettings(_Section):
    #: SQLAlchemy async URL; empty = a SQLite file in data_dir
    database_url: str = ""
    #: where the SQLite file lives; empty = the per-user data dir (XDG)
    data_dir: str = ""

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            check_database_url(value)
        return value

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


class SlackSettings(_Section):
    """``[slack]``: the HTTP listener (Events API, slash command, interactivity and
    options requests all arrive at ``/slack/events``) and who may change a channel's
    setup besides workspace admins and owners. Tokens come from the environment only
    (``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET``, ``SLACK_APP_TOKEN``...)."""

    host: str = "0.0.0.0"  # noqa: S104 - Slack must reach the endpoint
    port: int = Field(3000, ge=0, le=65535)
    #: Slack user ids (``U…``) allowed to change any channel's setup, like an admin
    managers: list[str] = Field(default_factory=list)
    #: the Web API base; ``SLACK_API_BASE`` overrides it
    api_base: str = "https://slack.com/api/"
    #: how long a user's admin/owner flag (``users.info``) is trusted
    admin_cache_seconds: float = Field(300, ge=0)


class Settings(_Section):
    storage: StorageSettings = StorageSettings()
    poll: PollSettings = PollSettings()
    http: HttpSettings = HttpSettings()
    digest: DigestSettings = DigestSettings()
    security: SecuritySettings = SecuritySettings()
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()


def error_location(loc: Sequence[int | str]) -> str:
    """pydantic's error location as a TOML-style key, list positions 1-based:
    ``entry[3].aliases[2]``, ``feed[1].url``, ``poll.interval_minutes``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _problem(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return msg


def format_validation_error(err: ValidationError, source: str | None) -> ConfigError:
    """One line from pydantic's error: the file, the key and the first problem, and
    where the others are. The one formatter for every config file (settings, feeds,
    watchlists)."""
    errors = err.errors()
    if not errors:  # pragma: no cover - pydantic always reports at least one
        return ConfigError(str(err), source=source)
    first = errors[0]
    more = ""
    if len(errors) > 1:
        others = list(dict.fromkeys(error_location(e["loc"]) for e in errors[1:]))
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        n = len(errors) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''}: {shown})"
    return ConfigError(_problem(first) + more, source=source, key=error_location(first["loc"]))


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


def _wants_json(section: str, key: str) -> bool:
    """Whether ``[section] key`` holds a list or a table (set from the environment as
    JSON)."""
    field = Settings.model_fields.get(section)
    model = field.annotation if field is not None else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    sub = model.model_fields.get(key)
    if sub is None:
        return False
    origin = typing.get_origin(sub.annotation) or sub.annotation
    return origin in (list, dict, tuple, set, frozenset)


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Settings from ``BRIEFBOT_<SECTION>__<KEY>`` variables, and the variable behind
    each ``section.key``. A list or table is written as JSON:
    ``BRIEFBOT_SECURITY__ALLOW_HOSTS='["feeds.internal"]'``."""
    out: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not (section and key):
            continue
        parsed: Any = value
        if _wants_json(section, key):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as err:
                raise ConfigError(
                    f"not valid JSON ({err.msg}): a list is written as JSON, "
                    f'e.g. {name}=\'["a", "b"]\'',
                    source=f"environment variable {name}",
                    key=f"{section}.{key}",
                ) from None
        out.setdefault(section, {})[key] = parsed
        names[f"{section}.{key}"] = name
        names.setdefault(section, name)
    return out, names


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
    settings = validate(Settings, data, str(defaults_file))
    if cfg_dir is not None and (cfg_dir / "briefbot.toml").is_file():
        user_file = cfg_dir / "briefbot.toml"
        data = _deep_merge(data, read_toml(user_file))
        settings = validate(Settings, data, str(user_file))
    overrides, names = _env_overrides(env)
    if not overrides:
        return settings
    try:
        return Settings.model_validate(_deep_merge(data, overrides))
    except ValidationError as err:
        # name the variable that caused it (the files alone were valid)
        loc = [str(p) for p in err.errors()[0]["loc"]]
        name = names.get(".".join(loc[:2])) or names.get(loc[0] if loc else "")
        source = f"environment variable {name}" if name else "environment (BRIEFBOT_*__*)"
        raise format_validation_error(err, source) from None


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None
