"""The front door: what the listening socket creates per connection.

`FrontDoor` reads the first request head and either keeps the connection (an Engine.IO
websocket connect it fully understands becomes a `realtime.websocket.WebSocketConnection`) or
passes the transport, and the bytes read so far, to aiohttp's request handler: every other
request, including a long-polling client upgrading to websocket, reaches aiohttp as it
arrived. It also bounds what a connection may cost before anyone knows what it is: the head's
size and the time to send it, and the connections one peer address may hold open at once.
While the replica drains (`realtime.drain`) it refuses every new connection but those of
Engine.IO sessions already open here.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, cast
from urllib.parse import parse_qs, urlsplit

from realtime.drain import DRAINING_BODY
from realtime.websocket import RAW_CONNECTION, Entrance, WebSocketConnection, keep_running

log = logging.getLogger(__name__)

# A first request head past this is refused (431), as Node's HTTP server does at its default
# 16 KB; later requests on a kept-alive connection are aiohttp's to bound.
_MAX_HEAD = 16 * 1024
_VERSION = "sec-websocket-version"  # RFC 6455 is version 13
_JSON = b"Content-Type: application/json\r\n"


class _Head(NamedTuple):
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    @property
    def asks_websocket(self) -> bool:
        return self.headers.get("upgrade", "").lower() == "websocket"


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


def _refused_while_draining(head: _Head | None, entrance: Entrance) -> bool:
    """Whether the replica's drain refuses this request (see `Drain.refuses`)."""
    drain = entrance.drain
    if not drain.refusing:
        return False
    return head is None or drain.refuses(head.path, entrance.path, "sid" in parse_qs(head.query))


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

    __slots__ = ("_counted", "_entrance", "_head", "_http", "_peer", "_timer", "_transport")

    def __init__(self, http: Callable[[], asyncio.Protocol], entrance: Entrance) -> None:
        self._http = http
        self._entrance = entrance
        self._head: bytes | bytearray = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._peer = ""
        self._counted = False  # whether `entrance` counts this connection under `_peer`

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else ""
        entrance = self._entrance
        if entrance.max_connections_per_ip:
            if not entrance.admit(self._peer):
                self._refuse(b"503 Service Unavailable")
                return
            self._counted = True
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(entrance.head_timeout, self._refuse, b"408 Request Timeout")

    def data_received(self, data: bytes) -> None:
        if self._timer is None:  # refused, or no longer ours
            return
        head = self._head
        searched = max(len(head) - 3, 0)  # where the head's end may start, in what is new
        if head:
            head += data  # a bytearray in place
        else:
            head = data
        end = head.find(b"\r\n\r\n", searched)
        if end < 0 and len(head) <= _MAX_HEAD:
            self._head = head if isinstance(head, bytearray) else bytearray(head)
            return
        self._head = head
        if not 0 <= end <= _MAX_HEAD:
            self._refuse(b"431 Request Header Fields Too Large")
            return
        parsed = _parse_head(bytes(head[:end]))
        if _refused_while_draining(parsed, self._entrance):
            self._refuse(b"503 Service Unavailable", _JSON, DRAINING_BODY)
        elif parsed is not None and parsed.asks_websocket and parsed.headers.get(_VERSION) != "13":
            # aiohttp would upgrade versions 7 and 8 too
            self._refuse(b"426 Upgrade Required", b"Sec-WebSocket-Version: 13\r\n")
        elif parsed is not None and _is_websocket_connect(parsed, self._entrance.path):
            self._to_websocket(parsed.query, parsed.headers, rest=bytes(head[end + 4 :]))
        else:
            self._to_http()

    def eof_received(self) -> bool | None:
        return False  # half a request and no more: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._settle()
        if self._counted:
            self._entrance.release(self._peer)

    def _settle(self) -> asyncio.Transport:
        """Stop the head's clock: the connection is refused or handed on."""
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return self._transport

    def _hand_on(self, protocol: asyncio.Protocol) -> asyncio.Transport:
        """Give the connection to `protocol`; it gives back the peer's place (if counted)."""
        transport = self._settle()
        self._counted = False
        transport.set_protocol(protocol)
        return transport

    def _refuse(self, status: bytes, headers: bytes = b"", body: bytes = b"") -> None:
        transport = self._settle()
        self._head = b""
        transport.write(
            b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (status, headers, len(body), body)
        )
        transport.close()

    def _to_http(self) -> None:
        protocol = self._http()
        if self._counted:
            protocol = _CountedHttp(protocol, self._entrance, self._peer)
        transport = self._hand_on(protocol)
        protocol.connection_made(transport)
        protocol.data_received(bytes(self._head))

    def _to_websocket(self, query: str, headers: dict[str, str], rest: bytes) -> None:
        assert self._transport is not None
        counted_as = self._peer if self._counted else None
        connection = WebSocketConnection(self._transport, self._entrance, counted_as)
        self._hand_on(connection)
        if rest:
            connection.data_received(rest)
        environ = {
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": query,
            "HTTP_UPGRADE": "websocket",
            "HTTP_CONNECTION": "Upgrade",
            "HTTP_SEC_WEBSOCKET_KEY": headers["sec-websocket-key"],
            "REMOTE_ADDR": self._peer,
            RAW_CONNECTION: connection,
        }
        for name in ("user-agent", "x-forwarded-for", "origin"):
            if name in headers:
                environ["HTTP_" + name.upper().replace("-", "_")] = headers[name]
        keep_running(self._connect(connection, environ))

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


class _CountedHttp(asyncio.Protocol):
    """aiohttp's protocol for a connection its peer's bound counts: gives the place back when
    the connection ends."""

    __slots__ = ("_entrance", "_inner", "_peer")

    def __init__(self, inner: asyncio.Protocol, entrance: Entrance, peer: str) -> None:
        self._inner, self._entrance, self._peer = inner, entrance, peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._entrance.release(self._peer)
        self._inner.connection_lost(exc)
