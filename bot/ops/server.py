"""``briefbot run``'s operations endpoint (``[metrics] port``; 0 = off).

- ``GET /healthz``: ``200`` with ``{"status": "ok", ...}`` while the last poll tick and
  every enabled chat adapter's connection are recent, else ``503`` with
  ``{"status": "unhealthy", "reasons": [...]}`` (one readable reason per problem);
- ``GET /metrics``: the Prometheus text exposition of :class:`~bot.ops.monitor.Monitor`.

aiohttp serves it on the bot's own event loop, so a blocked loop also shows as a
health check that does not answer (which is what a container runtime should see).
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.errors import ConfigError
from bot.ops.monitor import Monitor

log = logging.getLogger(__name__)


class OpsServer:
    def __init__(self, monitor: Monitor, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.monitor = monitor
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; ``port=0`` here picks a free port (tests), see :attr:`port`.
        ConfigError (one line) if the address cannot be used."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as err:
            await runner.cleanup()
            raise ConfigError(
                f"cannot serve /healthz and /metrics on {self.host}:{self.port} "
                f"({err.strerror or err}): choose another port",
                key="metrics.port",
            ) from None
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self.monitor.health()
        body = {
            "status": "ok" if health.ok else "unhealthy",
            "reasons": list(health.reasons),
            "last_poll_seconds_ago": (
                None if health.last_poll_age is None else round(health.last_poll_age, 1)
            ),
            "adapters": health.adapters,
        }
        return web.json_response(body, status=200 if health.ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.monitor.metrics_text())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


__all__ = ["OpsServer"]
