"""Run the ``briefbot`` command in the test process: ``bot.__main__.main(argv)`` with
the stdin, stdout, stderr, logging and environment a fresh process would have, without
paying a fresh interpreter and its imports for every run.

A few tests still start real processes, where the process is what they test: SIGINT
handling (tests/test_runner.py), the installed ``briefbot`` script
(tests/test_matchcli.py), one ``python -m bot demo`` (tests/test_demo.py) and
``briefbot run`` against the fake Discord (tests/test_discord_run.py).
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.__main__ import main


@dataclass(frozen=True)
class CliResult:
    """What a finished ``briefbot`` process leaves: its exit status and its output."""

    returncode: int
    stdout: str
    stderr: str


def fresh_env(monkeypatch: pytest.MonkeyPatch, home: Path, **extra: str) -> None:
    """The environment the subprocess tests gave their process: no BRIEFBOT_* or
    DISCORD_* from the machine running the tests, HOME and XDG_DATA_HOME under
    ``home`` (never the developer's data directory), ``home`` the working directory;
    then ``extra``."""
    for name in list(os.environ):
        if name.startswith(("BRIEFBOT_", "DISCORD_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(home)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str], *, stdin: str = "") -> CliResult:
    """``briefbot ARGV`` with ``stdin`` as its input (not a terminal). Logging is set up
    by the command itself (``logging.basicConfig`` onto this stderr), as in a process;
    an argparse error's SystemExit becomes the exit status."""
    capsys.readouterr()  # only this run's output
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()  # so basicConfig installs its handler, as in a new process
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        try:
            status = main(argv)
        except SystemExit as done:
            code = done.code
            status = code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.stdin = saved_stdin
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    out, err = capsys.readouterr()
    return CliResult(status, out, err)
