"""WebSocket connections served below aiohttp.

A Socket.IO client that opens a websocket straight away (`transport=websocket`, the usual
choice of native and server-side clients) gets its connection handled here, by one small
asyncio protocol per connection: it answers the upgrade, parses the client's frames itself
and hands whole messages to engine.io. aiohttp's request, parser, handler task and
WebSocketResponse (about 11 KB per idle connection) are never built for it. Every other
request, including a long-polling client upgrading to websocket, is handed to aiohttp as it
arrived.

`FrontDoor` is the protocol the listening socket creates: it reads the first request head and
either keeps the connection (an Engine.IO websocket connect it fully understands) or passes
the transport, and the bytes read so far, to aiohttp's request handler.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from realtime.frames import BINARY, CLOSE, PING, PONG, TEXT, close_frame, frame

log = logging.getLogger(__name__)

RAW_CONNECTION = "pawhub.websocket"  # the environ key engine.io's websocket driver looks for
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEAD = 16 * 1024  # request heads past this go to aiohttp, which refuses them
_UNDECIDED_S = 10.0  # a connection that sends no complete head by then goes to aiohttp
_PAUSE_AT, _RESUME_AT = 64, 16  # messages waiting for engine.io: stop and restart reading

_VERSION = "sec-websocket-version"  # RFC 6455 is version 13
_CONTINUATION = 0x0
GOING_AWAY = 1001  # close codes (RFC 6455 7.4.1)
_PROTOCOL_ERROR, _INVALID_DATA, _TOO_BIG = 1002, 1007, 1009

# engine.io's `handle_request` for a websocket served here: None once accepted, else the
# refusal as (HTTP status, body).
Connect = Callable[[dict[str, Any]], Awaitable[tuple[str, bytes] | None]]


@dataclass(frozen=True, slots=True)
class Entrance:
    """What the front door needs to serve a websocket itself."""

    path: str  # Engine.IO's path, "/socket.io/"
    max_message: int
    connect: Connect
    connections: set[WebSocketConnection]  # the open ones, for shutdown


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def _unmask(mask: bytes, payload: bytes) -> bytes:
    size = len(payload)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


def _may_be_sent(code: int) -> bool:
    """Close codes an endpoint may put in a close frame (RFC 6455 7.4)."""
    return (1000 <= code <= 1014 and code not in (1004, 1005, 1006)) or 3000 <= code < 5000


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class WebSocketConnection(asyncio.Protocol):
    """One accepted websocket: frames in, whole messages to its engine.io socket, in order."""

    __slots__ = (
        "_buffer",
        "_closing",
        "_fragments",
        "_fragments_opcode",
        "_inbox",
        "_max_message",
        "_paused",
        "_reader",
        "connections",
        "socket",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        max_message: int,
        connections: set[WebSocketConnection],
    ) -> None:
        self.transport = transport
        self.socket: AsyncSocket | None = None  # set by `accept`
        self.connections = connections
        self._max_message = max_message
        self._buffer = b""
        self._fragments: list[bytes] = []
        self._fragments_opcode = 0
        self._inbox: deque[str | bytes] | None = None  # only while messages wait
        self._reader: asyncio.Task[None] | None = None  # only while messages are handed over
        self._paused = False
        self._closing = False

    def accept(self, key: str, socket: AsyncSocket) -> bool:
        """Answer the upgrade (engine.io accepted the connection); False if it is gone."""
        if self.transport.is_closing():
            return False
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(key).encode()
            + b"\r\n\r\n"
        )
        self.socket = socket
        self.connections.add(self)
        if self._buffer:  # frames that came with or right after the upgrade request
            self.data_received(b"")
        return True

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and close once it is out (engine.io's close, shutdown, errors)."""
        if not self._closing:
            self._closing = True
            if not self.transport.is_closing():
                self.transport.write(close_frame(code, reason))
                self.transport.close()

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data
        if self._closing:
            self._buffer = b""
            return
        if self.socket is None:  # engine.io has not accepted it yet: keep what came
            if len(self._buffer) > self._max_message:
                self.transport.abort()
            return
        try:
            self._parse()
        except _ProtocolError as error:
            log.info("closing a websocket: %s", error)
            self.close(error.code, str(error))

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        socket = self.socket
        if socket is not None and not socket.closed:
            task = asyncio.ensure_future(_close_socket(socket))
            _background.add(task)
            task.add_done_callback(_background.discard)

    # frames

    def _parse(self) -> None:
        buffer, offset, size = self._buffer, 0, len(self._buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            if first & 0x70:
                raise _ProtocolError(_PROTOCOL_ERROR, "reserved bits set (no extension agreed)")
            if not second & 0x80:
                raise _ProtocolError(_PROTOCOL_ERROR, "client frames must be masked")
            length, header = second & 0x7F, 2
            if length == 126:
                if size - offset < 4:
                    break
                length, header = int.from_bytes(buffer[offset + 2 : offset + 4], "big"), 4
            elif length == 127:
                if size - offset < 10:
                    break
                length, header = int.from_bytes(buffer[offset + 2 : offset + 10], "big"), 10
            fin, opcode = first & 0x80, first & 0x0F
            if opcode & 0x8 and (length > 125 or not fin):
                raise _ProtocolError(_PROTOCOL_ERROR, "control frames are short and whole")
            if length + sum(map(len, self._fragments)) > self._max_message:
                raise _ProtocolError(_TOO_BIG, "message too big")
            end = offset + header + 4 + length
            if end > size:
                break
            mask = buffer[offset + header : offset + header + 4]
            payload = _unmask(mask, buffer[offset + header + 4 : end])
            offset = end
            self._frame(bool(fin), opcode, payload)
            if self._closing:
                break
        self._buffer = buffer[offset:] if offset < size else b""

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self.transport.write(frame(payload, PONG))
        elif opcode == PONG:
            pass
        elif opcode == CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000
            if len(payload) == 1 or not _may_be_sent(code):
                raise _ProtocolError(_PROTOCOL_ERROR, f"invalid close frame (code {code})")
            self.close(code)
        elif opcode in (TEXT, BINARY):
            if self._fragments:
                raise _ProtocolError(_PROTOCOL_ERROR, "a new message inside a fragmented one")
            if fin:
                self._message(opcode, payload)
            else:
                self._fragments, self._fragments_opcode = [payload], opcode
        elif opcode == _CONTINUATION:
            if not self._fragments:
                raise _ProtocolError(_PROTOCOL_ERROR, "a continuation of nothing")
            self._fragments.append(payload)
            if fin:
                whole, self._fragments = b"".join(self._fragments), []
                self._message(self._fragments_opcode, whole)
        else:
            raise _ProtocolError(_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")

    def _message(self, opcode: int, payload: bytes) -> None:
        if opcode == TEXT:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                raise _ProtocolError(_INVALID_DATA, "text is not UTF-8") from None
        else:
            message = payload
        if self._inbox is None:
            self._inbox = deque()
        self._inbox.append(message)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._hand_over())
        if len(self._inbox) >= _PAUSE_AT and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    async def _hand_over(self) -> None:
        """Give waiting messages to engine.io one by one; exists only while some wait."""
        socket, inbox = self.socket, self._inbox
        assert socket is not None and inbox is not None
        try:
            while inbox:
                try:
                    await socket.receive(eio_packet.Packet(encoded_packet=inbox.popleft()))
                except eio_exceptions.UnknownPacketError:
                    continue
                except eio_exceptions.SocketIsClosedError:
                    self.close()
                    return
                except Exception:
                    log.exception("engine.io receive failed")
                if self._paused and len(inbox) <= _RESUME_AT and not self._closing:
                    self._paused = False
                    self.transport.resume_reading()
        finally:
            self._reader = None
            if not inbox:
                self._inbox = None


_background: set[asyncio.Task[Any]] = set()  # closes and connects under way


async def _close_socket(socket: AsyncSocket) -> None:
    await socket.close(wait=False, abort=True, reason=socket.server.reason.TRANSPORT_CLOSE)
    socket.server.sockets.pop(socket.sid, None)


class _Head(NamedTuple):
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    @property
    def asks_websocket(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"


async def close_all(connections: set[WebSocketConnection]) -> None:
    """Shutdown: close every websocket (going away) and disconnect its socket now, while the
    services its disconnect handlers use are still up."""
    closing = list(connections)
    for connection in closing:
        connection.close(GOING_AWAY, "server shutting down")
    sockets = [c.socket for c in closing if c.socket is not None and not c.socket.closed]
    await asyncio.gather(*map(_close_socket, sockets), return_exceptions=True)


def _parse_head(head: bytes) -> _Head | None:
    """The request line and headers of an HTTP/1.1 request head, or None if malformed."""
    try:
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        return None
    if version != "HTTP/1.1":
        return None
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None
        name, value = name.lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    url = urlsplit(target)
    return _Head(method, url.path, url.query, headers)


def _is_websocket_connect(head: _Head, path: str) -> bool:
    """A well-formed Engine.IO v4 websocket connect (not an upgrade of a polling session)."""
    query = parse_qs(head.query)
    if (
        head.method != "GET"
        or head.path != path
        or query.get("EIO") != ["4"]
        or query.get("transport") != ["websocket"]
        or "sid" in query
    ):
        return False
    connection = {token.strip().lower() for token in head.headers.get("connection", "").split(",")}
    try:
        key = base64.b64decode(head.headers.get("sec-websocket-key", ""), validate=True)
    except ValueError:
        return False
    return head.asks_websocket and "upgrade" in connection and len(key) == 16


class FrontDoor(asyncio.Protocol):
    """What the listening socket creates per connection; see the module's docstring."""

    __slots__ = ("_entrance", "_head", "_http", "_timer", "_transport")

    def __init__(self, http: Callable[[], asyncio.Protocol], entrance: Entrance) -> None:
        self._http = http
        self._entrance = entrance
        self._head = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._timer = asyncio.get_running_loop().call_later(_UNDECIDED_S, self._to_http)

    def data_received(self, data: bytes) -> None:
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > _MAX_HEAD:
                self._to_http()
            return
        head = _parse_head(self._head[:end])
        if head is not None and head.asks_websocket and head.headers.get(_VERSION) != "13":
            self._refuse_version()  # aiohttp would upgrade versions 7 and 8 too
        elif head is not None and _is_websocket_connect(head, self._entrance.path):
            self._to_websocket(head.query, head.headers, rest=self._head[end + 4 :])
        else:
            self._to_http()

    def eof_received(self) -> bool | None:
        return False  # half a request and no more: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _settle(self) -> asyncio.Transport:
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return self._transport

    def _to_http(self) -> None:
        transport = self._settle()
        if transport.is_closing():
            return
        protocol = self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._head:
            protocol.data_received(self._head)

    def _refuse_version(self) -> None:
        transport = self._settle()
        transport.write(
            b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        transport.close()

    def _to_websocket(self, query: str, headers: dict[str, str], rest: bytes) -> None:
        transport = self._settle()
        entrance = self._entrance
        connection = WebSocketConnection(transport, entrance.max_message, entrance.connections)
        transport.set_protocol(connection)
        if rest:
            connection.data_received(rest)
        peer = transport.get_extra_info("peername")
        environ = {
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": query,
            "HTTP_UPGRADE": "websocket",
            "HTTP_CONNECTION": "Upgrade",
            "HTTP_SEC_WEBSOCKET_KEY": headers["sec-websocket-key"],
            "REMOTE_ADDR": peer[0] if peer else "",
            RAW_CONNECTION: connection,
        }
        for name in ("user-agent", "x-forwarded-for", "origin"):
            if name in headers:
                environ["HTTP_" + name.upper().replace("-", "_")] = headers[name]
        task = asyncio.ensure_future(self._connect(connection, environ))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _connect(self, connection: WebSocketConnection, environ: dict[str, Any]) -> None:
        try:
            refusal = await self._entrance.connect(environ)
        except Exception:
            log.exception("engine.io connect failed")
            refusal = ("500 Internal Server Error", b"")
        transport = connection.transport
        if refusal is not None and connection.socket is None and not transport.is_closing():
            status, body = refusal
            transport.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}"
                f"\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            transport.close()
