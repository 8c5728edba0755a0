"""The hub's Socket.IO server, mounted on an aiohttp application, the site that serves it
(websocket connects below aiohttp, everything else through it: `realtime.front_door`), and the
process's run: serve until SIGTERM or SIGINT, then drain (`realtime.drain`) and stop."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal

from aiohttp import web
from aiohttp.typedefs import Handler

from realtime.drain import DRAIN_BOUND_S, STOPPING_S, close_transports, drain, draining_response
from realtime.fastpath import BroadcastManager
from realtime.front_door import FrontDoor
from realtime.namespace import AuthenticatedNamespace
from realtime.socket_server import HubSocketServer
from realtime.websocket import MAX_CONNECTIONS_PER_IP, Entrance

log = logging.getLogger(__name__)

SOCKET_PATH = "socket.io"
SOCKET_SERVER = web.AppKey("socket_server", HubSocketServer)
# How long aiohttp keeps an idle kept-alive connection (polling, /healthz); its default under
# AppRunner is an hour, which lets a client hold connections that send nothing.
KEEPALIVE_TIMEOUT_S = 75
_MARGIN_S = 0.5  # of the drain bound, for the event loop to close once the services stopped


def create_socket_server(*, jwt_secret: str, write_delay_s: float = 0.0) -> HubSocketServer:
    server = HubSocketServer(
        async_mode="aiohttp",
        client_manager=BroadcastManager(write_delay_s),
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
    socket_path = f"/{SOCKET_PATH}/"

    @web.middleware
    async def refuse_while_draining(request: web.Request, handler: Handler) -> web.StreamResponse:
        # A kept-alive connection (a balancer's) bypasses the front door's refusal.
        state = server.drain
        if state.refusing and state.refuses(request.path, socket_path, "sid" in request.query):
            return draining_response()
        return await handler(request)

    async def close_connections(_: web.Application) -> None:
        # What the drain left, or everything when the app stops without one (tests); aiohttp
        # closes only the connections it serves, and not as a dropped transport.
        await close_transports(server)

    app.middlewares.append(refuse_while_draining)
    app.on_shutdown.append(close_connections)


class HubSite(web.BaseSite):
    """A TCP site whose connections start at the front door (`realtime.front_door`)."""

    __slots__ = ("_host", "_max_connections_per_ip", "_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP,
    ) -> None:
        super().__init__(runner, backlog=1024)
        self._host, self._port = host, port
        self._max_connections_per_ip = max_connections_per_ip

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
            max_connections_per_ip=self._max_connections_per_ip,
            drain=sio.drain,
        )
        self._server = await asyncio.get_running_loop().create_server(
            lambda: FrontDoor(http, entrance), self._host, self._port, backlog=self._backlog
        )


async def _cleaned_up(runner: web.AppRunner, by: float | None) -> bool:
    """Stop the site, the connections and the app's services, by `by` (the loop's clock)."""
    try:
        async with asyncio.timeout_at(by):
            await runner.cleanup()
    except TimeoutError:
        log.error("the hub's services did not stop within %.0f s of the signal", DRAIN_BOUND_S)
        return False
    log.info("hub stopped")
    return True


def run(
    app: web.Application,
    host: str,
    port: int,
    *,
    drain_notice_s: float = 0,
    max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP,
) -> int:
    """Serve `app` on a HubSite until SIGINT or SIGTERM, then drain its sockets (`drain_notice_s`
    seconds after /healthz starts reporting it, see `realtime.drain`) and stop its services,
    all within DRAIN_BOUND_S. The exit status: 0, or 1 if the services did not stop in time (a
    watchdog exits with 1 and every thread's stack if even that hangs)."""
    import uvloop

    async def serve() -> int:
        runner = web.AppRunner(
            app,
            handle_signals=False,
            shutdown_timeout=STOPPING_S / 2,  # for requests still running, of the services' time
            keepalive_timeout=KEEPALIVE_TIMEOUT_S,
        )
        await runner.setup()
        loop = asyncio.get_running_loop()
        stopped_by: float | None = None
        try:
            site = HubSite(runner, host, port, max_connections_per_ip=max_connections_per_ip)
            await site.start()
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await stop.wait()
            faulthandler.dump_traceback_later(DRAIN_BOUND_S, exit=True)
            stopped_by = loop.time() + DRAIN_BOUND_S - _MARGIN_S
            deadline = stopped_by - STOPPING_S
            await drain(app[SOCKET_SERVER], notice_s=drain_notice_s, deadline=deadline)
        finally:
            stopped = await _cleaned_up(runner, stopped_by)
        return 0 if stopped else 1

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve())
