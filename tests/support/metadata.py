"""Small fake AWS metadata servers on 127.0.0.1: IMDSv2 and the ECS task metadata v4.

The shipper finds them as it finds the real ones: through
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` and ``ECS_CONTAINER_METADATA_URI_V4``.  Each
server runs in a thread with its own event loop and records the requests it got.

- IMDSv2 answers ``PUT /latest/api/token`` (it requires the TTL header) with a
  session token, and ``GET /latest/meta-data/instance-id`` and
  ``.../placement/availability-zone/`` only when that token is sent back (401
  otherwise), as the real service does with IMDSv1 turned off.
- The ECS endpoint answers ``GET {base}`` with the container's document (``Name``)
  and ``GET {base}/task`` with the task's (``TaskARN``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

IMDS_TOKEN = "AQAEAFake-session-token=="


class _LoopServer:
    """An aiohttp application served on 127.0.0.1:0 from a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.url = ""
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app, access_log=None)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class FakeImds(_LoopServer):
    def __init__(self, instance_id: str, zone: str = "us-east-1a") -> None:
        self.instance_id = instance_id
        self.zone = zone
        app = web.Application()
        app.router.add_put("/latest/api/token", self._token)
        app.router.add_get("/latest/meta-data/instance-id", self._instance_id)
        app.router.add_get("/latest/meta-data/placement/availability-zone/", self._zone)
        super().__init__(app)

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if "X-aws-ec2-metadata-token-ttl-seconds" not in request.headers:
            return web.Response(status=400)
        return web.Response(text=IMDS_TOKEN)

    async def _instance_id(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if request.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return web.Response(status=401)
        return web.Response(text=self.instance_id)

    async def _zone(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if request.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            return web.Response(status=401)
        return web.Response(text=self.zone)


class FakeEcsMetadata(_LoopServer):
    """The v4 endpoint of one container; :attr:`base` is ECS_CONTAINER_METADATA_URI_V4."""

    PREFIX = "/v4/5f1a0b3c-container"

    def __init__(self, task_arn: str, container: str) -> None:
        self.task_arn = task_arn
        self.container = container
        app = web.Application()
        app.router.add_get(self.PREFIX, self._container)
        app.router.add_get(self.PREFIX + "/task", self._task)
        super().__init__(app)

    @property
    def base(self) -> str:
        return self.url + self.PREFIX

    async def _container(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        return web.json_response({"DockerId": "ab12", "Name": self.container})

    async def _task(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        return web.json_response({"Cluster": "default", "TaskARN": self.task_arn})


@contextmanager
def running(server: _LoopServer) -> Iterator[_LoopServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
