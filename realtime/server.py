"""The hub's Socket.IO server, mounted on an aiohttp application, and the site that serves it
(websocket connects below aiohttp, everything else through it: `realtime.websocket`)."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web

from realtime.engine import HubSocketServer
from realtime.fastpath import BroadcastManager
from realtime.namespace import AuthenticatedNamespace
from realtime.websocket import Entrance, FrontDoor, close_all

SOCKET_PATH = "socket.io"
SOCKET_SERVER = web.AppKey("socket_server", HubSocketServer)


def create_socket_server(*, jwt_secret: str) -> HubSocketServer:
    server = HubSocketServer(
        async_mode="aiohttp",
        client_manager=BroadcastManager(),
        cors_allowed_origins="*",
        ping_interval=20,
        ping_timeout=20,
        max_http_buffer_size=1_000_000,
    )
    # python-socketio always accepts the default namespace; make it authenticate too.
    server.register_namespace(AuthenticatedNamespace("/", jwt_secret=jwt_secret))
    return server


def mount(server: HubSocketServer, app: web.Application) -> None:
    server.attach(app, socketio_path=SOCKET_PATH)
    app[SOCKET_SERVER] = server

    async def close_websockets(_: web.Application) -> None:
        await close_all(server.websockets)  # aiohttp closes only the connections it serves

    app.on_shutdown.append(close_websockets)


class HubSite(web.BaseSite):
    """A TCP site whose connections start at the front door (`realtime.websocket`)."""

    __slots__ = ("_host", "_port")

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        super().__init__(runner, backlog=1024)
        self._host, self._port = host, port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        http = self._runner.server
        assert http is not None and isinstance(self._runner, web.AppRunner)
        sio = self._runner.app[SOCKET_SERVER]
        entrance = Entrance(
            path=f"/{SOCKET_PATH}/",
            max_message=sio.eio.max_http_buffer_size,
            connect=sio.eio.handle_request,
            connections=sio.websockets,
        )
        self._server = await asyncio.get_running_loop().create_server(
            lambda: FrontDoor(http, entrance), self._host, self._port, backlog=self._backlog
        )


def run(app: web.Application, host: str, port: int, *, shutdown_timeout: float = 10) -> None:
    """Serve `app` on a HubSite until SIGINT or SIGTERM, then shut down gracefully."""
    import uvloop

    async def serve() -> None:
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            await HubSite(runner, host, port).start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
