"""The console syntax of a command line, shared by the console and Slack's ``/briefbot``:
``/track kind:actor name:"Li Qiang" aliases:'Premier Li'`` -> the command and its
arguments, checked against the command set of :mod:`bot.core.commands`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.commands import (
    CommandSpec,
    OptionSpec,
    OptionType,
    get_command,
    groups,
    validate_args,
)
from bot.errors import InputError

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
