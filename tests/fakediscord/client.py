"""Pointing the real discord.py at a base URL (the fake, or a REST proxy).

discord.py has no base-URL option. Every REST call, webhook and interaction callback
builds its URL from the class attribute ``discord.http.Route.BASE`` (discord.py's own
``_set_api_version`` rewrites it), so setting it redirects all REST traffic.

The gateway URL comes from two places:
* ``AutoShardedClient`` without ``shard_count`` asks ``GET /gateway/bot`` (so from the
  REST base) and later resumes at READY's ``resume_gateway_url``;
* ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` is used by a plain ``Client``,
  by ``AutoShardedClient(shard_count=N)``, and after a non-resumable INVALID_SESSION.
So both must be set. Production code honouring ``DISCORD_API_BASE`` should set
``Route.BASE`` and, when it is not Discord's, read ``GET {base}/gateway`` (``{"url": ...}``)
and set ``DEFAULT_GATEWAY`` from it (a REST-only proxy like nirn-proxy passes that call
through and returns Discord's real gateway).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

#: the type of the ``run_client`` fixture: ``await run_client(client, ready_timeout=10.0)``
RunClient = Callable[..., Awaitable[discord.Client]]


@contextlib.contextmanager
def redirect_discord(api_base: str, gateway_url: str | None = None) -> Iterator[None]:
    """Within the block, discord.py's REST goes to ``api_base`` (which includes
    ``/api/v10``) and its default gateway is ``gateway_url``. Restored afterwards."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_base.rstrip("/")
    if gateway_url is not None:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE = old_base
        DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


# replaces a client's before_identify_hook, which discord.py calls with initial by keyword
async def _no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
    return None


def fast_identify(client: discord.Client) -> discord.Client:
    """Drop discord.py's 5 s pause before every non-first IDENTIFY (its default
    ``before_identify_hook`` honours max_concurrency=1 on real Discord). Tests only."""
    client.before_identify_hook = _no_identify_pause  # type: ignore[method-assign]
    return client


def fast_client_options(**overrides: Any) -> dict[str, Any]:
    """Options that keep a client fast against the fake: guild_ready_timeout 0.2 s."""
    options: dict[str, Any] = {"guild_ready_timeout": 0.2}
    options.update(overrides)
    return options
