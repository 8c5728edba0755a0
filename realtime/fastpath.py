"""The broadcast fast path: each event is encoded once, framed once as a WebSocket text frame,
and written straight to every recipient's socket.

python-socketio's manager starts a task per recipient, and engine.io then queues the packet for
a per-socket writer task that frames it again; at tens of thousands of deliveries per second
that machinery, not Python, is the limit. Here a recipient whose socket has nothing queued and
no unsent bytes gets the prebuilt frame written to its transport directly, which keeps its
packets in order (anything queued or buffered is older and goes first); any other recipient
(polling, upgrading, backed up) gets the packet put on engine.io's queue, without a task.
Emits that expect acknowledgements take python-socketio's own path.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio
from aiohttp.web import WebSocketResponse
from engineio import packet as eio_packet
from engineio.async_drivers.aiohttp import WebSocket as EngineIoWebSocket
from socketio import packet as sio_packet

log = logging.getLogger(__name__)


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 1 << 16:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class RecordingWebSocket(EngineIoWebSocket):  # type: ignore[misc]
    """engine.io's aiohttp WebSocket, remembered on its engine.io socket, and uncompressed
    (per-message deflate would cost a zlib pass per recipient; Node's socket.io disables it)."""

    async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
        request = environ["aiohttp.request"]
        self._sock = WebSocketResponse(
            max_msg_size=self.server.max_http_buffer_size, compress=False
        )
        await self._sock.prepare(request)
        self.environ = environ
        # The handler is the engine.io socket's bound `_websocket_handler`.
        self.handler.__self__.pawhub_websocket = self._sock
        await self.handler(self)
        return self._sock


class BroadcastManager(socketio.AsyncManager):  # type: ignore[misc]
    """A client manager whose emits write one prebuilt frame to every recipient, and which
    knows each client's rooms, so a disconnect costs that client's rooms rather than a scan of
    every room of the namespace."""

    def __init__(self) -> None:
        super().__init__()
        self._rooms_of: dict[tuple[str, str], set[str | None]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: str | None, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: str | None) -> None:
        super().basic_leave_room(sid, namespace, room)
        rooms = self._rooms_of.get((namespace, sid))
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[(namespace, sid)]

    def get_rooms(self, sid: str, namespace: str) -> list[str]:
        return [room for room in self._rooms_of.get((namespace, sid), ()) if room is not None]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio's own version scans a copy of every room of the namespace.
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: str | None = None,
        skip_sid: str | list[str] | None = None,
        callback: Any = None,
        to: str | None = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None or namespace not in self.rooms:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        arguments = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        encoded = self.server.packet_class(
            sio_packet.EVENT, namespace=namespace, data=[event, *arguments]
        ).encode()
        if isinstance(encoded, list):  # binary attachments: not on the fast path
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, to=to, **kwargs
            )
            return
        queued = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = text_frame(queued.encode().encode())
        skipped = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sockets = self.server.eio.sockets
        for sid, eio_sid in self.get_participants(namespace, to or room):
            if sid in skipped:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed or socket.closing:
                continue
            if not _write_now(socket, frame):
                socket.queue.put_nowait(queued)


def _write_now(socket: Any, frame: bytes) -> bool:
    """Write `frame` to the socket's transport if nothing is ahead of it; True if written."""
    websocket: WebSocketResponse | None = getattr(socket, "pawhub_websocket", None)
    if websocket is None or not socket.upgraded or not socket.queue.empty():
        return False
    writer = websocket._writer
    transport = writer.transport if writer is not None else None
    if transport is None or transport.is_closing() or transport.get_write_buffer_size():
        return False
    transport.write(frame)
    return True


def install(server: socketio.AsyncServer) -> None:
    """Give the server the fast path's WebSocket driver (its manager is set at construction)."""
    server.eio._async["websocket"] = RecordingWebSocket
