"""Typed settings and config-file loading, layered by pydantic-settings.

:class:`Settings` is a ``BaseSettings`` whose sources are, highest priority first:

1. keyword arguments (``Settings(poll=PollSettings(interval_minutes=5))``);
2. environment variables ``BRIEFBOT_<SECTION>__<KEY>``, e.g.
   ``BRIEFBOT_POLL__INTERVAL_MINUTES=5``; a list is written as JSON,
   ``BRIEFBOT_SECURITY__ALLOW_HOSTS='["feeds.internal"]'``;
3. the user's ``briefbot.toml`` in the config directory (``--config DIR`` or
   ``BRIEFBOT_CONFIG_DIR``);
4. the defaults shipped in ``bot/defaults/briefbot.toml``.

Tables merge key by key, so a file or variable that sets one key keeps the others.
Secrets (tokens) come only from the environment (:class:`Secrets`: ``DISCORD_TOKEN``,
``SLACK_BOT_TOKEN``) and are ``SecretStr``, as is the database URL (it may hold a
password).

Every problem is a :class:`ConfigError` naming the file or variable, the key and the
problem (:func:`load_settings`).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from typing_extensions import override

from bot.core.timeparse import check_time_of_day, check_timezone
from bot.core.validation import error_location, format_errors, format_validation_error
from bot.errors import ConfigError, InputError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from sqlalchemy.engine import URL

DEFAULTS_DIR = Path(__file__).parent / "defaults"
#: the settings file, in the shipped defaults and in a config directory
SETTINGS_FILE = "briefbot.toml"
DEFAULT_SETTINGS_FILE = DEFAULTS_DIR / SETTINGS_FILE
ENV_CONFIG_DIR = "BRIEFBOT_CONFIG_DIR"
ENV_PREFIX = "BRIEFBOT_"
ENV_NESTED = "__"

M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _setting_check(check: Callable[[str], str]) -> Callable[[Any, str], str]:
    """A field validator from one of the core's checks: its user-facing sentence
    becomes the problem of a ``file: key: problem`` line."""

    # the first parameter must be named ``cls``: pydantic makes such a validator a classmethod
    def validate(cls: Any, value: str) -> str:  # noqa: ARG001
        try:
            return check(value)
        except InputError as err:
            text = str(err).rstrip(".")
            raise ValueError(text[:1].lower() + text[1:]) from None

    return validate


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
    #: SQLAlchemy async URL (it may hold a password); empty = a SQLite file in data_dir
    database_url: SecretStr = SecretStr("")
    #: where the SQLite file lives; empty = the per-user data dir (XDG)
    data_dir: str = ""
    #: items (with their matches, sightings, search rows) and finished deliveries older
    #: than this many days are pruned daily; 0 keeps everything
    retention_days: int = Field(90, ge=0, le=36500)

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value().strip()
        if url:
            check_database_url(url)
        return SecretStr(url)

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return Path(platformdirs.user_data_dir("briefbot", appauthor=False))

    def resolved_url(self) -> str:
        """The database URL in plain text (pass it through :func:`hide_password` to
        show it)."""
        url = self.database_url.get_secret_value()
        if url:
            return url
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
    #: 24-hour local time, normalised to "HH:MM"
    default_time: str = "08:00"
    group_by: str = Field("entry", pattern="^(entry|story)$")
    max_stories: int = Field(40, ge=1, le=500)
    brief_hours: int = Field(24, ge=1, le=24 * 30)
    misfire_grace_hours: float = Field(12, gt=0)
    #: hours: an item published this long before it was fetched (or before its feed was
    #: added) is backlog: stored and searchable, never new in digests, briefs, alerts;
    #: 0 turns the rule off
    max_item_age: float = Field(48, ge=0)
    #: the language a story's headline is picked in ("en", "zh", ...)
    language: str = Field("en", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    _tz = field_validator("default_timezone")(_setting_check(check_timezone))
    _time = field_validator("default_time")(_setting_check(check_time_of_day))


class SecuritySettings(_Section):
    #: hosts (or host:port) that feeds added from chat may use even when they resolve to
    #: loopback/private addresses: for self-hosters and tests
    allow_hosts: list[str] = Field(default_factory=list)


class DiscordSettings(_Section):
    api_base: str = "https://discord.com/api/v10"
    test_guild: int | None = None
    shard_count: int | None = None


class MetricsSettings(_Section):
    """``briefbot run``'s HTTP endpoint for /healthz and Prometheus /metrics."""

    #: 0 = off (the default outside the Docker image, which sets 9464)
    port: int = Field(0, ge=0, le=65535)
    host: str = "127.0.0.1"
    #: /healthz fails when no poll tick ended for this long
    poll_stale_seconds: float = Field(300, gt=0)
    #: /healthz fails when an enabled chat adapter has been disconnected for this long
    adapter_stale_seconds: float = Field(120, gt=0)


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


# -- the layers ----------------------------------------------------------------------


@functools.cache
def _shipped(path: Path) -> dict[str, Any]:
    return read_toml(path)


class _TomlFile(TomlConfigSettingsSource):
    """One TOML file as a layer. A file that cannot be read or parsed is a
    :class:`ConfigError` naming it; the shipped defaults are read once."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, *, shipped: bool = False):
        self.path = path
        self.shipped = shipped
        super().__init__(settings_cls, toml_file=path)

    @override
    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        if self.shipped:
            return copy.deepcopy(_shipped(self.path))
        return read_toml(self.path)

    @property
    def data(self) -> Mapping[str, Any]:
        return self.toml_data

    # a layer's describe(loc) (see _Environment's): a file is named whatever the key
    def describe(self, loc: Sequence[int | str]) -> str:  # noqa: ARG002
        return str(self.path)


class _Environment(EnvSettingsSource):
    """``BRIEFBOT_<SECTION>__<KEY>`` variables of ``environ`` (names are not case
    sensitive after the prefix). A variable for an unknown section or key is kept, so
    validation reports it as an unknown key; a list or table that is not valid JSON
    is a :class:`ConfigError` naming the variable."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]):
        self.environ = environ
        #: each variable's name, by its (lower-case) section/key path
        self.variables: dict[tuple[str, ...], str] = {}
        for name in sorted(environ):
            rest = name[len(ENV_PREFIX) :]
            if not name.startswith(ENV_PREFIX) or ENV_NESTED not in rest:
                continue
            path = tuple(rest.lower().split(ENV_NESTED))
            if all(path):
                self.variables[path] = name
        self.values: dict[str, Any] = {}
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=ENV_PREFIX,
            env_nested_delimiter=ENV_NESTED,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name.lower(): self.environ[name] for name in self.variables.values()}

    def __call__(self) -> dict[str, Any]:
        self._check_json()
        data = super().__call__()
        fields = self.settings_cls.model_fields
        for path, name in self.variables.items():
            if path[0] not in fields:  # unknown section: left for validation to name
                node = data.setdefault(path[0], {})
                for key in path[1:-1]:
                    node = node.setdefault(key, {}) if isinstance(node, dict) else node
                if isinstance(node, dict):
                    node[path[-1]] = self.environ[name]
        self.values = data
        return data

    def _field_at(self, path: tuple[str, ...]) -> FieldInfo | None:
        found: Any = self.settings_cls.model_fields.get(path[0])
        for key in path[1:]:
            found = self.next_field(found, key, case_sensitive=False)
        return found if isinstance(found, FieldInfo) else None

    def _check_json(self) -> None:
        for path, name in self.variables.items():
            target = self._field_at(path)
            if target is None or not self.field_is_complex(target):
                continue
            try:
                json.loads(self.environ[name])
            except json.JSONDecodeError as err:
                raise ConfigError(
                    f"not valid JSON ({err.msg}): a list is written as JSON, "
                    f'e.g. {name}=\'["a", "b"]\'',
                    source=f"environment variable {name}",
                    key=".".join(path),
                ) from None

    @property
    def data(self) -> Mapping[str, Any]:
        return self.values

    def describe(self, loc: Sequence[int | str]) -> str:
        keys = tuple(str(p).lower() for p in loc)
        name = next(
            (
                self.variables[keys[:n]]
                for n in range(len(keys), 0, -1)
                if keys[:n] in self.variables
            ),
            None,
        ) or next((v for p, v in self.variables.items() if p[: len(keys)] == keys), None)
        return f"environment variable {name}" if name else "environment (BRIEFBOT_*__*)"


@dataclass
class _Load:
    """What one :func:`load_settings` call reads, and the layers it built."""

    cfg_dir: Path | None
    environ: Mapping[str, str]
    layers: tuple[PydanticBaseSettingsSource, ...] = field(default=())


_LOADING: ContextVar[_Load | None] = ContextVar("briefbot_settings_load", default=None)


@contextmanager
def _loading(load: _Load) -> Iterator[_Load]:
    token = _LOADING.set(load)
    try:
        yield load
    finally:
        _LOADING.reset(token)


class Settings(BaseSettings):
    """Every setting, in sections. ``Settings()`` reads the environment, the config
    directory named by ``BRIEFBOT_CONFIG_DIR`` (if any) and the shipped defaults;
    :func:`load_settings` reads a given directory and environment and turns every
    problem into one :class:`ConfigError` line."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED,
        case_sensitive=False,
    )

    storage: StorageSettings = StorageSettings()
    poll: PollSettings = PollSettings()
    http: HttpSettings = HttpSettings()
    digest: DigestSettings = DigestSettings()
    security: SecuritySettings = SecuritySettings()
    discord: DiscordSettings = DiscordSettings()
    metrics: MetricsSettings = MetricsSettings()
    slack: SlackSettings = SlackSettings()

    @override
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        load = _LOADING.get() or _Load(config_dir(), os.environ)
        layers: list[PydanticBaseSettingsSource] = [
            init_settings,
            _Environment(settings_cls, load.environ),
        ]
        if load.cfg_dir is not None and (load.cfg_dir / SETTINGS_FILE).is_file():
            layers.append(_TomlFile(settings_cls, load.cfg_dir / SETTINGS_FILE))
        layers.append(_TomlFile(settings_cls, DEFAULT_SETTINGS_FILE, shipped=True))
        load.layers = tuple(layers)
        return load.layers


def _layer_data(layer: PydanticBaseSettingsSource) -> Mapping[str, Any]:
    if isinstance(layer, _TomlFile | _Environment):
        return layer.data
    if isinstance(layer, InitSettingsSource):
        return layer.init_kwargs
    return {}


def _depth(data: Any, loc: Sequence[int | str]) -> int:
    """How far along ``loc`` the layer's ``data`` goes."""
    depth = 0
    for part in loc:
        in_table = isinstance(part, str) and isinstance(data, Mapping) and part in data
        in_list = isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data)
        if not (in_table or in_list):
            break
        data = data[part]
        depth += 1
    return depth


def _settings_error(
    err: ValidationError, layers: Sequence[PydanticBaseSettingsSource]
) -> ConfigError:
    """The error of the lowest layer that has one (the defaults, then the user's file,
    then the environment), named after that layer: each problem belongs to the layer
    whose value reached it (the highest layer that set that key)."""
    by_layer: dict[int, list[Any]] = {}
    for error in err.errors():
        depths = [_depth(_layer_data(layer), error["loc"]) for layer in layers]
        owner = max(range(len(layers)), key=lambda i: (depths[i], -i))
        by_layer.setdefault(owner, []).append(error)
    owner = max(by_layer)
    errors = by_layer[owner]
    layer = layers[owner]
    source = (
        layer.describe(errors[0]["loc"]) if isinstance(layer, _TomlFile | _Environment) else None
    )
    return format_errors(errors, source)


# -- files -----------------------------------------------------------------------------


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
    """The settings from ``cfg_dir``'s ``briefbot.toml`` (if any) and ``environ``
    (default: the process environment) over the shipped defaults. Raises
    :class:`ConfigError` naming the file or variable, the key and the problem."""
    load = _Load(cfg_dir, os.environ if environ is None else environ)
    with _loading(load):
        try:
            return Settings()
        except ValidationError as err:
            raise _settings_error(err, load.layers) from None
        except SettingsError as err:
            raise ConfigError(str(err), source="environment (BRIEFBOT_*__*)") from None


# -- secrets ---------------------------------------------------------------------------


class Secrets(BaseSettings):
    """Tokens: only ever from the environment (a config file cannot hold them), and
    never shown (``SecretStr``). An empty variable is no token."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=True)

    discord_token: SecretStr | None = Field(default=None, validation_alias="DISCORD_TOKEN")
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")

    @field_validator("discord_token", "slack_bot_token", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @override
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)


def load_secrets(environ: Mapping[str, str] | None = None) -> Secrets:
    """The tokens in ``environ`` (default: the process environment)."""
    if environ is None:
        return Secrets()
    return Secrets.model_validate(
        {k: environ[k] for k in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN") if k in environ}
    )


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The plain text of the token in variable ``name``, at the point of use."""
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or None


__all__ = [
    "DATABASE_SCHEMES",
    "DEFAULTS_DIR",
    "ENV_CONFIG_DIR",
    "ENV_PREFIX",
    "DigestSettings",
    "DiscordSettings",
    "HttpSettings",
    "PollSettings",
    "Secrets",
    "SecuritySettings",
    "Settings",
    "SlackSettings",
    "StorageSettings",
    "check_database_url",
    "config_dir",
    "error_location",
    "format_validation_error",
    "hide_password",
    "load_secrets",
    "load_settings",
    "read_toml",
    "secret",
    "validate",
]
