"""The client side of a websocket (RFC 6455) on a raw asyncio connection, for the load tester.

aiohttp's `ws_connect` cost the tester about 2 ms of CPU per connection (its HTTP client
machinery), twice what a hub spends bringing a client back: in a reconnect storm on a shared
machine the tester, not the hub, set the pace. This speaks only what the tester needs: the
upgrade handshake (its accept key checked), text messages out (masked, as a client must),
text messages in (fragmented or not), pings answered, a close echoed. No extensions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

from aiohttp._websocket.helpers import websocket_mask

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_CONTINUATION, _TEXT, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x8, 0x9, 0xA
_MAX_HEAD = 16 * 1024


class WebSocketClosed(ConnectionError):
    """The connection is closed (by either side, or lost)."""


def _frame(payload: bytes, opcode: int) -> bytes:
    length, mask = len(payload), os.urandom(4)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    masked = bytearray(payload)
    websocket_mask(mask, masked)
    return header + mask + masked


class RawWebSocket(asyncio.Protocol):
    def __init__(self, key: str) -> None:
        self._expected_accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
        self._transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._fragments: bytearray | None = None
        self._messages: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    @classmethod
    async def connect(cls, url: str) -> RawWebSocket:
        """Open `url` (ws:// or http://, a path and query) and complete the handshake."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        key = base64.b64encode(os.urandom(16)).decode()
        loop = asyncio.get_running_loop()
        transport, socket = await loop.create_connection(lambda: cls(key), host, port)
        socket._transport = transport  # uvloop may call connection_made only after this
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        transport.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            await socket._opened
        except BaseException:
            socket._abort()
            raise
        return socket

    async def receive_str(self) -> str:
        message = await self._messages.get()
        if message is None:
            self._messages.put_nowait(None)  # every later read sees the end too
            raise WebSocketClosed("the websocket is closed")
        return message

    async def __aiter__(self) -> AsyncIterator[str]:
        while (message := await self._messages.get()) is not None:
            yield message
        self._messages.put_nowait(None)

    def send_str(self, text: str) -> None:
        if self.closed or self._transport is None:
            raise WebSocketClosed("the websocket is closed")
        self._transport.write(_frame(text.encode(), _TEXT))

    def close(self) -> None:
        if not self.closed and self._transport is not None:
            self._transport.write(_frame(b"\x03\xe8", _CLOSE))  # 1000: normal closure
        self._abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._opened.done():
            self._opened.set_exception(WebSocketClosed(f"closed during the handshake: {exc}"))
        self.closed = True
        self._messages.put_nowait(None)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._opened.done():
            head, separator, rest = bytes(self._buffer).partition(b"\r\n\r\n")
            if not separator:
                if len(self._buffer) > _MAX_HEAD:
                    self._fail("the handshake's response is too long")
                return
            status, *headers = head.decode("latin-1").split("\r\n")
            fields = {
                name.strip().lower(): value.strip()
                for name, _, value in (header.partition(":") for header in headers)
            }
            if status.split(" ")[1:2] != ["101"]:
                self._fail(f"the server did not switch protocols: {status!r}")
                return
            if fields.get("sec-websocket-accept", "").encode() != self._expected_accept:
                self._fail("the server's Sec-WebSocket-Accept does not match the key")
                return
            self._opened.set_result(None)
            self._buffer = bytearray(rest)
        self._read_frames()

    # frames

    def _read_frames(self) -> None:
        buffer, offset = self._buffer, 0
        while len(buffer) - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            start, length = offset + 2, second & 0x7F
            if length >= 126:
                start += 2 if length == 126 else 8
                if start > len(buffer):
                    break
                length = int.from_bytes(buffer[offset + 2 : start], "big")
            mask = b""
            if second & 0x80:  # a server must not mask; read it anyway
                mask, start = bytes(buffer[start : start + 4]), start + 4
            end = start + length
            if end > len(buffer):
                break
            payload = bytearray(buffer[start:end])
            if mask:
                websocket_mask(mask, payload)
            offset = end
            self._frame(bool(first & 0x80), first & 0x0F, payload)
        del buffer[:offset]

    def _frame(self, fin: bool, opcode: int, payload: bytearray) -> None:
        if opcode == _PING:
            if self._transport is not None and not self.closed:
                self._transport.write(_frame(bytes(payload), _PONG))
        elif opcode == _CLOSE:
            if self._transport is not None and not self.closed:
                self._transport.write(_frame(bytes(payload[:2]), _CLOSE))
            self._abort()
        elif opcode in (_TEXT, _CONTINUATION):
            message = payload if self._fragments is None else self._fragments + payload
            if fin:
                self._fragments = None
                self._messages.put_nowait(message.decode())
            else:
                self._fragments = message

    def _fail(self, reason: str) -> None:
        if not self._opened.done():
            self._opened.set_exception(WebSocketClosed(reason))
        self._abort()

    def _abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()
