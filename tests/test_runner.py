"""``briefbot run`` and ``briefbot check-config``: stopping on SIGINT as real processes,
the rest through the same command in the test process (tests/clirun.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from clirun import fresh_env, run_cli
from feedserver import FeedServer, rss


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIEFBOT_", "DISCORD_"))}
    env["HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def _config(tmp_path: Path, feed_url: str) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "briefbot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    (cfg / "feeds.toml").write_text(
        f'replace_defaults = true\n[[feed]]\nname = "Loopback Wire"\nurl = "{feed_url}"\n'
    )
    return cfg


async def _run(*args: str, env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def _stored_titles(db_path: Path) -> int:
    """How many items the running process has stored so far (0 while it cannot tell)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1)
    except sqlite3.Error:
        return 0
    try:
        return int(db.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlite3.Error:  # no schema yet, or locked by the writer for a moment
        return 0
    finally:
        db.close()


async def test_run_polls_then_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    async with FeedServer() as server:
        url = server.feed(
            "/wire.xml",
            rss(
                [
                    {
                        "title": "Blinken meets Wang Yi in Washington",
                        "guid": "w-1",
                        "link": "https://wire.example/1",
                        "description": "Talks on Taiwan.",
                    },
                    {
                        "title": "Weather turns cold in Chicago",
                        "guid": "w-2",
                        "link": "https://wire.example/2",
                    },
                ]
            ),
        )
        cfg = _config(tmp_path, url)
        proc = await _run("--config", str(cfg), "run", env=_env(tmp_path), cwd=tmp_path)
        assert proc.stderr is not None
        # wait until it is up and has polled the feed once
        seen = b""
        while b"running;" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
            assert line, f"run exited early: {seen.decode()}"
            seen += line
        for _ in range(300):
            if server.requests.get("/wire.xml"):
                break
            await asyncio.sleep(0.05)
        assert server.requests.get("/wire.xml"), "the configured feed was never fetched"
        # let the cycle store what it fetched: the stop below finds it idle
        for _ in range(600):
            if _stored_titles(tmp_path / "data" / "briefbot.db") == 2:
                break
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    text = (seen + err).decode()
    assert proc.returncode == 130, text  # Ctrl-C: 128 + SIGINT, as shells report it
    assert "DISCORD_TOKEN is not set" in text
    assert "briefbot: stopped" in text
    assert "Traceback" not in text
    # nothing lost: the items and the match are in the database after the stop
    db = sqlite3.connect(tmp_path / "data" / "briefbot.db")
    try:
        titles = {row[0] for row in db.execute("SELECT title FROM items")}
        matched = {row[0] for row in db.execute("SELECT entry_id FROM matches")}
    finally:
        db.close()
    assert titles == {"Blinken meets Wang Yi in Washington", "Weather turns cold in Chicago"}
    assert {"antony-blinken", "wang-yi", "taiwan"} <= matched


def test_check_config_ok_and_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    fresh_env(monkeypatch, tmp_path)
    result = run_cli(["--config", str(cfg), "check-config"], capsys)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout
    assert "feeds:     1" in result.stdout

    (cfg / "briefbot.toml").write_text("[poll]\ninterval_minutes = -5\n")
    result = run_cli(["--config", str(cfg), "check-config"], capsys)
    message = result.stderr
    assert result.returncode == 2
    assert "Traceback" not in message
    assert message.count("\n") == 1, message
    assert str(cfg / "briefbot.toml") in message
    assert "poll.interval_minutes" in message
    assert "greater than 0" in message


def test_env_override_is_validated_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_env(monkeypatch, tmp_path, BRIEFBOT_DIGEST__DEFAULT_TIMEZONE="Mars/Olympus")
    result = run_cli(["check-config"], capsys)
    assert result.returncode == 2
    assert "digest.default_timezone" in result.stderr
    assert "unknown timezone" in result.stderr


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _one_line_failure(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    result = run_cli(argv, capsys)
    message = result.stderr
    assert "Traceback" not in message, message
    assert message.count("\n") == 1, message
    assert message.startswith("briefbot: "), message
    return result.returncode, message


def test_run_against_unreachable_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    url = f"postgresql+asyncpg://briefbot:s3cret@127.0.0.1:{port}/briefbot"
    fresh_env(monkeypatch, tmp_path, BRIEFBOT_STORAGE__DATABASE_URL=url)
    status, message = _one_line_failure(["run", "--no-console"], capsys)
    assert status == 1
    assert f"briefbot:***@127.0.0.1:{port}/briefbot" in message
    assert "s3cret" not in message
    assert "is the PostgreSQL server running" in message


def test_run_on_a_corrupt_database_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    junk = b"definitely not sqlite" * 100
    (data / "briefbot.db").write_bytes(junk)
    fresh_env(monkeypatch, tmp_path, BRIEFBOT_STORAGE__DATA_DIR=str(data))
    status, message = _one_line_failure(["run", "--no-console"], capsys)
    assert status == 1
    assert f"{data / 'briefbot.db'}: it is not a valid SQLite database" in message
    assert (data / "briefbot.db").read_bytes() == junk


def test_run_with_postgresql_url_without_asyncpg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh_env(
        monkeypatch, tmp_path, BRIEFBOT_STORAGE__DATABASE_URL="postgresql://u:s3cret@127.0.0.1/db"
    )
    status, message = _one_line_failure(["run", "--no-console"], capsys)
    assert status == 2
    assert "BRIEFBOT_STORAGE__DATABASE_URL" in message
    assert "add +asyncpg" in message
    assert "s3cret" not in message


def test_demo_with_unusable_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fresh_env(monkeypatch, tmp_path)
    status, message = _one_line_failure(["demo", "--data-dir", str(blocker / "demo")], capsys)
    assert status == 2
    assert f"cannot create the database directory {blocker / 'demo'}" in message


def test_check_config_hides_the_password_and_takes_config_after_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    url = "postgresql+asyncpg://briefbot:s3cret@db.internal:5432/briefbot"
    fresh_env(monkeypatch, tmp_path, BRIEFBOT_STORAGE__DATABASE_URL=url)
    result = run_cli(["check-config", "--config", str(cfg), "--no-connect"], capsys)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "feeds:     1" in text  # the --config given after the subcommand was used
    assert "postgresql+asyncpg://briefbot:***@db.internal:5432/briefbot" in text
    assert "s3cret" not in text + result.stderr


async def test_sigint_during_a_slow_fetch_waits_for_the_poll_and_exits_cleanly(
    tmp_path: Path,
) -> None:
    """Ctrl-C while a feed is still downloading: the running poll is allowed to finish
    (bounded), then the HTTP session and the database close. Exit 0, no traceback, and
    the poll's items are stored with their matches (no half-written feed)."""
    async with FeedServer() as server:
        url = server.slow(
            "/slow.xml",
            rss(
                [
                    {
                        "title": "Wang Yi meets Blinken in Beijing",
                        "guid": "s-1",
                        "link": "https://slow.example/1",
                        "description": "Talks on Taiwan.",
                    },
                ]
            ),
            delay=1.5,
        )
        cfg = _config(tmp_path, url)
        proc = await _run("--config", str(cfg), "run", env=_env(tmp_path), cwd=tmp_path)
        assert proc.stderr is not None
        seen = b""
        while b"running;" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
            assert line, f"run exited early: {seen.decode()}"
            seen += line
        for _ in range(300):
            if server.requests.get("/slow.xml"):
                break
            await asyncio.sleep(0.02)
        assert server.requests.get("/slow.xml"), "the configured feed was never fetched"
        proc.send_signal(signal.SIGINT)  # the response is still over a second away
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    text = (seen + err).decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert "CancelledError" not in text
    assert "briefbot: stopped" in text
    db = sqlite3.connect(tmp_path / "data" / "briefbot.db")
    try:
        titles = {row[0] for row in db.execute("SELECT title FROM items")}
        matched = {row[0] for row in db.execute("SELECT entry_id FROM matches")}
    finally:
        db.close()
    assert titles == {"Wang Yi meets Blinken in Beijing"}
    assert {"wang-yi", "antony-blinken"} <= matched
