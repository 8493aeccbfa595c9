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

import difflib
import re
from collections.abc import Mapping, Sequence
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


# -- console syntax ----------------------------------------------------------------------

_OPEN_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c", "\u00ab": "\u00bb"}


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    quoted: bool  # the token began with a quote: never an option name
    #: the token as typed, quotes included (for options that keep quotes)
    raw: str = ""


#: single quotes, straight and typographic: they group words like double quotes, but only
#: where a quote can open (a token's start, or right after ``name:``) and close (before a
#: space or the end), so an apostrophe (``Xi's``, ``'90s``) stays a character
_SINGLE_QUOTES = {"'": "'", "\u2018": "\u2019"}
_OPTION_PREFIX = re.compile(r"^[A-Za-z][A-Za-z_]*:$")


def _single_quote_end(line: str, i: int, closer: str) -> int:
    """Where the single quote opened at ``i`` closes: the first ``closer`` followed by
    a space or the end of the line; -1 if none (then it is an apostrophe)."""
    j = i + 1
    while (j := line.find(closer, j)) >= 0:
        if j + 1 == len(line) or line[j + 1].isspace():
            return j
        j += 1
    return -1


def tokenize(line: str) -> list[Token]:
    """Split on whitespace; double quotes (straight or typographic) group words, and so
    do single quotes around words (``'Li Qiang'``). A quote may also open after
    ``name:`` (``name:"Li Qiang"``, ``name:'Li Qiang'``). An apostrophe inside a word
    (``Xi's``) is an ordinary character. The raw text of a single-quoted value reads
    as double-quoted (a ``/search`` phrase)."""
    tokens: list[Token] = []
    buf: list[str] = []
    raw: list[str] = []
    quoted = False
    in_token = False
    i = 0
    while i < len(line):
        ch = line[i]
        if ch.isspace():
            if in_token:
                tokens.append(Token("".join(buf), quoted, "".join(raw)))
                buf, raw, quoted, in_token = [], [], False, False
            i += 1
            continue
        if ch in _SINGLE_QUOTES and (not in_token or _OPTION_PREFIX.match("".join(buf))):
            end = _single_quote_end(line, i, _SINGLE_QUOTES[ch])
            if end > i:
                if not in_token:
                    quoted = True
                in_token = True
                buf.append(line[i + 1 : end])
                raw.append('"' + line[i + 1 : end] + '"')
                i = end + 1
                continue
        if ch in _OPEN_QUOTES:
            closer = _OPEN_QUOTES[ch]
            end = line.find(closer, i + 1)
            if end < 0 and closer != '"':
                end = line.find('"', i + 1)
            if end < 0:
                raise InputError('a quote is not closed (use "..." around text with spaces)')
            if not in_token:
                quoted = True
            in_token = True
            buf.append(line[i + 1 : end])
            raw.append(line[i : end + 1])
            i = end + 1
            continue
        in_token = True
        buf.append(ch)
        raw.append(ch)
        i += 1
    if in_token:
        tokens.append(Token("".join(buf), quoted, "".join(raw)))
    return tokens


_OPTION_LIKE = re.compile(r"^([a-z][a-z_]*):(?!//)\S")


def _named(spec: CommandSpec, tok: Token) -> tuple[OptionSpec, str] | None:
    if tok.quoted or ":" not in tok.text:
        return None
    name, _, value = tok.text.partition(":")
    opt = spec.option(name.lower())
    if opt is None:
        return None
    if opt.keep_quotes:
        value = tok.raw.partition(":")[2]
    return opt, value


def _unknown_option(spec: CommandSpec, tok: Token) -> InputError | None:
    """``alias:Premier Li`` where /track has ``aliases``: an option name typed wrong must
    not silently become part of a free-text value. Quoted tokens are text."""
    typo = None if tok.quoted else _OPTION_LIKE.match(tok.text)
    if typo is None:
        return None
    name = typo.group(1)
    names = [o.name for o in spec.options]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" — did you mean {close[0]}:?" if close else ""
    known = ", ".join(names) or "none"
    return InputError(
        f"/{spec.name} has no option {name!r}{hint} (options: {known}). To use "
        f'"{name}:" as text, put it in "quotes". Usage: {spec.usage()}'
    )


def parse_command_line(line: str) -> tuple[CommandSpec, dict[str, Any]]:
    """A typed line (``/brief entry:wang-yi hours:48``) -> (spec, typed args).

    Raises InputError with the usage line for anything it cannot read."""
    tokens = tokenize(line.strip())
    if not tokens:
        raise InputError("type a command, e.g. /brief or /help")
    head = tokens[0].text.lstrip("/").lower()
    if not head:
        raise InputError("type a command after /, e.g. /brief or /help")
    group = groups().get(head)
    if group is None:
        raise InputError(f"unknown command /{head}; try /help")
    rest = tokens[1:]
    if group[0].sub is not None:
        subs = [s.sub for s in group]
        if not rest or rest[0].text.lower() not in subs:
            got = f" (got {rest[0].text!r})" if rest else ""
            raise InputError(f"/{head} needs a subcommand{got}: /{head} {'|'.join(map(str, subs))}")
        spec = get_command(f"{head} {rest[0].text.lower()}")
        rest = rest[1:]
    else:
        spec = group[0]
    return spec, validate_args(spec, _assign(spec, rest))


def _assign(spec: CommandSpec, tokens: Sequence[Token]) -> dict[str, Any]:
    """Named options (``name:value``) and bare values. Bare words given before any
    named option fill options by position; words right after a free-text option join
    it. Bare words after another named option (``mode:instant extra words``) may only
    fill a typed option (``/brief entry:x 48``) or a required free-text one: never an
    optional free-text option, which would take them silently."""
    named: dict[str, str] = {}
    bare: list[str] = []
    #: how many of ``bare`` came before the first named option, and the named option
    #: just before the first later one (for the message)
    leading: int | None = None
    late_after: str | None = None
    current_rest: OptionSpec | None = None
    for tok in tokens:
        hit = _named(spec, tok)
        if hit is not None:
            opt, value = hit
            if opt.name in named:
                raise InputError(f"{opt.name} is given twice. Usage: {spec.usage()}")
            named[opt.name] = value
            current_rest = opt if opt.rest else None
            if leading is None:
                leading = len(bare)
            continue
        error = _unknown_option(spec, tok)
        if error is not None:
            raise error
        if current_rest is not None:
            text = tok.raw if current_rest.keep_quotes else tok.text
            named[current_rest.name] = f"{named[current_rest.name]} {text}".strip()
            continue
        if leading is not None and late_after is None:
            late_after = next(reversed(named))
        bare.append(tok.raw if tok.quoted and _keeps_quotes(spec, named) else tok.text)
    if not bare:
        return dict(named)
    free = [o for o in spec.options if o.name not in named and o.positional]
    if not free:
        raise InputError(f"unexpected {' '.join(bare)!r}. Usage: {spec.usage()}")
    first_late = len(bare) if leading is None else leading
    out: dict[str, Any] = dict(named)
    rest_idx = next((i for i, o in enumerate(free) if o.rest), None)
    if rest_idx is None:
        if len(bare) > len(free):
            raise InputError(
                f'too many values: {" ".join(bare)!r} (put text with spaces in "quotes"). '
                f"Usage: {spec.usage()}"
            )
        # a number goes to a number option (/brief 48), anything else to the next text one
        for value in bare:
            ints = [o for o in free if o.type is OptionType.INTEGER and o.name not in out]
            others = [o for o in free if o.type is not OptionType.INTEGER and o.name not in out]
            if ints and ints[0].accepts(value):
                out[ints[0].name] = value
            elif others:
                out[others[0].name] = value
            elif ints:
                out[ints[0].name] = value  # converted later: a clear "must be a number"
            else:
                raise InputError(f"unexpected {value!r}. Usage: {spec.usage()}")
        return out
    before, rest_opt, after = free[:rest_idx], free[rest_idx], free[rest_idx + 1 :]
    for opt, value in zip(before, bare, strict=False):
        out[opt.name] = value
    start = len(before)
    middle = bare[start:]
    # trailing values go to the options after the free text only when they fit them
    taken: list[tuple[OptionSpec, str]] = []
    for opt in after:
        room = len(middle) > 1 or not rest_opt.required
        if room and middle and opt.type is OptionType.INTEGER and opt.accepts(middle[-1]):
            taken.append((opt, middle.pop()))
        else:
            break
    for opt, value in taken:
        out[opt.name] = value
    if middle:
        if not rest_opt.required and start + len(middle) > first_late:
            stray = " ".join(bare[max(start, first_late) : start + len(middle)])
            raise InputError(
                f"unexpected {stray!r} after {late_after}:… — if it is {rest_opt.name}, "
                f'write {rest_opt.name}:"{stray}". Usage: {spec.usage()}'
            )
        out[rest_opt.name] = " ".join(middle)
    return out


def _keeps_quotes(spec: CommandSpec, named: Mapping[str, str]) -> bool:
    """Whether a bare quoted value keeps its quotes: when it will fill a free-text
    option that keeps them (the /search query), i.e. the first such option not named."""
    free_rest = next((o for o in spec.options if o.rest and o.name not in named), None)
    return free_rest is not None and free_rest.keep_quotes


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
