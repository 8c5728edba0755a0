"""A raw RFC 6455 client for tests: a TCP connection, an HTTP upgrade written by hand, masked
client frames built here (with control over FIN, RSV, opcode, masking, the masking key and how
the length is written, or a length that lies) and the server's frames parsed here; and just
enough Engine.IO and Socket.IO on top to act as a member."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 5.0  # the longest any single wait may take
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3, 4.2.2
ENDPOINT = "/socket.io/?EIO=4&transport=websocket"
MAX_MESSAGE_SIZE = 1_000_000  # the hub's max_http_buffer_size

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL_OPCODES = (CLOSE, PING, PONG)

NORMAL_CLOSURE, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1002, 1003
INVALID_PAYLOAD, MESSAGE_TOO_BIG = 1007, 1009


# HTTP


@dataclass
class HttpHead:
    status: int
    reason: str
    headers: dict[str, str]  # lower-cased names; repeated fields joined with ", "


async def read_http_head(reader: asyncio.StreamReader) -> HttpHead:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    version, status, *reason = status_line.split(" ", 2)
    assert version.startswith("HTTP/1."), status_line
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return HttpHead(int(status), reason[0] if reason else "", headers)


def hub_address(chat_url: str) -> tuple[str, int]:
    parts = urlsplit(chat_url)
    assert parts.port is not None
    return "127.0.0.1", parts.port


def upgrade_request(
    host: str, path: str, key: str, extra: Iterable[tuple[str, str]] = (), version: str = "13"
) -> bytes:
    fields = [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", version),
        *extra,
    ]
    lines = [f"GET {path} HTTP/1.1", *(f"{name}: {value}" for name, value in fields), "", ""]
    return "\r\n".join(lines).encode("latin-1")


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def expected_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


# WebSocket frames


def client_frame(
    payload: bytes,
    opcode: int = TEXT,
    *,
    fin: bool = True,
    masked: bool = True,
    declared_length: int | None = None,
    rsv: int = 0,
    key: bytes | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """A client frame (RFC 6455 5.2). `declared_length` lies about the payload's length (the
    payload given is then sent as is, possibly nothing); `rsv` sets the three reserved bits;
    `key` is the masking key (random if None); `length_bytes` (2 or 8) writes the length in
    that many extra bytes even where fewer would do."""
    length = len(payload) if declared_length is None else declared_length
    first = (0x80 if fin else 0) | rsv << 4 | opcode
    mask_bit = 0x80 if masked else 0
    if length_bytes is None:
        length_bytes = 0 if length < 126 else 2 if length < 1 << 16 else 8
    if length_bytes == 0:
        header = bytes((first, mask_bit | length))
    else:
        marker = 126 if length_bytes == 2 else 127
        header = bytes((first, mask_bit | marker)) + length.to_bytes(length_bytes, "big")
    if not masked:
        return header + payload
    key = os.urandom(4) if key is None else key
    return header + key + mask(key, payload)


def mask(key: bytes, payload: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `key` (RFC 6455 5.3), fast enough for megabytes."""
    size = len(payload)
    repeated = (key * (size // 4 + 1))[:size]
    xored = int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")
    return xored.to_bytes(size, "little")


def text_frame(text: str, **kwargs: Any) -> bytes:
    return client_frame(text.encode(), TEXT, **kwargs)


def close_payload(code: int, reason: str = "") -> bytes:
    return code.to_bytes(2, "big") + reason.encode()


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == CLOSE
        return int.from_bytes(self.payload[:2], "big") if len(self.payload) >= 2 else None


async def read_frame(reader: asyncio.StreamReader) -> Frame:
    """One server frame; a server must not mask (RFC 6455 5.1)."""

    async def read() -> Frame:
        first, second = await reader.readexactly(2)
        assert not second & 0x80, "the server masked a frame"
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        return Frame(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, payload)

    return await asyncio.wait_for(read(), TIMEOUT)


# Engine.IO / Socket.IO over the raw socket

ACK = re.compile(r"43/chat,(\d+)(.*)", re.DOTALL)
EVENT_PREFIX = "42/chat,"


@dataclass
class RawClient:
    """A hand-made websocket client that speaks just enough Engine.IO and Socket.IO."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    handshake: HttpHead
    open_packet: dict[str, Any]
    pending: list[str] = field(default_factory=list)  # Engine.IO packets read, not yet taken
    next_ack: int = 1

    @classmethod
    async def open(cls, chat_url: str, extra: Iterable[tuple[str, str]] = ()) -> RawClient:
        host, port = hub_address(chat_url)
        reader, writer = await asyncio.open_connection(host, port)
        key = new_key()
        writer.write(upgrade_request(f"{host}:{port}", ENDPOINT, key, extra))
        await writer.drain()
        head = await read_http_head(reader)
        assert head.status == 101, head
        assert head.headers.get("sec-websocket-accept") == expected_accept(key)
        assert head.headers.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in head.headers.get("connection", "").lower()
        first = await read_frame(reader)
        assert (first.fin, first.opcode) == (True, TEXT), first
        text = first.payload.decode()
        assert text.startswith("0{"), text
        return cls(reader, writer, head, json.loads(text[1:]))

    # bytes

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self) -> Frame:
        return await read_frame(self.reader)

    async def read_packet(self) -> str:
        """The next Engine.IO packet (a whole text message), answering pings on the way."""
        parts: list[bytes] = []
        while True:
            frame = await self.read_frame()
            assert frame.rsv == 0, frame
            if frame.opcode == PING:
                await self.write(client_frame(frame.payload, PONG))
                continue
            assert frame.opcode not in (CLOSE, PONG), f"unexpected {frame}"
            assert frame.opcode == (CONTINUATION if parts else TEXT), frame
            parts.append(frame.payload)
            if not frame.fin:
                continue
            packet = b"".join(parts).decode()
            parts = []
            if packet == "2":  # an Engine.IO ping
                await self.write(text_frame("3"))
                continue
            return packet

    async def expect(self, matches: Callable[[str], bool]) -> str:
        """The first packet (already read or still to come) that `matches`."""
        for packet in self.pending:
            if matches(packet):
                self.pending.remove(packet)
                return packet

        async def wait() -> str:
            while not matches(packet := await self.read_packet()):
                self.pending.append(packet)
            return packet

        return await asyncio.wait_for(wait(), TIMEOUT)

    # Socket.IO

    async def connect_chat(self, token: str) -> str:
        await self.write(text_frame("40/chat," + json.dumps({"token": token})))
        answer = await self.expect(lambda p: p.startswith("40/chat,") or p.startswith("44/chat"))
        assert answer.startswith("40/chat,{"), answer
        sid = json.loads(answer.removeprefix("40/chat,"))["sid"]
        assert isinstance(sid, str) and sid
        return sid

    def new_ack_id(self) -> int:
        ack_id, self.next_ack = self.next_ack, self.next_ack + 1
        return ack_id

    def event_packet(self, event: str, payload: Any) -> tuple[int, str]:
        ack_id = self.new_ack_id()
        return ack_id, f"42/chat,{ack_id}" + json.dumps([event, payload])

    async def ack(self, ack_id: int) -> dict[str, Any]:
        packet = await self.expect(
            lambda p: (m := ACK.match(p)) is not None and int(m[1]) == ack_id
        )
        match = ACK.match(packet)
        assert match is not None
        [answer] = json.loads(match[2])
        assert isinstance(answer, dict)
        return answer

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        ack_id, packet = self.event_packet(event, payload)
        await self.write(text_frame(packet))
        return await self.ack(ack_id)

    async def event(self, name: str) -> Any:
        prefix = EVENT_PREFIX + json.dumps([name])[:-1] + ","
        packet = await self.expect(lambda p: p.startswith(prefix))
        [_, data] = json.loads(packet.removeprefix(EVENT_PREFIX))
        return data

    # closing

    async def expect_close(self, code: int) -> Frame:
        """The server's close frame (whatever came before it), then the end of the
        connection with nothing after the close frame."""

        before: list[Frame] = []

        async def wait() -> Frame:
            while (frame := await read_frame(self.reader)).opcode != CLOSE:
                assert frame.opcode in (TEXT, CONTINUATION, PING, PONG), frame
                before.append(frame)
            return frame

        try:
            close = await asyncio.wait_for(wait(), TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError) as exc:
            raise AssertionError(
                f"no close frame (wanted code {code}) within {TIMEOUT} s: {exc!r}; "
                f"frames received meanwhile: {before}"
            ) from exc
        assert close.fin and close.close_code == code, (close, close.close_code)
        assert await self.rest() == b"", "the server sent more after its close frame"
        return close

    async def rest(self) -> bytes:
        """Whatever the server still sends, until it closes the TCP connection."""
        try:
            return await asyncio.wait_for(self.reader.read(), TIMEOUT)
        except ConnectionResetError:
            return b""

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
