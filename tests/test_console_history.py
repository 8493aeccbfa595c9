"""Issue 10, point 9: the interactive console has line editing and a history kept
across sessions (GNU readline, real)."""

from __future__ import annotations

import readline
from pathlib import Path

import pytest

from bot.adapters.console import PROMPT, enable_line_editing, history_path


def test_history_is_loaded_and_each_line_saved(tmp_path: Path) -> None:
    history = tmp_path / "state" / "console_history"
    history.parent.mkdir()
    history.write_text("/brief\n/search chips\n", encoding="utf-8")
    readline.clear_history()
    remember = enable_line_editing(history)
    assert remember is not None
    assert readline.get_current_history_length() == 2
    assert readline.get_history_item(2) == "/search chips"
    readline.add_history("/status")  # what input() does with a typed line
    remember("/status")
    assert history.read_text(encoding="utf-8").splitlines()[-1] == "/status"
    remember("   ")  # blank lines are not written
    assert history.read_text(encoding="utf-8").splitlines()[-1] == "/status"
    readline.clear_history()


def test_a_missing_history_file_is_created_on_the_first_line(tmp_path: Path) -> None:
    history = tmp_path / "new" / "dir" / "history"
    readline.clear_history()
    remember = enable_line_editing(history)
    assert remember is not None
    assert readline.get_current_history_length() == 0
    readline.add_history("/help")
    remember("/help")
    assert history.read_text(encoding="utf-8").splitlines()[-1] == "/help"
    readline.clear_history()


def test_history_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BRIEFBOT_HISTORY", str(tmp_path / "h"))
    assert history_path() == tmp_path / "h"
    monkeypatch.delenv("BRIEFBOT_HISTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert history_path() == tmp_path / "briefbot" / "console_history"


def test_an_interactive_console_recalls_the_last_command_with_the_up_arrow(
    tmp_path: Path,
) -> None:
    """A real terminal (a pty): the up arrow brings back the last command, and the
    history file keeps it for the next session. No feeds (nothing leaves the machine)."""
    import os
    import pty
    import select
    import sys
    import time

    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "feeds.toml").write_text("replace_defaults = true\n", encoding="utf-8")
    history = tmp_path / "history"
    env = {
        **os.environ,
        "BRIEFBOT_HISTORY": str(history),
        "BRIEFBOT_CONFIG_DIR": str(cfg),
        "TERM": "xterm",
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console, on the pty
        os.execvpe(
            sys.executable,
            [sys.executable, "-m", "bot", "console", "--data-dir", str(tmp_path / "data")],
            env,
        )
    out = b""

    def read_until(token: bytes, count: int = 1, timeout: float = 60) -> bool:
        nonlocal out
        end = time.monotonic() + timeout
        while out.count(token) < count and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return out.count(token) >= count

    try:
        assert read_until(b"briefbot> "), out
        os.write(fd, b"/status\r")
        assert read_until(b"Feeds: 0", 1), out
        os.write(fd, b"\x1b[A\r")  # up arrow, enter: /status again
        assert read_until(b"Feeds: 0", 2), out
        assert read_until(PROMPT.encode(), 3), out  # readline waits again
        os.write(fd, b"\x04")  # Ctrl-D
    finally:
        status = _reap(pid)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert "/status" in history.read_text(encoding="utf-8").splitlines()


def _reap(pid: int, timeout: float = 30) -> int:
    """The child's wait status; killed (this test's own child, by its id) if it has not
    exited within ``timeout``."""
    import os
    import signal
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return os.waitpid(pid, 0)[1]
