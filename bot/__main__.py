"""The ``briefbot`` command.

Each subcommand lives in its own module and is imported only when used, so
``briefbot match`` does not load discord.py. Every expected error is a BriefbotError:
it is printed as one line on stderr with its exit status (2 for bad config or input),
never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from bot import __version__
from bot.errors import BriefbotError

DESCRIPTION = (
    "Briefbot: polls news feeds, matches a watchlist of tracked people and topics, and "
    "posts digests."
)

# subcommand -> (module:function, help). The function takes the parsed args and returns
# an exit status (it may be async).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("bot.demo.run:main", "poll bundled sample feeds offline, print the digest"),
    "run": ("bot.runner:main", "poll feeds, schedule digests and start the enabled adapters"),
    "console": ("bot.adapters.console:main", "a chat channel in the terminal"),
    "match": ("bot.matchcli:match_main", "match items or a feed against a watchlist (JSON lines)"),
    "eval": ("bot.matchcli:eval_main", "score a watchlist on labelled items"),
    "check-config": ("bot.runner:check_config_main", "validate the configuration and exit"),
    "poll": ("bot.pollcmd:main", "run one poll cycle over the configured feeds, then exit"),
    "discord": ("bot.adapters.discord.cli:main", "Discord tools: sync commands, invite URL"),
    "slack": ("bot.adapters.slack.manifest:main", "Slack tools: the app manifest"),
}


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--config`` and ``-v``: accepted before the subcommand and after it. The
    subcommand's copies default to SUPPRESS, so they never overwrite a value given
    before it."""
    parser.add_argument(
        "--config",
        metavar="DIR",
        default=None if top else argparse.SUPPRESS,
        help="directory with briefbot.toml, watchlist.toml, feeds.toml "
        "(default: $BRIEFBOT_CONFIG_DIR, else the shipped defaults)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        dest="verbose" if top else "verbose_after",
        default=0 if top else argparse.SUPPRESS,
        help="more logging (-vv: debug)",
    )


def build_parser(
    command: str | None = None, *, parser_class: type[argparse.ArgumentParser] | None = None
) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    cls = parser_class or argparse.ArgumentParser
    probe = parser_class is not None
    parser = cls(prog="briefbot", description=DESCRIPTION, add_help=not probe)
    parser.add_argument("--version", action="version", version=f"briefbot {__version__}")
    _add_common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, add_help=not probe)
        _add_common(p, top=False)
        if name == command:
            add_args = getattr(_load_module(target.split(":")[0]), "add_arguments", None)
            if add_args is not None:
                add_args(p, name)
    return parser


class _ProbeError(Exception):
    pass


class _ProbeParser(argparse.ArgumentParser):
    """Finds the subcommand without knowing its arguments: errors raise, nothing prints."""

    def error(self, message: str) -> NoReturn:
        raise _ProbeError(message)


def find_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names, parsed the way the real parser will parse it (so
    ``--config run match`` is the match command with the config directory ``run``)."""
    try:
        args, _ = build_parser(parser_class=_ProbeParser).parse_known_args(list(argv))
    except _ProbeError:
        return None
    command = getattr(args, "command", None)
    return command if command in COMMANDS else None


def _load_module(name: str) -> ModuleType:
    return importlib.import_module(name)


def _setup_logging(verbosity: int) -> None:
    from bot.ops.logs import setup_logging

    setup_logging(verbosity)  # ``run --log-format json`` switches to JSON lines


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(find_command(argv))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    args.verbose += getattr(args, "verbose_after", 0)
    _setup_logging(args.verbose)
    module_name, func_name = COMMANDS[args.command][0].split(":")
    func = getattr(_load_module(module_name), func_name)
    try:
        result = func(args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except BriefbotError as err:
        print(f"briefbot: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("briefbot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
