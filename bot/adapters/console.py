"""``briefbot console``: a chat channel in the terminal.

Each input line is a command as typed in Discord (``/brief entry:wang-yi hours:48``),
answered as the bot would answer; digests and instant alerts for the console channel
print here too (the console is a delivery :class:`~bot.core.delivery.Sink`).

Interactive (stdin is a terminal): a prompt, and the scheduler runs (feeds are polled,
the channel's digest is posted on schedule). Piped (``briefbot console < script``):
deterministic, for scripts and tests: every line is processed in order, each command
is echoed (``> /brief``) before its answer, nothing runs in the background, and the exit
status is 0 at end of input (1 with ``--strict`` if any command failed). No traceback
is ever printed: an unexpected error is logged and shown as one line.

``--demo`` serves the bundled sample feeds on a loopback server and polls them first
(into an in-memory database unless ``--data-dir`` is given), so everything can be tried
offline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from typing_extensions import override

from bot.core.command_line import parse_command_line
from bot.core.commands import OptionType
from bot.core.delivery import Sink
from bot.core.digest import Digest
from bot.core.ports import ChannelRecord
from bot.core.render import render_text
from bot.core.replies import ChannelContext, Reply
from bot.errors import BriefbotError, InputError

if TYPE_CHECKING:
    from bot.app import App, Config

log = logging.getLogger(__name__)

PLATFORM = "console"
BUDGET = 4000
PROMPT = "briefbot> "


def add_arguments(parser: argparse.ArgumentParser, _name: str) -> None:
    parser.add_argument(
        "--channel",
        default="console",
        metavar="NAME",
        help="the console channel's name (each name has its own setup)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="serve and poll the bundled sample feeds first (offline)",
    )
    parser.add_argument(
        "--demo-port",
        type=int,
        default=0,
        metavar="PORT",
        help="with --demo, serve the sample feeds on this loopback port (default: any free port)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the database lives (default: storage.data_dir); with "
        "--demo the default is an in-memory database",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any command failed")
    parser.add_argument(
        "--read-only", action="store_true", help="act as a user without the manage permission"
    )
    parser.add_argument(
        "--poll", action="store_true", help="poll the configured feeds once before reading commands"
    )


class ConsoleSink(Sink):
    """Delivers digests and alerts by printing them."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.sent = 0

    @override
    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        ids = []
        for part in render_text(digest, budget=BUDGET, markdown=False):
            self.sent += 1
            ids.append(f"console-{self.sent}")
            _write(self.out, part + "\n")
        return ids


def _write(out: IO[str], text: str) -> None:
    out.write(text)
    out.flush()


def format_reply(reply: Reply) -> str:
    """A reply as printed in the terminal."""
    parts: list[str] = []
    prefix = "error: " if reply.error else ""
    if reply.lines:
        parts.append(prefix + "\n".join(reply.lines))
    if reply.digest is not None:
        parts.extend(render_text(reply.digest, budget=BUDGET, markdown=False))
    if reply.attachment is not None:
        att = reply.attachment
        parts.append(f"--- {att.filename} ({len(att.data)} bytes) ---")
        try:
            parts.append(att.data.decode("utf-8").rstrip("\n"))
        except UnicodeDecodeError:
            parts.append("(binary content not shown)")
        parts.append(f"--- end of {att.filename} ---")
    return "\n".join(parts)


class Console:
    """Runs command lines against the service for one console channel."""

    def __init__(self, app: App, ctx: ChannelContext, out: IO[str]) -> None:
        self.app = app
        self.ctx = ctx
        self.out = out
        self.failures = 0

    async def run_line(self, line: str) -> bool:
        """Run one command line and print the answer. False if it failed."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        try:
            spec, args = parse_command_line(text)
            for opt in spec.options:  # a file option names a local file in the console
                if opt.type is OptionType.ATTACHMENT and opt.name in args:
                    args[opt.name] = _read_file(args[opt.name])
            reply = await self.app.service.dispatch(self.ctx, spec.name, args)
        except BriefbotError as err:
            reply = Reply.failure(err)
        except Exception as err:
            # one line in the terminal; the traceback goes to the debug log below
            log.error(  # noqa: TRY400
                "command %r failed unexpectedly: %s: %s", text, type(err).__name__, err
            )
            log.debug("traceback", exc_info=True)
            reply = Reply(lines=(f"something went wrong: {type(err).__name__}: {err}",), error=True)
        _write(self.out, format_reply(reply) + "\n")
        if reply.error:
            self.failures += 1
        return not reply.error


def _read_file(value: bytes) -> bytes:
    path = Path(value.decode("utf-8", "replace")).expanduser()
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


HISTORY_LENGTH = 1000


def history_path() -> Path:
    """Where the console keeps its command history: ``$BRIEFBOT_HISTORY`` if set, else
    ``$XDG_STATE_HOME/briefbot/console_history`` (``~/.local/state/...``)."""
    explicit = os.environ.get("BRIEFBOT_HISTORY")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state).expanduser() / "briefbot" / "console_history"


def enable_line_editing(history: Path | None) -> Callable[[str], None] | None:
    """Line editing for ``input()`` (arrows, Ctrl-R, ...) through readline, with the
    history of earlier sessions loaded from ``history``. Returns a function that
    records one typed line in the history file, or None where readline is missing."""
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        return None
    readline.set_history_length(HISTORY_LENGTH)
    if history is not None:
        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def remember(line: str) -> None:
        if not line.strip():
            return
        # input() has added it to the in-memory history already (readline does)
        if history is None:
            return
        try:
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history)
        except OSError as err:
            log.debug("cannot write the console history %s: %s", history, err)

    return remember


def _line_reader(
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[str | None],
    interactive: bool,
    ready: threading.Event,
) -> None:
    """A daemon thread: stdin lines into the queue, None at end of input. Interactive,
    it prompts again only once the previous answer is printed (``ready``), with line
    editing and a history kept across sessions (readline)."""
    try:
        if interactive:
            remember = enable_line_editing(history_path())
            while True:
                ready.wait()
                ready.clear()
                try:
                    line = input(PROMPT)
                except EOFError:
                    break
                if remember is not None:
                    remember(line)
                loop.call_soon_threadsafe(queue.put_nowait, line)
        else:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
    except (OSError, ValueError, RuntimeError):
        pass
    finally:
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(queue.put_nowait, None)


def _configure(args: argparse.Namespace) -> tuple[Config, str | None]:
    """The loaded config with --data-dir applied, and a database URL override."""
    from bot.app import load_config

    config = load_config(getattr(args, "config", None))
    settings = config.settings
    data_dir = getattr(args, "data_dir", None)
    if data_dir:
        path = Path(data_dir).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot create the data directory {path}: {err.strerror}") from None
        storage = settings.storage.model_copy(update={"data_dir": str(path)})
        settings = settings.model_copy(update={"storage": storage})
        config = replace(config, settings=settings)
    database_url = None
    if getattr(args, "demo", False) and not data_dir:
        database_url = "sqlite+aiosqlite:///:memory:"
    return config, database_url


async def run_console_channel(
    app: App,
    *,
    channel: str = "console",
    out: IO[str] | None = None,
    read_only: bool = False,
    interactive: bool | None = None,
) -> int:
    """Read command lines from stdin until end of input, answering each, on an opened
    app (``briefbot run`` calls this when no chat platform is configured). Registers the
    console sink, so the channel's digests and alerts print here. Returns the number of
    commands that failed."""
    out = out or sys.stdout
    if interactive is None:
        interactive = sys.stdin.isatty() and out.isatty()
    if PLATFORM not in app.sinks:
        app.add_sink(PLATFORM, ConsoleSink(out))
    ctx = ChannelContext(
        platform=PLATFORM,
        channel_id=channel,
        channel_name=channel,
        user=_user(),
        can_manage=not read_only,
    )
    await app.service.channel(ctx)  # the channel exists (and gets digests) from now on
    console = Console(app, ctx, out)
    if interactive:
        _write(out, f"Briefbot console, channel #{channel}. Type /help; Ctrl-D quits.\n")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    ready = threading.Event()
    ready.set()
    threading.Thread(
        target=_line_reader,
        args=(loop, queue, interactive, ready),
        daemon=True,
        name="console-stdin",
    ).start()
    while (line := await queue.get()) is not None:
        if not interactive and line.strip() and not line.lstrip().startswith("#"):
            _write(out, f"> {line.strip()}\n")
        try:
            await console.run_line(line)
        finally:
            ready.set()
    return console.failures


async def main(args: argparse.Namespace, *, stdout: IO[str] | None = None) -> int:
    try:
        return await _main(args, stdout or sys.stdout)
    except BriefbotError:
        raise  # printed as one line by bot.__main__
    except Exception as err:  # never a traceback in the terminal
        # one line in the terminal; the traceback goes to the debug log below
        log.error("console failed: %s: %s", type(err).__name__, err)  # noqa: TRY400
        log.debug("traceback", exc_info=True)
        print(f"briefbot: something went wrong: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


async def _main(args: argparse.Namespace, out: IO[str]) -> int:
    from bot.app import build_app
    from bot.demo.server import DemoServer

    interactive = sys.stdin.isatty() and out.isatty()
    config, database_url = _configure(args)
    demo: DemoServer | None = None
    if getattr(args, "demo", False):
        # the samples moved to the last weeks, as if just published
        demo = DemoServer(port=getattr(args, "demo_port", 0) or 0, now=datetime.now(UTC))
        try:
            await demo.start()
        except OSError as err:
            raise InputError(f"cannot serve the demo feeds: {err}") from None
        # the demo server is on loopback: let its host through the SSRF guard too
        security = config.settings.security.model_copy(
            update={
                "allow_hosts": [
                    *config.settings.security.allow_hosts,
                    demo.base_url.removeprefix("http://"),
                ],
            }
        )
        # the demo feeds are all new here: their items count as news however old
        digest = config.settings.digest.model_copy(update={"max_item_age": 0})
        config = replace(
            config,
            feeds=demo.sources(),
            settings=config.settings.model_copy(update={"security": security, "digest": digest}),
        )
    app = build_app(config, sinks={PLATFORM: ConsoleSink(out)}, database_url=database_url)
    poll_first = demo is not None or getattr(args, "poll", False)
    try:
        await app.open()
        await app.service.channel(_context(args))
        await app.outbox.retry_pending(force=True)
        if poll_first:
            report = await app.poller.poll_once(only_due=False)
            what = "sample feeds" if demo is not None else "feeds"
            _write(out, f"Polled {len(report.results)} {what}: {report.summary()}\n")
            if demo is not None:
                spare = ", ".join(demo.url(f) for f in demo.extra)
                _write(out, f"Another sample feed to try /feeds add with: {spare}\n")
        if interactive:
            await app.scheduler.start(poll_now=not poll_first)
        failures = await run_console_channel(
            app,
            channel=args.channel,
            out=out,
            read_only=getattr(args, "read_only", False),
            interactive=interactive,
        )
    finally:
        try:
            await app.close()
        finally:
            if demo is not None:
                await demo.close()
    return 1 if getattr(args, "strict", False) and failures else 0


def _context(args: argparse.Namespace) -> ChannelContext:
    return ChannelContext(
        platform=PLATFORM, channel_id=args.channel, channel_name=args.channel, user=_user()
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "console"
