"""Fixtures: ``fake_discord`` (a running FakeDiscord, discord.py redirected to it) and
``run_client`` (log a real discord.py client in to it and wait for READY).

Register with ``pytest_plugins = ["fakediscord.pytest_plugin"]`` (in ``tests/conftest.py``
or a test module).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest

from .client import RunClient, fast_identify, redirect_discord
from .server import FakeDiscord


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A FakeDiscord on 127.0.0.1: 2 shards, 2 guilds (one per shard), heartbeat 1 s.
    discord.py's ``Route.BASE`` and ``DEFAULT_GATEWAY`` point at it during the test.
    Fails the test if a fake route handler crashed."""
    fake = FakeDiscord(shard_count=2, heartbeat_interval=1000)
    await fake.start()
    try:
        with redirect_discord(fake.api_base, fake.gateway_url):
            yield fake
    finally:
        await fake.close()
    assert not fake.internal_errors, "fake Discord crashed:\n" + "\n".join(fake.internal_errors)


@pytest.fixture
async def run_client(fake_discord: FakeDiscord) -> AsyncIterator[RunClient]:
    """``await run_client(client, ready_timeout=10.0)``: login + connect the client to the
    fake (in a background task) and wait until discord.py dispatched ``ready``. Pause
    before IDENTIFY is removed (``fast_identify``). At teardown every client is closed
    and an exception that ended ``connect()`` fails the test."""
    started: list[tuple[discord.Client, asyncio.Task[None] | None]] = []

    async def run(client: discord.Client, *, ready_timeout: float = 10.0) -> discord.Client:
        fast_identify(client)
        started.append((client, None))
        await client.login(fake_discord.token)
        task = asyncio.create_task(client.connect(reconnect=True), name="discord-connect")
        started[-1] = (client, task)
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            if task in done:
                task.result()  # raise what ended connect()
            raise AssertionError(f"client not ready after {ready_timeout}s")
        return client

    yield run
    errors: list[BaseException] = []
    for client, task in reversed(started):
        await client.close()
        if task is None:
            continue
        try:
            await asyncio.wait_for(task, timeout=5.0)
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
