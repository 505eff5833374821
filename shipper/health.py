"""The operator's view: /healthz, /readyz and /metrics over HTTP (aiohttp).

- ``/healthz``: the event loop answers, so the process is alive.
- ``/readyz``: the config is loaded, every source is watched, and no stream has been
  failing to deliver for longer than ``READY_FAILURE_GRACE`` seconds.
- ``/metrics``: the Prometheus text format, from :mod:`shipper.metrics`.

Port 0 lets the system choose a free port; the address actually bound is logged as
``health.listening``, so whoever started the process can find it.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper import metrics, telemetry

READY_FAILURE_GRACE = 120.0


class HealthServer:
    """Serves the three endpoints; ``readiness`` returns the reasons it is not ready."""

    def __init__(self, listen: str, readiness: Callable[[], list[str]]) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.readiness = readiness
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for address in self._runner.addresses:
            host, port = address[0], address[1]
            self.port = port
            telemetry.health_listening(host, port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        problems = self.readiness()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ready\n")

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
