"""``briefbot run``, ``console --demo`` and ``check-config`` as real processes: Ctrl-C
as a terminal sends it (SIGINT to the whole process group, parser workers included),
the event log lines, /healthz and /metrics over real HTTP, Discord unreachable at
start, and check-config's live checks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from feedserver import FeedServer, rss
from prometheus_client.parser import text_string_to_metric_families

pytest_plugins = ["fakeslack.pytest_plugin"]

WIRE = [
    {"title": "Blinken meets Wang Yi in Washington", "guid": "w-1",
     "link": "https://wire.example/1", "description": "Talks on Taiwan."},
    {"title": "Weather turns cold in Chicago", "guid": "w-2", "link": "https://wire.example/2"},
]  # fmt: skip


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIEFBOT_", "DISCORD_"))}
    env["HOME"] = str(tmp_path)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def _config(tmp_path: Path, feed_url: str, extra: str = "") -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir(exist_ok=True)
    (cfg / "briefbot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n{extra}')
    (cfg / "feeds.toml").write_text(
        f'replace_defaults = true\n[[feed]]\nname = "Loopback Wire"\nurl = "{feed_url}"\n'
    )
    return cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A briefbot process in its own session (so a "Ctrl-C" reaches its whole process
    group, as a terminal's does); stdout and stderr read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.out)),
            asyncio.create_task(self._read(proc.stderr, self.err)),
        ]

    @classmethod
    async def start(cls, *args: str, env: dict[str, str], cwd: Path) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", *args, env=env, cwd=cwd,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        return cls(proc)

    @staticmethod
    async def _read(stream: asyncio.StreamReader, into: list[str]) -> None:
        async for line in stream:
            into.append(line.decode())

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    async def until(self, what: str, check: Callable[[], bool], within: float = 30) -> None:
        for _ in range(int(within / 0.05)):
            if check():
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await self.stop(signal.SIGKILL)
        raise AssertionError(f"{what} did not happen; stderr:\n{self.stderr}")

    async def ctrl_c(self) -> int:
        """SIGINT to the process group, as a terminal sends it."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return await self.wait()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.wait()

    async def wait(self) -> int:
        status = await asyncio.wait_for(self.proc.wait(), timeout=30)
        await asyncio.wait_for(asyncio.gather(*self._readers), timeout=5)
        return status


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_ctrl_c_in_run_stops_with_130_and_one_line(tmp_path: Path) -> None:
    async with FeedServer() as server:
        cfg = _config(tmp_path, server.feed("/wire.xml", rss(WIRE)))
        run = await Proc.start("--config", str(cfg), "run", env=_env(tmp_path), cwd=tmp_path)
        # the poll parsed the feed: the parser worker processes are up
        await run.until("a poll cycle", lambda: "poll: 1 feeds, 2 new" in run.stderr)
        before = len(run.err)
        status = await run.ctrl_c()
    after = run.err[before:]
    assert status == 130, run.stderr
    assert after == ["briefbot: stopped (interrupted)\n"], run.stderr
    assert "Traceback" not in run.stderr
    assert "KeyboardInterrupt" not in run.stderr


async def test_ctrl_c_in_the_demo_console_is_one_line(tmp_path: Path) -> None:
    demo = await Proc.start("console", "--demo", env=_env(tmp_path), cwd=tmp_path)
    await demo.until("the demo poll", lambda: "Polled 7 sample feeds" in demo.stdout, 120)
    status = await demo.ctrl_c()
    assert status == 130
    assert demo.stderr == "briefbot: interrupted\n"


async def test_sigterm_stops_run_with_0(tmp_path: Path) -> None:
    async with FeedServer() as server:
        cfg = _config(tmp_path, server.feed("/wire.xml", rss(WIRE)))
        run = await Proc.start("--config", str(cfg), "run", env=_env(tmp_path), cwd=tmp_path)
        await run.until("a poll cycle", lambda: "poll: 1 feeds" in run.stderr)
        status = await run.stop(signal.SIGTERM)
    assert status == 0, run.stderr
    assert run.err[-1] == "briefbot: stopped\n"
    assert "Traceback" not in run.stderr


async def test_run_serves_health_and_metrics_and_logs_json(tmp_path: Path) -> None:
    port = _free_port()
    async with FeedServer() as server:
        cfg = _config(tmp_path, server.feed("/wire.xml", rss(WIRE)), f"[metrics]\nport = {port}\n")
        run = await Proc.start(
            "--config", str(cfg), "run", "--log-format", "json", env=_env(tmp_path), cwd=tmp_path
        )
        await run.until("a poll cycle", lambda: '"event": "poll"' in run.stderr)
        base = f"http://127.0.0.1:{port}"
        status, body = await _get(base + "/healthz")
        assert status == 200, body
        assert json.loads(body)["status"] == "ok"
        status, body = await _get(base + "/metrics")
        assert status == 200
        metrics = _samples(body)
        assert metrics[("briefbot_poll_cycles_total", ())] >= 1
        assert metrics[("briefbot_items_new_total", ())] == 2
        assert metrics[("briefbot_items_matched_total", ())] == 1
        assert metrics[("briefbot_healthy", ())] == 1
        code = await run.stop(signal.SIGTERM)
    assert code == 0, run.stderr
    assert f"health and metrics on {base}" in run.stderr
    logged = [json.loads(line) for line in run.err if line.startswith("{")]
    (poll,) = [x for x in logged if x.get("event") == "poll"]
    assert (poll["feeds"], poll["new"], poll["matched"], poll["failing"]) == (1, 2, 1, 0)
    assert poll["msg"].startswith("poll: 1 feeds, 2 new, 1 matched, 0 failing, ")
    # every log line is JSON; the few plain lines are the command's own messages
    assert all(line.startswith(("{", "briefbot: ")) for line in run.err), run.stderr


async def test_discord_unreachable_at_start_retries_while_polling_goes_on(
    tmp_path: Path,
) -> None:
    closed = _free_port()
    port = _free_port()
    async with FeedServer() as server:
        cfg = _config(
            tmp_path, server.feed("/wire.xml", rss(WIRE)),
            f"[metrics]\nport = {port}\nadapter_stale_seconds = 0.5\n",
        )  # fmt: skip
        env = _env(
            tmp_path, DISCORD_TOKEN="a-token", DISCORD_API_BASE=f"http://127.0.0.1:{closed}/api/v10"
        )
        run = await Proc.start("--config", str(cfg), "run", env=env, cwd=tmp_path)
        await run.until("a poll cycle", lambda: "poll: 1 feeds, 2 new" in run.stderr)
        await run.until("the retry line", lambda: "cannot reach Discord" in run.stderr)
        await asyncio.sleep(0.6)
        status, body = await _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503
        (reason,) = json.loads(body)["reasons"]
        assert reason.startswith("discord not connected for ")
        assert reason.endswith(": connection refused; retrying")
        code = await run.stop(signal.SIGTERM)
    assert code == 0, run.stderr
    text = run.stderr
    assert "Traceback" not in text
    (line,) = [x for x in text.splitlines() if "cannot reach Discord" in x]
    assert (
        f"cannot reach Discord at http://127.0.0.1:{closed}/api/v10 (connection refused); "
        "retrying in " in line
    )
    # polling went on: the items are stored
    db = sqlite3.connect(tmp_path / "data" / "briefbot.db")
    try:
        assert db.execute("SELECT count(*) FROM items").fetchone() == (2,)
    finally:
        db.close()


# -- check-config ------------------------------------------------------------------------


async def _check(tmp_path: Path, cfg: Path, **env: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(cfg), "check-config",
        env=_env(tmp_path, **env), cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_check_config_creates_the_data_dir_and_opens_the_database(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    status, out, err = await _check(tmp_path, cfg)
    assert status == 0, err
    assert err == ""
    assert "config OK" in out
    assert (tmp_path / "data").is_dir()
    assert (tmp_path / "data" / "briefbot.db").is_file()


async def test_check_config_reports_each_failure_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    closed = _free_port()
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    (cfg / "briefbot.toml").write_text(
        f'[storage]\ndata_dir = "{blocker / "data"}"\n'
        f'database_url = "postgresql+asyncpg://briefbot:s3cret@127.0.0.1:{closed}/briefbot"\n'
    )
    status, out, err = await _check(tmp_path, cfg)
    assert status == 2
    assert "Traceback" not in err
    assert "s3cret" not in out + err
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith(f"briefbot: cannot create the data directory {blocker / 'data'} (")
    assert lines[1].startswith(
        f"briefbot: cannot open the database postgresql+asyncpg://briefbot:***@127.0.0.1:{closed}"
        "/briefbot ("
    )
    assert "is the server running" in lines[1]


async def test_check_config_unusable_sqlite_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    junk = b"definitely not sqlite" * 100
    (data / "briefbot.db").write_bytes(junk)
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    status, _, err = await _check(tmp_path, cfg)
    assert status == 2
    (line,) = err.splitlines()
    assert line.startswith(f"briefbot: cannot open the database sqlite+aiosqlite:///{data}")
    assert "not a database" in line
    assert (data / "briefbot.db").read_bytes() == junk


PG_URL = os.environ.get("BRIEFBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if PG_URL else [])]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_check_config_opens_the_configured_database(tmp_path: Path, backend: str) -> None:
    """A database URL that works: exit 0; one that does not: one line, exit 2. On
    PostgreSQL when BRIEFBOT_TEST_POSTGRES_URL (an admin URL) points at a server."""
    cfg = _config(tmp_path, "https://wire.example/feed.xml")
    if backend == "postgres":
        good = PG_URL
        bad = PG_URL.rsplit("/", 1)[0] + "/briefbot_no_such_database"
        name = "briefbot_no_such_database"
    else:
        good = f"sqlite+aiosqlite:///{tmp_path / 'db' / 'briefbot.db'}"
        (tmp_path / "taken.db").mkdir()  # a directory where the file should be
        bad = f"sqlite+aiosqlite:///{tmp_path / 'taken.db'}"
        name = str(tmp_path / "taken.db")
    status, _, err = await _check(tmp_path, cfg, BRIEFBOT_STORAGE__DATABASE_URL=good)
    assert status == 0, err
    assert err == ""
    status, _, err = await _check(tmp_path, cfg, BRIEFBOT_STORAGE__DATABASE_URL=bad)
    assert status == 2
    (line,) = err.splitlines()
    assert line.startswith("briefbot: cannot open the database ")
    assert name in line


async def test_a_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _config(tmp_path, "https://wire.example/feed.xml", f"[metrics]\nport = {port}\n")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(cfg), "run", "--no-console",
            env=_env(tmp_path), cwd=tmp_path, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    (line,) = err.decode().splitlines()
    assert line.startswith(f"briefbot: metrics.port: cannot serve /healthz and /metrics on "
                           f"127.0.0.1:{port} (")  # fmt: skip


def test_ctrl_c_typed_in_a_terminal_stops_the_demo_console_with_one_line(
    tmp_path: Path,
) -> None:
    """The interactive console in a real terminal (a pseudo-terminal): typing Ctrl-C
    makes the terminal send SIGINT to the foreground process group, parser workers
    included. One line, exit status 130."""
    import fcntl
    import pty
    import select
    import subprocess
    import termios
    import time

    def controlling_tty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "console", "--demo"], stdin=slave, stdout=slave,
        stderr=slave, cwd=tmp_path, env=_env(tmp_path), start_new_session=True,
        preexec_fn=controlling_tty,  # noqa: PLW1509 - makes the pty the controlling terminal
    )  # fmt: skip
    os.close(slave)
    seen = b""

    def read_until(done: Callable[[], bool], within: float) -> None:
        nonlocal seen
        end = time.monotonic() + within
        while time.monotonic() < end and not done():
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # every process closed the terminal
                    return

    try:
        read_until(lambda: b"briefbot> " in seen, 120)
        assert b"briefbot> " in seen, seen.decode(errors="replace")
        os.write(master, b"\x03")  # Ctrl-C, as typed
        read_until(lambda: False, 30)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = seen.decode(errors="replace")
    assert status == 130, text
    assert "Traceback" not in text
    assert "KeyboardInterrupt" not in text
    after = text.split("briefbot> ")[-1]
    assert after.replace("^C", "").strip() == "briefbot: interrupted", after


async def test_health_covers_slack_when_it_is_enabled(fake_slack: Any, tmp_path: Path) -> None:
    """Slack over HTTP is an enabled adapter too: /healthz reports it once it listens."""
    from fakeslack.harness import SIGNING_SECRET

    port = _free_port()
    slack_port = _free_port()
    cfg = _config(tmp_path, "http://127.0.0.1:9/feed.xml", f"[metrics]\nport = {port}\n")
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE=fake_slack.api_base,
        BRIEFBOT_SLACK__HOST="127.0.0.1",
        BRIEFBOT_SLACK__PORT=str(slack_port),
    )
    env = {k: v for k, v in env.items() if not (k.startswith("SLACK_") and k not in (
        "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_BASE"))}  # fmt: skip
    run = await Proc.start("--config", str(cfg), "run", env=env, cwd=tmp_path)
    try:
        await run.until("running", lambda: "briefbot: running;" in run.stderr)
        body = "{}"
        for _ in range(400):
            status, body = await _get(f"http://127.0.0.1:{port}/healthz")
            if json.loads(body)["adapters"].get("slack"):
                break
            await asyncio.sleep(0.05)
        assert json.loads(body)["adapters"] == {"slack": True}, body
        assert status == 200
    finally:
        code = await run.stop(signal.SIGTERM)
    assert code == 0, run.stderr
    assert "Traceback" not in run.stderr
