"""``briefbot poll --once [--all] [--json]``: one cycle over the configured feeds with
the configured storage, then exit. In the test process (tests/clirun.py, in a thread:
the command runs its own event loop) against loopback feeds, and once as a real
process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from clirun import CliResult, fresh_env, run_cli
from feedserver import FeedServer, rss

KEYS = [
    "feeds",
    "fetched",
    "not_modified",
    "unchanged",
    "new_items",
    "matched_items",
    "errors",
    "seconds",
]

WIRE = [
    {
        "title": "Blinken meets Wang Yi in Washington",
        "guid": "w-1",
        "link": "https://wire.example/1",
        "description": "Talks on Taiwan.",
    },
    {"title": "Weather turns cold in Chicago", "guid": "w-2", "link": "https://wire.example/2"},
]
DAILY = [{"title": "Markets close higher", "guid": "d-1", "link": "https://daily.example/1"}]


def write_config(tmp_path: Path, feeds: dict[str, str]) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "briefbot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    lines = ["replace_defaults = true"]
    for name, url in feeds.items():
        lines += ["[[feed]]", f'name = "{name}"', f'url = "{url}"']
    (cfg / "feeds.toml").write_text("\n".join(lines) + "\n")
    return cfg


async def poll(cfg: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> CliResult:
    argv = ["--config", str(cfg), "poll", "--once", *extra]
    return await asyncio.to_thread(run_cli, argv, capsys)


def counts(result: CliResult) -> dict[str, float]:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one JSON object, nothing else
    data = json.loads(lines[0])
    assert list(data) == KEYS
    assert data["seconds"] > 0
    return {k: v for k, v in data.items() if k != "seconds"}


def stored_titles(tmp_path: Path) -> set[str]:
    db = sqlite3.connect(tmp_path / "data" / "briefbot.db")
    try:
        return {row[0] for row in db.execute("SELECT title FROM items")}
    finally:
        db.close()


async def test_one_cycle_then_a_warm_one_then_nothing_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_env(monkeypatch, tmp_path)
    async with FeedServer() as server:
        wire = server.feed("/wire.xml", rss(WIRE), etag='"v1"')  # 304 next time
        daily = server.feed("/daily.xml", rss(DAILY))  # no validators: the same bytes
        broken = server.status("/broken.xml", 500)
        cfg = write_config(tmp_path, {"Wire": wire, "Daily": daily, "Broken": broken})

        first = counts(await poll(cfg, capsys, "--json"))
        assert first == {
            "feeds": 3,
            "fetched": 2,
            "not_modified": 0,
            "unchanged": 0,
            "new_items": 3,
            "matched_items": 1,
            "errors": 1,
        }
        assert stored_titles(tmp_path) == {r["title"] for r in WIRE + DAILY}

        # --all: every active feed again, due or not
        warm = counts(await poll(cfg, capsys, "--all", "--json"))
        assert warm == {
            "feeds": 3,
            "fetched": 1,
            "not_modified": 1,
            "unchanged": 1,
            "new_items": 0,
            "matched_items": 0,
            "errors": 1,
        }
        assert server.requests["/wire.xml"][-1].get("If-None-Match") == '"v1"'

        # without --all only the due feeds: none yet (they were all just polled)
        requests = sum(len(v) for v in server.requests.values())
        due = counts(await poll(cfg, capsys, "--json"))
        assert due["feeds"] == 0
        assert sum(len(v) for v in server.requests.values()) == requests

        # without --json: the cycle's summary on one line
        text = await poll(cfg, capsys, "--all")
        assert text.returncode == 0, text.stderr
        assert text.stdout.startswith("briefbot poll: 3 feed(s) polled;")
        assert "1 failed" in text.stdout


async def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_env(monkeypatch, tmp_path)
    cfg = write_config(tmp_path, {"Wire": "https://wire.example/feed.xml"})
    (cfg / "briefbot.toml").write_text("[poll]\ninterval_minutes = -5\n")
    result = await poll(cfg, capsys, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "poll.interval_minutes" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing opened, nothing created


async def test_poll_needs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_env(monkeypatch, tmp_path)
    cfg = write_config(tmp_path, {"Wire": "https://wire.example/feed.xml"})
    result = await asyncio.to_thread(run_cli, ["--config", str(cfg), "poll"], capsys)
    assert result.returncode == 2
    assert "--once" in result.stderr


async def test_poll_once_as_a_real_process(tmp_path: Path) -> None:
    async with FeedServer() as server:
        wire = server.feed("/wire.xml", rss(WIRE))
        cfg = write_config(tmp_path, {"Wire": wire})
        env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg"), "PATH": ""}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(cfg),
            "poll",
            "--once",
            "--all",
            "--json",
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    data = json.loads(out)
    assert list(data) == KEYS
    assert (data["feeds"], data["fetched"], data["new_items"], data["errors"]) == (1, 1, 2, 0)
    assert stored_titles(tmp_path) == {r["title"] for r in WIRE}


def test_the_poll_command_loads_the_app_only_to_run_a_cycle() -> None:
    """Start-up: parsing ``poll``'s arguments (``--help``, a usage error) imports no
    storage, fetcher, feedparser or Alembic; a fresh interpreter, so earlier tests'
    imports do not count."""
    code = (
        "import sys\n"
        "from bot.__main__ import build_parser\n"
        "build_parser('poll').parse_args(['poll', '--once', '--all', '--json'])\n"
        "heavy = ['bot.app', 'bot.storage.sql', 'sqlalchemy', 'aiohttp', 'feedparser', 'alembic']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
