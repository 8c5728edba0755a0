"""Websockets served below aiohttp, once accepted.

A Socket.IO client that opens a websocket straight away (`transport=websocket`, the usual
choice of native and server-side clients) is let in by `realtime.front_door` and handled here,
by one small asyncio protocol per connection: it answers the upgrade, parses the client's
frames itself (`realtime.frame_reader`) and hands whole messages to engine.io. aiohttp's
request, parser, handler task and WebSocketResponse (about 11 KB per idle connection) are
never built for it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from engineio.async_socket import AsyncSocket

from realtime._socketio import NotEngineIO, close_socket, receive
from realtime.drain import Drain
from realtime.frame_reader import UNSUPPORTED_DATA, FrameReader, WebSocketState

log = logging.getLogger(__name__)

RAW_CONNECTION = "pawhub.websocket"  # the environ key engine.io's websocket driver looks for
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Messages waiting for engine.io, in number and in bytes: stop reading at either bound and
# start again below both (a connection holds at most about two messages' bytes while paused).
_PAUSE_AT, _RESUME_AT = 64, 16
_PAUSE_BYTES, _RESUME_BYTES = 1 << 20, 1 << 18

# Simultaneous connections one peer address may hold (0: no bound). High enough for many
# clients behind one NAT; a hub behind a proxy sees every client at the proxy's address.
MAX_CONNECTIONS_PER_IP = 256
HEAD_TIMEOUT_S = 10.0  # time a new connection has to send its whole first request head

# engine.io's `handle_request` for a websocket served here: None once accepted, else the
# refusal as (HTTP status, body).
Connect = Callable[[dict[str, Any]], Awaitable[tuple[str, bytes] | None]]


@dataclass(frozen=True, slots=True)
class Entrance:
    """What the front door needs to serve a websocket itself, and its bounds."""

    path: str  # Engine.IO's path, "/socket.io/"
    max_message: int
    connect: Connect
    connections: set[WebSocketConnection]  # the open ones, for shutdown
    max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP
    head_timeout: float = HEAD_TIMEOUT_S
    drain: Drain = field(default_factory=Drain)  # the replica's, once it is shutting down
    _per_peer: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def admit(self, peer: str) -> bool:
        """Count a new connection from `peer`, unless it already holds its share."""
        held = self._per_peer.get(peer, 0)
        if held >= self.max_connections_per_ip:
            return False
        self._per_peer[peer] = held + 1
        return True

    def release(self, peer: str) -> None:
        """A connection `admit` counted has ended."""
        if held := self._per_peer[peer] - 1:
            self._per_peer[peer] = held
        else:
            del self._per_peer[peer]


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def switching_protocols(key: str) -> bytes:
    """The answer to a websocket upgrade whose Sec-WebSocket-Key is `key`."""
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n"
    )


class WebSocketConnection(FrameReader):
    """One accepted websocket: whole messages to its engine.io socket, in order."""

    __slots__ = ("_entrance", "_inbox", "_inbox_bytes", "_paused", "_peer", "_reader", "socket")

    def __init__(
        self, transport: asyncio.Transport, entrance: Entrance, peer: str | None = None
    ) -> None:
        super().__init__(transport, entrance.max_message)
        self.state = WebSocketState.CONNECTING
        self.socket: AsyncSocket | None = None  # set by `accept`
        self._entrance = entrance
        self._peer = peer  # the address `entrance` counts this connection under, if it does
        self._inbox: deque[str | bytes] | None = None  # only while messages wait
        self._inbox_bytes = 0  # their size (characters of text)
        self._reader: asyncio.Task[None] | None = None  # only while messages are handed over
        self._paused = False

    def accept(self, socket: AsyncSocket) -> None:
        """Engine.IO accepted the connection and its upgrade is answered: read its frames."""
        self.socket = socket
        self.state = WebSocketState.CONNECTED
        self._entrance.connections.add(self)
        if self._buffer:  # frames that came with or right after the upgrade request
            self.data_received(b"")

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if self.state is not WebSocketState.CONNECTING:
            super().data_received(data)
        elif len(self._buffer) + len(data) > self._max_message:
            self.transport.abort()  # sent more than a message before engine.io accepted it
        else:
            self._keep(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._entrance.connections.discard(self)
        if self._peer is not None:
            self._entrance.release(self._peer)
        socket = self.socket
        if socket is not None and not socket.closed:
            keep_running(close_socket(socket))

    # messages

    def message_received(self, message: str | bytes) -> None:
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        self._inbox_bytes += len(message)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._hand_over())
        if not self._paused and (
            len(self._inbox) >= _PAUSE_AT or self._inbox_bytes >= _PAUSE_BYTES
        ):
            self._paused = True
            self.transport.pause_reading()

    async def _hand_over(self) -> None:
        """Give waiting messages to engine.io one by one; exists only while some wait."""
        socket, inbox = self.socket, self._inbox
        assert socket is not None and inbox is not None
        try:
            while inbox:
                message = inbox.popleft()
                self._inbox_bytes -= len(message)
                try:
                    received = await receive(socket, message)
                except NotEngineIO:  # the reference server closes too
                    log.info("closing a websocket: a message that is not an Engine.IO packet")
                    self.close(UNSUPPORTED_DATA, "not an Engine.IO packet")
                    return
                if not received:  # the socket is closed
                    self.close()
                    return
                if (
                    self._paused
                    and len(inbox) <= _RESUME_AT
                    and self._inbox_bytes <= _RESUME_BYTES
                    and self.state is not WebSocketState.CLOSING
                ):
                    self._paused = False
                    self.transport.resume_reading()
        finally:
            self._reader = None
            if not inbox or self.state is WebSocketState.CLOSING:
                self._inbox, self._inbox_bytes = None, 0


_background: set[asyncio.Task[Any]] = set()  # closes and connects under way


def keep_running(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run `coroutine` as a task nobody awaits, holding it until it is done."""
    task = asyncio.ensure_future(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
