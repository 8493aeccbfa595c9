"""Issue 10, point 9: the interactive console has line editing and a history kept
across sessions (GNU readline, real)."""

from __future__ import annotations

import readline
from pathlib import Path

import pytest

from bot.adapters.console import enable_line_editing, history_path


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
