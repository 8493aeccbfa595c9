"""``briefbot run`` with ``DISCORD_TOKEN`` and ``DISCORD_API_BASE`` pointing at a
loopback fake Discord served by the test process: the whole client (REST and gateway)
must find the fake through ``DISCORD_API_BASE`` alone. Connecting, stopping on SIGINT
and starting again is a real process (tests/clirun.py runs the rest in-process)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from clirun import fresh_env, run_cli
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fakediscord import FakeDiscord
from feedserver import FeedServer, rss

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


@pytest.fixture
async def loopback_discord() -> AsyncIterator[FakeDiscord]:
    """One shard (discord.py pauses 5 s between the IDENTIFYs of several shards, and a
    subprocess cannot be told not to), both guilds on it."""
    async with FakeDiscord(shard_count=1) as fake:
        yield fake
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


@pytest.fixture
async def feed_url() -> AsyncIterator[str]:
    async with FeedServer() as server:
        yield server.feed(
            "/wire.xml",
            rss([{"title": "Blinken meets Wang Yi", "guid": "w-1", "link": "https://w.example/1"}]),
        )


def _config(tmp_path: Path, feed_url: str) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "briefbot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    (cfg / "feeds.toml").write_text(
        f'replace_defaults = true\n[[feed]]\nname = "Loopback Wire"\nurl = "{feed_url}"\n'
    )
    return cfg


def _env(tmp_path: Path, token: str, api_base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIEFBOT_", "DISCORD_"))}
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        DISCORD_TOKEN=token,
        DISCORD_API_BASE=api_base,
    )
    return env


class Run:
    """A ``briefbot run`` process; its stderr is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._reader = asyncio.create_task(self._read(proc.stderr))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode())

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    async def until(self, what: str, check: Callable[[], bool]) -> None:
        for _ in range(400):
            if check():
                return
            if self.proc.returncode is not None:
                break
            await asyncio.sleep(0.025)
        await self.stop(signal.SIGKILL)
        raise AssertionError(f"{what} did not happen; stderr:\n{self.stderr}")

    async def running(self) -> None:
        """Until it says it runs (its SIGINT handler is installed by then)."""
        await self.until("briefbot: running", lambda: "briefbot: running;" in self.stderr)

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), timeout=20)
        await asyncio.wait_for(self._reader, timeout=5)
        return self.stderr


async def _start(cfg: Path, env: dict[str, str]) -> Run:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(cfg),
        "run",
        env=env,
        cwd=cfg.parent,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return Run(proc)


def _puts(fake: FakeDiscord) -> list[object]:
    return fake.requests("PUT", rf"/applications/{fake.application_id}/commands")


async def test_run_connects_through_the_api_base_and_syncs_only_once(
    loopback_discord: FakeDiscord, feed_url: str, tmp_path: Path
) -> None:
    fake = loopback_discord
    cfg = _config(tmp_path, feed_url)
    env = _env(tmp_path, fake.token, fake.api_base)

    run = await _start(cfg, env)
    await run.running()
    await run.until("IDENTIFY at the fake", lambda: len(fake.identify_log) == 1)
    (identify,) = fake.identify_log
    assert identify["d"]["token"] == fake.token
    assert identify["shard"] == (0, 1)
    # REST (login, the gateway URL) came to the fake's API base
    assert [r.status for r in fake.requests("GET", r"/users/@me")] == [200]
    assert fake.requests("GET", r"/gateway")
    (put,) = _puts(fake)
    assert put.status == 200
    assert "brief" in [c["name"] for c in put.json]
    # connected: READY and the GUILD_CREATEs went out, and the bot heartbeats
    await fake.wait_for_gateway(op=1, timeout=10)
    err = await run.stop()
    assert run.proc.returncode == 0, err
    assert "briefbot: stopped" in err
    assert "Traceback" not in err
    assert (tmp_path / "data" / "discord-commands.json").is_file()

    # a second start, same commands: connects again, does not sync again
    run = await _start(cfg, env)
    await run.running()
    await run.until("the second IDENTIFY", lambda: len(fake.identify_log) == 2)
    err = await run.stop()
    assert run.proc.returncode == 0, err
    assert "Traceback" not in err
    assert len(_puts(fake)) == 1
    assert len(fake.requests("GET", r"/users/@me")) == 2


async def test_a_bad_token_is_one_line_and_exit_status_2(
    loopback_discord: FakeDiscord,
    feed_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In this process (a thread with its own event loop, as the fake Discord serves on
    this one): the command stops by itself, so no process is needed to signal it."""
    fake = loopback_discord
    cfg = _config(tmp_path, feed_url)
    # the command points discord.py's process-wide defaults at the API base: restored
    # after the test, as a process would drop them
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    fresh_env(
        monkeypatch, tmp_path, DISCORD_TOKEN="not-the-bot-token", DISCORD_API_BASE=fake.api_base
    )
    result = await asyncio.wait_for(
        asyncio.to_thread(run_cli, ["--config", str(cfg), "run"], capsys), timeout=30
    )  # it stops by itself
    err = result.stderr
    assert result.returncode == 2, err
    assert [r.status for r in fake.requests("GET", r"/users/@me")] == [401]
    assert "Traceback" not in err
    refused = [line for line in err.splitlines() if "refused" in line]
    assert len(refused) == 1, err
    assert refused[0].startswith("briefbot: ")
    assert "Discord refused the token: set DISCORD_TOKEN" in refused[0]
    assert not fake.identify_log
    assert not _puts(fake)
