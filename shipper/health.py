"""The operator's view: /healthz, /readyz and /metrics over HTTP (aiohttp).

- ``/healthz``: the event loop answers, so the process is alive.
- ``/readyz``: the config is loaded, every source is watched, and no stream has been
  failing to deliver for longer than ``READY_FAILURE_GRACE`` seconds.
- ``/metrics``: the Prometheus text format, from :mod:`shipper.metrics`.

Port 0 lets the system choose a free port; the address actually bound is logged as
``health.listening``, so whoever started the process can find it.

Three fixed paths need no web application: aiohttp's low-level server answers them
from a table.  ``aiohttp.web`` would also bring its router, file responses (and the
system's MIME types) and the rest, ~1.3 MiB of a sidecar's resident memory.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from aiohttp.web_request import BaseRequest
from aiohttp.web_response import Response
from aiohttp.web_server import Server
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shipper import logs, metrics, telemetry

READY_FAILURE_GRACE = 120.0
# How long open connections get to finish when the server stops.
_SHUTDOWN_TIMEOUT = 5.0


class HealthServer:
    """Serves the three endpoints; ``readiness`` returns the reasons it is not ready."""

    def __init__(self, listen: str, readiness: Callable[[], list[str]]) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.readiness = readiness
        self._routes: dict[str, Callable[[], Awaitable[Response]]] = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
        }
        self._server: Server | None = None
        self._listener: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = Server(self._handle, access_log=None)
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            self._server, self.host or None, self.port, reuse_address=True
        )
        for sock in self._listener.sockets:
            host, port = sock.getsockname()[:2]
            self.port = port
            telemetry.health_listening(host, port)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._server is not None:
            self._server.pre_shutdown()
            await self._server.shutdown(_SHUTDOWN_TIMEOUT)
        if self._listener is not None:
            await self._listener.wait_closed()

    async def _handle(self, request: BaseRequest) -> Response:
        route = self._routes.get(request.path)
        if route is None:
            return Response(status=404, text="not found\n")
        if request.method not in ("GET", "HEAD"):
            return Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})
        return await route()

    async def _healthz(self) -> Response:
        return Response(text="ok\n")

    async def _readyz(self) -> Response:
        problems = self.readiness()
        if problems:  # masked: a reason may name a path (a folder named after a user)
            return Response(status=503, text="".join(f"{logs.mask(p)}\n" for p in problems))
        return Response(text="ready\n")

    async def _metrics(self) -> Response:
        body = generate_latest(metrics.REGISTRY)
        # Label values (file paths) masked like our own logs.
        body = _LABEL_VALUE.sub(_masked_label, body.decode()).encode()
        return Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# A label's value in the exposition format: ="…" with \\, \" and \n escapes.
_LABEL_VALUE = re.compile(r'="((?:[^"\\]|\\.)*)"')


def _masked_label(match: re.Match[str]) -> str:
    return f'="{logs.mask(match.group(1))}"'
