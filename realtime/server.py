"""The hub's Socket.IO server, mounted on an aiohttp application."""

from __future__ import annotations

import socketio
from aiohttp import web

from realtime.engine import HubSocketServer
from realtime.fastpath import BroadcastManager
from realtime.namespace import AuthenticatedNamespace


def create_socket_server(*, jwt_secret: str) -> socketio.AsyncServer:
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


def mount(server: socketio.AsyncServer, app: web.Application) -> None:
    server.attach(app, socketio_path="socket.io")
