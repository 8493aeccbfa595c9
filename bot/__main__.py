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
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bot import __version__
from bot.errors import BriefbotError

# subcommand -> (module:function, help). The function takes the parsed args and returns
# an exit status (it may be async).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("bot.demo.run:main", "poll bundled sample feeds offline and print what matched"),
    "run": ("bot.runner:main", "poll feeds, schedule digests and start the enabled adapters"),
    "console": ("bot.adapters.console:main", "a chat channel in the terminal"),
    "match": ("bot.matchcli:match_main", "match items or a feed against a watchlist (JSON lines)"),
    "eval": ("bot.matchcli:eval_main", "score a watchlist on labelled items"),
    "check-config": ("bot.runner:check_config_main", "validate the configuration and exit"),
    "discord": ("bot.adapters.discord.cli:main", "Discord tools: sync commands, invite URL"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(prog="briefbot", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"briefbot {__version__}")
    parser.add_argument(
        "--config", metavar="DIR", help="directory with briefbot.toml, watchlist.toml, "
        "feeds.toml (default: $BRIEFBOT_CONFIG_DIR, else the shipped defaults)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (target, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            add_args = getattr(_load_module(target.split(":")[0]), "add_arguments", None)
            if add_args is not None:
                add_args(p, name)
    return parser


def _load_module(name: str) -> Any:
    return importlib.import_module(name)


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
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
