"""Fixtures: ``fake_slack`` (a running FakeSlack; ``SLACK_API_BASE`` points at it) and
``slack_env`` (the real app and Bolt app on loopback, against it). Register with
``pytest_plugins = ["fakeslack.pytest_plugin"]`` in a test module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .harness import SlackEnv, start_slack_env, stop_slack_env
from .server import FakeSlack


@pytest.fixture
async def fake_slack(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    monkeypatch.setenv("SLACK_API_BASE", fake.api_base)
    try:
        yield fake
    finally:
        await fake.close()
    assert not fake.errors, "fake Slack crashed:\n" + "\n".join(fake.errors)


@pytest.fixture
async def slack_env(fake_slack: FakeSlack, tmp_path: Path) -> AsyncIterator[SlackEnv]:
    env = await start_slack_env(fake_slack, tmp_path)
    try:
        yield env
    finally:
        await stop_slack_env(env)
    assert not fake_slack.invalid, f"Slack would refuse: {fake_slack.invalid}"
