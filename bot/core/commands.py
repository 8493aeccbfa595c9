"""The command set, declared once for every transport.

Each :class:`CommandSpec` names a command (``brief``) or a subcommand of a group
(``feeds add``), its typed options and whether changing a channel's configuration needs
the manage permission. The console adapter parses typed lines with
:func:`parse_command_line`; the Discord adapter builds ``app_commands`` from the same
specs (choices, ``min_value``/``max_value``, and ``autocomplete`` hints for options that
name an entry or a feed) and hands the typed values to :func:`validate_args` via the
service's ``dispatch``.

Console syntax is what a user types in Discord: ``/brief entry:wang-yi hours:48``,
``/track kind:actor name:"Li Qiang" aliases:"Premier Li,李强" mode:instant``. Options
may also be given by position where that is unambiguous (``/untrack li-qiang``,
``/search "export controls" 48``); words after a free-text option (``query``, ``text``)
join it, so ``/search export controls 48`` works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.errors import InputError


class OptionType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    ATTACHMENT = "attachment"  # a file: bytes (Discord attachment, console file path)


class Autocomplete(StrEnum):
    """What an option's autocomplete suggests (the adapter asks the service)."""

    ENTRY = "entry"  # the channel's watchlist entry ids
    FEED = "feed"  # the channel's feeds
    TIMEZONE = "timezone"  # IANA time zone names


MAX_HOURS = 24 * 30
MAX_SEARCH_PAGE = 10


@dataclass(frozen=True, slots=True)
class OptionSpec:
    name: str
    description: str
    type: OptionType = OptionType.STRING
    required: bool = False
    choices: tuple[str, ...] = ()
    autocomplete: Autocomplete | None = None
    min_value: int | None = None
    max_value: int | None = None
    max_length: int | None = 200
    #: console only: bare words after this option join its value (free text)
    rest: bool = False
    #: console only: quotes typed in the value are kept (a search phrase: "a b")
    keep_quotes: bool = False
    #: console only: a bare value may fill it by position (else only ``name:value``)
    positional: bool = True

    @property
    def placeholder(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        if self.type is OptionType.INTEGER:
            return "number"
        if self.type is OptionType.ATTACHMENT:
            return "file"
        return "text"

    def usage(self) -> str:
        text = f"{self.name}:<{self.placeholder}>"
        return text if self.required else f"[{text}]"

    def convert(self, value: Any) -> Any:
        """The typed value, or InputError naming the option and what it expects."""
        if self.type is OptionType.ATTACHMENT:
            if isinstance(value, bytes | bytearray | memoryview):
                return bytes(value)
            if isinstance(value, str):
                return value.encode("utf-8")
            raise InputError(f"{self.name} must be a file")
        if self.type is OptionType.INTEGER:
            return self._convert_int(value)
        if not isinstance(value, str):
            value = str(value)
        value = value.strip()
        if not value:
            raise InputError(f"{self.name} must not be empty")
        if self.max_length is not None and len(value) > self.max_length:
            raise InputError(f"{self.name} is too long (at most {self.max_length} characters)")
        if self.choices:
            folded = value.lower()
            if folded not in self.choices:
                raise InputError(f"{self.name} must be one of: {', '.join(self.choices)}")
            return folded
        return value

    def _convert_int(self, value: Any) -> int:
        if isinstance(value, bool):
            raise InputError(f"{self.name} must be a whole number")
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip().lower()
            if text.endswith("h") and self.name == "hours":
                text = text[:-1]
            try:
                number = int(text)
            except ValueError:
                raise InputError(f"{self.name} must be a whole number, not {value!r}") from None
        if self.min_value is not None and number < self.min_value:
            raise InputError(f"{self.name} must be at least {self.min_value}")
        if self.max_value is not None and number > self.max_value:
            raise InputError(f"{self.name} must be at most {self.max_value}")
        return number

    def accepts(self, value: str) -> bool:
        try:
            self.convert(value)
        except InputError:
            return False
        return True


@dataclass(frozen=True, slots=True)
class CommandSpec:
    group: str  # the top-level command: "brief", "feeds"
    sub: str | None  # the subcommand: "add", or None
    description: str
    options: tuple[OptionSpec, ...] = ()
    #: changes a channel's configuration: needs the manage permission (Manage Server)
    manage: bool = False
    #: its answer is a briefing everyone in the channel sees (else ephemeral)
    visible: bool = False
    #: extra help shown by ``/help COMMAND``
    details: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.group} {self.sub}" if self.sub else self.group

    def option(self, name: str) -> OptionSpec | None:
        return next((o for o in self.options if o.name == name), None)

    def usage(self) -> str:
        return " ".join([f"/{self.name}", *(o.usage() for o in self.options)])


_HOURS = OptionSpec(
    "hours",
    "how many hours back (default: 24)",
    OptionType.INTEGER,
    min_value=1,
    max_value=MAX_HOURS,
)
_ENTRY = OptionSpec(
    "entry", "a watchlist entry (id or name)", autocomplete=Autocomplete.ENTRY, max_length=100
)

GROUP_DESCRIPTIONS: dict[str, str] = {
    "digest": "post a digest now, set this channel's daily digest, or how it is grouped",
    "feeds": "the feeds this channel reads",
}

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "brief",
        None,
        "the latest stories matching the watchlist (all entries, or one)",
        (_ENTRY, _HOURS),
        visible=True,
    ),
    CommandSpec(
        "digest", "now", "post this channel's digest now (since the last one)", visible=True
    ),
    CommandSpec(
        "digest",
        "schedule",
        "post a digest every day (or on some days) at a set time",
        (
            OptionSpec(
                "time",
                "local time, HH:MM (24-hour; default: the configured digest.default_time)",
                max_length=5,
            ),
            OptionSpec(
                "tz",
                "time zone, e.g. Asia/Shanghai (default: the channel's)",
                autocomplete=Autocomplete.TIMEZONE,
                max_length=64,
            ),
            OptionSpec(
                "days",
                "days, e.g. mon-fri, weekends, mon,wed,fri (default: every day)",
                max_length=40,
            ),
        ),
        manage=True,
    ),
    CommandSpec("digest", "off", "stop this channel's scheduled digest", manage=True),
    CommandSpec(
        "digest",
        "group",
        "group this channel's digests by tracked entry or by story",
        (
            OptionSpec(
                "by",
                "entry: under each tracked entry; story: one ranked list, tagged",
                required=True,
                choices=("entry", "story"),
            ),
        ),
        manage=True,
        details=(
            "by:entry lists actors, then topics, each story once under its strongest entry; "
            "by:story is one list, best first, each story tagged with its entries.",
        ),
    ),
    CommandSpec(
        "track",
        None,
        "track a person (actor) or a topic in this channel",
        (
            OptionSpec(
                "kind", "actor (a person) or topic", required=True, choices=("actor", "topic")
            ),
            OptionSpec(
                "name",
                "the name shown in digests (also matched)",
                required=True,
                max_length=100,
                rest=True,
            ),
            OptionSpec(
                "aliases", "other names that count, comma-separated", max_length=500, rest=True
            ),
            OptionSpec(
                "mode",
                "digest (default), or instant: also post each story at once",
                choices=("digest", "instant"),
            ),
        ),
        manage=True,
        details=(
            "The name always counts as an alias. Aliases are matched as whole words; "
            "all-capital aliases (e.g. WTO) are matched case-sensitively.",
        ),
    ),
    CommandSpec(
        "untrack",
        None,
        "stop tracking an entry in this channel",
        (
            OptionSpec(
                "entry",
                "the entry to stop tracking",
                required=True,
                autocomplete=Autocomplete.ENTRY,
                max_length=100,
            ),
        ),
        manage=True,
    ),
    CommandSpec("watchlist", None, "what this channel tracks: entries, aliases and rules"),
    CommandSpec(
        "feeds",
        "add",
        "add a feed to this channel (it is fetched once to check it)",
        (
            OptionSpec("url", "the feed's URL (http or https)", required=True, max_length=2000),
            OptionSpec(
                "name",
                "the outlet name shown in digests (default: the feed's title)",
                max_length=100,
                rest=True,
            ),
        ),
        manage=True,
    ),
    CommandSpec(
        "feeds",
        "remove",
        "remove a feed from this channel",
        (
            OptionSpec(
                "feed",
                "the feed (name, URL or number from /feeds list)",
                required=True,
                autocomplete=Autocomplete.FEED,
                max_length=2000,
            ),
        ),
        manage=True,
    ),
    CommandSpec("feeds", "list", "this channel's feeds and their health"),
    CommandSpec(
        "feeds",
        "import",
        "add the feeds listed in an OPML file",
        (
            OptionSpec(
                "file",
                "an OPML file (from a feed reader's export)",
                OptionType.ATTACHMENT,
                required=True,
                max_length=None,
            ),
        ),
        manage=True,
    ),
    CommandSpec("feeds", "export", "this channel's feeds as an OPML file"),
    CommandSpec(
        "search",
        None,
        "search stored stories (full text, best first)",
        (
            OptionSpec(
                "query",
                'words to find; "quotes" for a phrase',
                required=True,
                rest=True,
                max_length=200,
                keep_quotes=True,
            ),
            OptionSpec(
                "hours",
                "how many hours back (default: all stored)",
                OptionType.INTEGER,
                min_value=1,
                max_value=MAX_HOURS,
            ),
            OptionSpec(
                "page",
                "which page of results (10 a page; default: 1)",
                OptionType.INTEGER,
                min_value=1,
                max_value=MAX_SEARCH_PAGE,
                positional=False,
            ),
        ),
        visible=True,
        details=(
            "A query that names a watchlist entry (its name, id or an alias) also finds the "
            "entry's other aliases: Wang Yi finds 王毅 too.",
        ),
    ),
    CommandSpec(
        "test",
        None,
        "which entries a text would match and why, or what an entry matched",
        (
            OptionSpec("text", "a headline or sentence to test", rest=True, max_length=2000),
            OptionSpec(
                "entry",
                "show what this entry matched and rejected recently",
                autocomplete=Autocomplete.ENTRY,
                max_length=100,
            ),
            _HOURS,
        ),
        details=("Give text: or entry:, not both.",),
    ),
    CommandSpec("status", None, "feeds, failures, items today, next poll and next digest"),
    CommandSpec(
        "help",
        None,
        "the commands",
        (OptionSpec("command", "a command to explain", max_length=40),),
    ),
)

_BY_NAME: dict[str, CommandSpec] = {c.name: c for c in COMMANDS}


def groups() -> dict[str, list[CommandSpec]]:
    """Top-level name -> its specs (one spec for a plain command), in declared order."""
    out: dict[str, list[CommandSpec]] = {}
    for spec in COMMANDS:
        out.setdefault(spec.group, []).append(spec)
    return out


def get_command(name: str) -> CommandSpec:
    """The spec for ``"brief"`` or ``"feeds add"`` (a leading slash is ignored)."""
    key = " ".join(name.strip().lstrip("/").lower().split())
    spec = _BY_NAME.get(key)
    if spec is None:
        group = groups().get(key)
        if group and group[0].sub is not None:
            subs = "|".join(s.sub or "" for s in group)
            raise InputError(f"/{key} needs a subcommand: /{key} {subs}")
        raise InputError(f"unknown command /{key}; try /help")
    return spec


def validate_args(spec: CommandSpec, args: Mapping[str, Any]) -> dict[str, Any]:
    """Typed, checked arguments for ``spec`` (None values count as absent).

    Raises InputError for an unknown option, a bad value or a missing required option;
    the message ends with the usage line."""
    out: dict[str, Any] = {}
    # the raises inside the try are meant: the except adds the usage line to each
    try:
        for name, value in args.items():
            opt = spec.option(name)
            if opt is None:
                known = ", ".join(o.name for o in spec.options) or "none"
                raise InputError(f"/{spec.name} has no option {name!r} (options: {known})")  # noqa: TRY301
            if value is None:
                continue
            out[name] = opt.convert(value)
        for opt in spec.options:
            if opt.required and opt.name not in out:
                raise InputError(f"/{spec.name} needs {opt.name}")  # noqa: TRY301
    except InputError as err:
        raise InputError(f"{err}. Usage: {spec.usage()}") from None
    return out


def help_lines(command: str | None = None) -> list[str]:
    """``/help`` text: every command's usage, or one command in detail."""
    if command:
        key = " ".join(command.strip().lstrip("/").lower().split())
        specs = [s for s in COMMANDS if key in (s.name, s.group)]
        if not specs:
            raise InputError(f"unknown command /{key}; try /help")
        lines: list[str] = []
        for spec in specs:
            lines.append(f"{spec.usage()} — {spec.description}")
            lines.extend(f"  {o.name}: {o.description}" for o in spec.options)
            lines.extend(f"  {d}" for d in spec.details)
            if spec.manage:
                lines.append("  (needs the Manage Server permission)")
        return lines
    lines = ["Commands:"]
    for spec in COMMANDS:
        mark = " *" if spec.manage else ""
        lines.append(f"{spec.usage()} — {spec.description}{mark}")
    lines.append("* changes the channel's configuration (needs Manage Server)")
    return lines
