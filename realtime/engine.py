"""A lean Engine.IO websocket transport under python-socketio.

engine.io gives each websocket connection a packet queue, a writer task parked on it under
`wait_for`, and a reader that wraps every receive in a fresh task, also under `wait_for`: three
tasks, their timers and a queue per idle connection, most of the ~36 KB a connection cost.
Here sending is writing: once a socket speaks websocket, its queue writes each packet straight
to the transport as a WebSocket frame, in the order packets are sent, and holds nothing. Until
then (long-polling, the browsers' first transport) the queue is an ordinary queue for
engine.io's polling path. Reading is done by `realtime.websocket` for a client that connects
with a websocket (no task at all while it is idle), or by aiohttp, in the request's own task,
for a long-polling client that upgrades.

A client that does not read (its unsent bytes pass `SLOW_CONSUMER_BYTES`) is disconnected
rather than buffered without bound; it reconnects and recovers what it missed by seq.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import engineio
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.web import WebSocketResponse
from engineio import packet as eio_packet

from realtime import _socketio as internals
from realtime.frames import packet_frame
from realtime.websocket import (
    RAW_CONNECTION,
    WebSocketConnection,
    keep_running,
    switching_protocols,
)

log = logging.getLogger(__name__)

SLOW_CONSUMER_BYTES = 4 * 1024 * 1024

_NOT_ENGINE_IO = b"not an Engine.IO packet"
_NOTHING_QUEUED: deque[Any] = deque(maxlen=0)  # shared by every queue that never queued
# What python-socketio keeps of a websocket's upgrade request once it is connected.
_KEPT_ENVIRON = ("REMOTE_ADDR", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "QUERY_STRING")


class DirectQueue:
    """engine.io's per-socket packet queue (`asyncio.Queue`'s methods that engine.io uses),
    which becomes a direct writer once its socket is attached to a websocket."""

    __slots__ = ("_close", "_drained", "_getter", "_packets", "_transport")

    def __init__(self) -> None:
        # Only a socket on long-polling (or one not yet attached) queues anything.
        self._packets: deque[eio_packet.Packet | None] = _NOTHING_QUEUED
        self._getter: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self._transport: asyncio.WriteTransport | None = None
        self._close: Callable[[], None] | None = None

    # writing

    def attach(
        self, transport: asyncio.WriteTransport, close: Callable[[], None], head: bytes = b""
    ) -> None:
        """From now on, write packets as WebSocket frames to `transport` (a websocket's,
        after its upgrade); `close` ends the websocket. `head` (the upgrade's answer, if not
        sent yet) and whatever waited go first, in one write."""
        self._transport, self._close = transport, close
        waited = [packet_frame(packet) for packet in self._packets if packet is not None]
        self._write(b"".join((head, *waited)))
        self._packets = _NOTHING_QUEUED
        self._wake_drained()

    def write_frames(self, frames: bytes, packets: Iterable[eio_packet.Packet]) -> None:
        """Send prebuilt frames if attached (one write), else queue their packets."""
        if self._transport is not None:
            self._write(frames)
        else:
            for packet in packets:
                self.put_nowait(packet)

    def _write(self, frames: bytes) -> None:
        transport = self._transport
        assert transport is not None
        if transport.is_closing():
            return
        if frames:
            transport.write(frames)
        if transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES:
            log.warning(
                "disconnecting a client that stopped reading (%d bytes unsent)",
                transport.get_write_buffer_size(),
            )
            transport.abort()

    # asyncio.Queue's interface, as engine.io uses it

    def put_nowait(self, packet: eio_packet.Packet | None) -> None:
        if self._close is None:
            if self._packets is _NOTHING_QUEUED:
                self._packets = deque()
            self._packets.append(packet)
            if self._getter is not None and not self._getter.done():
                self._getter.set_result(None)
        elif packet is None:  # engine.io's "stop writing"
            self._close()
        else:
            self._write(packet_frame(packet))
            if packet.packet_type == eio_packet.CLOSE:
                self._close()

    async def put(self, packet: eio_packet.Packet | None) -> None:
        self.put_nowait(packet)

    def get_nowait(self) -> eio_packet.Packet | None:
        if not self._packets:
            raise asyncio.QueueEmpty
        packet = self._packets.popleft()
        if not self._packets:
            self._wake_drained()
        return packet

    async def get(self) -> eio_packet.Packet | None:
        while not self._packets:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.get_nowait()

    def empty(self) -> bool:
        return not self._packets

    def qsize(self) -> int:
        return len(self._packets)

    def task_done(self) -> None:
        """Nothing to count: a packet taken is a packet handled."""

    async def join(self) -> None:
        """Wait until every queued packet has been taken (or written)."""
        while self._packets:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    def _wake_drained(self) -> None:
        if self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None


class LeanWebSocket:
    """engine.io's websocket driver (`replace_drivers`): runs the connection in the request's
    own task, with no writer task and no per-receive task."""

    def __init__(self, handler: Any, server: engineio.AsyncServer) -> None:
        self.socket = internals.socket_of(handler)
        self.server = server

    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse | None:
        # The same dict is python-socketio's record of the connection: keep only what a
        # handler might read, not the parsed request and every header.
        kept = {key: environ[key] for key in _KEPT_ENVIRON if key in environ}
        socket = self.socket
        raw: WebSocketConnection | None = environ.get(RAW_CONNECTION)
        if raw is not None:  # served below aiohttp (realtime.websocket): it reads; we attach
            key = environ["HTTP_SEC_WEBSOCKET_KEY"]
            environ.clear()
            environ.update(kept)
            if raw.transport.is_closing():  # the client left while it was being connected
                await internals.close_socket(socket)
                return None
            internals.mark_websocket(socket)
            # The upgrade's answer and engine.io's OPEN packet: one write, one system call.
            internals.queue_of(socket).attach(raw.transport, raw.close, switching_protocols(key))
            raw.accept(socket)
            return None
        # Uncompressed: per-message deflate would cost a zlib pass per recipient (and Node's
        # socket.io disables it too).
        websocket = WebSocketResponse(max_msg_size=self.server.max_http_buffer_size, compress=False)
        request = environ["aiohttp.request"]
        await websocket.prepare(request)
        environ.clear()
        environ.update(kept)
        polling = internals.state(socket) is internals.EngineState.POLLING
        if polling and not await self._upgrade(websocket):
            return websocket
        internals.mark_websocket(socket)
        internals.queue_of(socket).attach(request.transport, partial(_close_later, websocket))
        async for message in websocket:  # ends on close, error, or an oversized message
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                if not await internals.receive(socket, message.data):
                    break
            except internals.NotEngineIO as error:
                log.info("closing a websocket: not an Engine.IO packet (%s)", error)
                await websocket.close(code=WSCloseCode.UNSUPPORTED_DATA, message=_NOT_ENGINE_IO)
                break
        await internals.close_socket(socket)
        return websocket

    async def _upgrade(self, websocket: WebSocketResponse) -> bool:
        """Engine.IO's upgrade from long-polling: "2probe" -> "3probe", then "5"."""
        socket = self.socket
        with internals.upgrading(socket):
            probe = await websocket.receive()
            if probe.type is not WSMsgType.TEXT or probe.data != "2probe":
                return False
            await websocket.send_str(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            # Ends the open poll.
            internals.queue_of(socket).put_nowait(eio_packet.Packet(eio_packet.NOOP))
            upgrade = await websocket.receive()
            return upgrade.type is WSMsgType.TEXT and upgrade.data == "5"


def _translate(aiohttp_translate: Callable[[Any], dict[str, Any]], request: Any) -> dict[str, Any]:
    return request if isinstance(request, dict) else aiohttp_translate(request)


def _respond(
    aiohttp_respond: Callable[..., Any],
    status: str,
    headers: list[tuple[str, str]],
    payload: bytes,
    environ: dict[str, Any],
) -> Any:
    if RAW_CONNECTION in environ:
        return status, payload
    return aiohttp_respond(status, headers, payload, environ)


def _close_later(websocket: WebSocketResponse) -> None:
    keep_running(websocket.close())


class LeanEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    def create_queue(self, *args: Any, **kwargs: Any) -> DirectQueue:
        return DirectQueue()

    def start_background_task(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        # engine.io parks a task per socket sleeping until its next ping; a timer does.
        socket = internals.pinged_socket(target)
        if socket is not None:
            asyncio.get_running_loop().call_later(self.ping_interval, internals.send_ping, socket)
            return None
        return super().start_background_task(target, *args, **kwargs)


def use_lean_transport(eio: engineio.AsyncServer) -> None:
    """Serve `eio`'s websockets with `LeanWebSocket`; its `handle_request` also takes the
    environ of a websocket served below aiohttp, and returns its refusals as (status, body)."""
    internals.replace_drivers(
        eio, websocket=LeanWebSocket, translate_request=_translate, make_response=_respond
    )
