"""The hub's Engine.IO websocket endpoint at the RFC 6455 level, black-box: a raw TCP
connection, an HTTP upgrade written by hand, masked client frames built here (with control
over FIN, opcode, masking and the declared length) and the server's frames parsed here."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

TIMEOUT = 5.0  # the longest any single wait in this file may take
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3, 4.2.2
ENDPOINT = "/socket.io/?EIO=4&transport=websocket"
MAX_MESSAGE_SIZE = 1_000_000  # the hub's max_http_buffer_size

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL_OPCODES = (CLOSE, PING, PONG)

NORMAL_CLOSURE, PROTOCOL_ERROR, INVALID_PAYLOAD, MESSAGE_TOO_BIG = 1000, 1002, 1007, 1009


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
) -> bytes:
    """A client frame (RFC 6455 5.2). `declared_length` lies about the payload's length (the
    payload given is then sent as is, possibly nothing)."""
    length = len(payload) if declared_length is None else declared_length
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if length < 126:
        header = bytes((first, mask_bit | length))
    elif length < 1 << 16:
        header = bytes((first, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, mask_bit | 127)) + length.to_bytes(8, "big")
    if not masked:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))


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


@pytest.fixture
async def raw(chat_url: str) -> AsyncIterator[Callable[..., Awaitable[RawClient]]]:
    """Open raw clients on the chat hub; all are closed at the end of the test."""
    clients: list[RawClient] = []

    async def open_client(extra: Iterable[tuple[str, str]] = ()) -> RawClient:
        client = await RawClient.open(chat_url, extra)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        await client.aclose()


async def joined_raw_member(raw: Any, token: str, room: str) -> RawClient:
    client: RawClient = await raw()
    await client.connect_chat(token)
    joined = await client.call("join", {"room": room})
    assert joined["ok"] is True, joined
    return client


async def room_still_works(room_id: Any, owner: Any, vet: Any, connect: Any, tag: str) -> None:
    """Two fresh Socket.IO clients join the room and chat as if nothing happened."""
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        assert (await client.call("join", {"room": str(room_id)}))["ok"]
    ack = await alice.call("send", {"room": str(room_id), "client_id": tag, "body": tag})
    assert ack["ok"] is True, ack
    [message] = await bob.wait_for("message", 1, timeout=TIMEOUT)
    assert message == ack["message"] and message["body"] == tag


# 1. the handshake


async def test_the_handshake_accepts_the_key_declines_compression_and_opens_engine_io(
    raw: Any,
) -> None:
    # The helper itself, against RFC 6455 4.2.2's worked example.
    assert expected_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    offer = ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")
    client: RawClient = await raw([offer])
    # RawClient.open checked the 101, Upgrade, Connection and Sec-WebSocket-Accept.
    assert client.handshake.status == 101
    assert "sec-websocket-extensions" not in client.handshake.headers, client.handshake
    opened = client.open_packet
    assert isinstance(opened["sid"], str) and opened["sid"]
    assert isinstance(opened["pingInterval"], int) and opened["pingInterval"] > 0
    assert isinstance(opened["pingTimeout"], int) and opened["pingTimeout"] > 0
    # Nothing was negotiated, so the server's frames carry no RSV bits (read_packet checks).
    await client.write(text_frame("40/chat,{}"))  # no token: refused, but in a plain frame
    refused = await client.expect(lambda p: p.startswith("44/chat"))
    assert "unauthorized" in refused


async def test_the_accept_is_derived_from_the_key_not_fixed(chat_url: str) -> None:
    """Two different keys get two different, correct accepts (sha1 of key + GUID)."""
    accepts = set()
    for _ in range(2):
        host, port = hub_address(chat_url)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            key = new_key()
            writer.write(upgrade_request(f"{host}:{port}", ENDPOINT, key))
            head = await read_http_head(reader)
            assert head.status == 101
            assert head.headers["sec-websocket-accept"] == expected_accept(key)
            accepts.add(head.headers["sec-websocket-accept"])
        finally:
            writer.close()
    assert len(accepts) == 2


# 2. a whole chat exchange


async def test_a_chat_exchange_over_the_raw_socket(room: Any, raw: Any, connect: Any) -> None:
    room_id, owner, vet = room
    bob = await connect(vet[1])
    assert (await bob.call("join", {"room": str(room_id)}))["ok"]
    alice: RawClient = await raw()
    await alice.connect_chat(owner[1])
    joined = await alice.call("join", {"room": str(room_id)})
    assert joined["ok"] is True and joined["room"] == str(room_id)
    assert joined["last_seq"] == 0 and joined["missed"] == []

    sent = await alice.call(
        "send", {"room": str(room_id), "client_id": "raw-1", "body": "Hi doc 🐾"}
    )
    assert sent["ok"] is True, sent
    message = sent["message"]
    assert message["seq"] == 1 and message["body"] == "Hi doc 🐾"
    assert message["sender"]["id"] == str(owner[0].id)

    delivered = await alice.event("message")
    assert delivered == message
    assert (delivered["seq"], delivered["body"]) == (1, "Hi doc 🐾")
    assert (await bob.wait_for("message", 1, timeout=TIMEOUT)) == [message]

    # And the other way round: the raw client receives what another client sends.
    reply = await bob.call("send", {"room": str(room_id), "client_id": "b1", "body": "Woof"})
    incoming = await alice.event("message")
    assert incoming == reply["message"] and incoming["seq"] == 2


# 3. fragmentation


def fragments(data: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    """`data` as text frame + continuations, cut at the given byte offsets, FIN on the last."""
    bounds = [0, *cuts, len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(bounds)]
    return [
        client_frame(piece, TEXT if i == 0 else CONTINUATION, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]


async def test_a_message_in_three_fragments_arrives_as_one(room: Any, raw: Any) -> None:
    room_id, owner, _ = room
    client: RawClient = await raw()
    await client.connect_chat(owner[1])

    ack_id, packet = client.event_packet("join", {"room": str(room_id)})
    data = packet.encode()
    first, middle, last = fragments(data, (5, len(data) - 7))
    for piece in (first, middle):  # one write per fragment, with a pause between
        await client.write(piece)
        await asyncio.sleep(0.05)
    await client.write(last)
    joined = await client.ack(ack_id)
    assert joined["ok"] is True and joined["room"] == str(room_id)

    # A multi-byte character may be cut across fragments: UTF-8 is checked per message.
    body = "paw 🐾 print"
    ack_id = client.new_ack_id()
    payload = {"room": str(room_id), "client_id": "frag", "body": body}
    data = f"42/chat,{ack_id}{json.dumps(['send', payload], ensure_ascii=False)}".encode()
    paw = data.index("🐾".encode())
    await client.write(b"".join(fragments(data, (paw + 1, paw + 3))))
    sent = await client.ack(ack_id)
    assert sent["ok"] is True, sent
    assert sent["message"]["body"] == body and sent["message"]["seq"] == 1


# 4. a ping between fragments


async def test_a_ping_between_fragments_is_answered_and_the_message_still_arrives(
    room: Any, raw: Any
) -> None:
    room_id, owner, _ = room
    client: RawClient = await raw()
    await client.connect_chat(owner[1])
    ack_id, packet = client.event_packet("join", {"room": str(room_id)})
    first, middle, last = fragments(packet.encode(), (4, 12))

    await client.write(first + client_frame(b"hello", PING))
    pong = await client.read_frame()
    assert (pong.fin, pong.opcode, pong.payload) == (True, PONG, b"hello")

    await client.write(middle + client_frame(b"", PING) + last)
    pong = await client.read_frame()
    assert (pong.fin, pong.opcode, pong.payload) == (True, PONG, b"")
    joined = await client.ack(ack_id)
    assert joined["ok"] is True and joined["room"] == str(room_id)


# 5. a clean close


async def test_a_client_close_is_echoed_and_the_connection_ends(room: Any, raw: Any) -> None:
    room_id, owner, _ = room
    client: RawClient = await raw()
    await client.connect_chat(owner[1])
    assert (await client.call("join", {"room": str(room_id)}))["ok"]
    await client.write(client_frame(close_payload(NORMAL_CLOSURE, "bye"), CLOSE))
    await client.expect_close(NORMAL_CLOSURE)


# 6-9 and 11. protocol errors


def unmasked(room: str) -> bytes:
    """A whole, well-formed event, unmasked: a server must not act on it (RFC 6455 5.1)."""
    return text_frame(f"42/chat,99{json.dumps(['history', {'room': room}])}", masked=False)


def oversized(room: str) -> bytes:
    """Only the header of a frame declaring 2,000,000 bytes (64-bit length) and its mask."""
    return client_frame(b"", TEXT, declared_length=2 * MAX_MESSAGE_SIZE)


def too_big_in_fragments(room: str) -> bytes:
    """Two fragments, each under the limit, that together pass it: the limit is per message.
    The second is only a header, so the server must not wait for its payload either."""
    half = MAX_MESSAGE_SIZE * 6 // 10
    return client_frame(b"4" * half, TEXT, fin=False) + client_frame(
        b"", CONTINUATION, declared_length=half
    )


def invalid_utf8(room: str) -> bytes:
    return client_frame(b'42/chat,["typing",{"x":"\xff\xfe"}]', TEXT)


def reserved_opcode(room: str) -> bytes:
    return client_frame(b"hello", 0x3)


def reserved_close_code(room: str) -> bytes:
    """1005 means "no code" and must never be sent in a close frame (RFC 6455 7.4.1)."""
    return client_frame(close_payload(1005, ""), CLOSE)


def fragmented_ping(room: str) -> bytes:
    """Control frames must not be fragmented (RFC 6455 5.5)."""
    return client_frame(b"ping", PING, fin=False)


@pytest.mark.parametrize(
    ("bad_frame", "code"),
    [
        pytest.param(unmasked, PROTOCOL_ERROR, id="unmasked-1002"),
        pytest.param(oversized, MESSAGE_TOO_BIG, id="too-big-1009"),
        pytest.param(too_big_in_fragments, MESSAGE_TOO_BIG, id="too-big-in-fragments-1009"),
        pytest.param(invalid_utf8, INVALID_PAYLOAD, id="invalid-utf8-1007"),
        pytest.param(reserved_opcode, PROTOCOL_ERROR, id="reserved-opcode-1002"),
        pytest.param(reserved_close_code, PROTOCOL_ERROR, id="reserved-close-code-1002"),
        pytest.param(fragmented_ping, PROTOCOL_ERROR, id="fragmented-ping-1002"),
    ],
)
async def test_a_protocol_error_closes_with_its_code_and_nobody_else_notices(
    room: Any, raw: Any, connect: Any, bad_frame: Callable[[str], bytes], code: int
) -> None:
    room_id, owner, vet = room
    offender = await joined_raw_member(raw, owner[1], str(room_id))
    await offender.write(bad_frame(str(room_id)))
    await offender.expect_close(code)
    await room_still_works(room_id, owner, vet, connect, f"after-{code}")


# 10. what is not a websocket connect stays plain HTTP


async def raw_http(chat_url: str, request: bytes) -> HttpHead:
    reader, writer = await asyncio.open_connection(*hub_address(chat_url))
    try:
        writer.write(request)
        await writer.drain()
        return await read_http_head(reader)
    finally:
        writer.close()


def http_host(chat_url: str) -> str:
    return f"127.0.0.1:{hub_address(chat_url)[1]}"


async def test_an_unsupported_engine_io_version_gets_http_400(chat_url: str) -> None:
    request = upgrade_request(
        http_host(chat_url), "/socket.io/?EIO=3&transport=websocket", new_key()
    )
    answer = await raw_http(chat_url, request)
    assert answer.status == 400, answer
    assert "sec-websocket-accept" not in answer.headers


async def test_an_unsupported_websocket_version_is_not_upgraded(chat_url: str) -> None:
    """RFC 6455 4.2.1 /6/ and 4.4: only version 13 is RFC 6455; anything else must be
    refused with an HTTP error (such as 426 with Sec-WebSocket-Version: 13), not a 101."""
    answer = await raw_http(
        chat_url, upgrade_request(http_host(chat_url), ENDPOINT, new_key(), (), "8")
    )
    assert answer.status != 101 and 400 <= answer.status < 500, answer
    assert "sec-websocket-accept" not in answer.headers


async def test_healthz_on_a_raw_connection_is_plain_http(chat_url: str) -> None:
    host = http_host(chat_url)
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    health = await raw_http(chat_url, request.encode())
    assert health.status == 200, health
    assert "upgrade" not in health.headers


# 12. pipelining


async def test_several_messages_in_one_write_are_all_processed_in_order(
    room: Any, raw: Any, connect: Any
) -> None:
    room_id, owner, vet = room
    bob = await connect(vet[1])
    assert (await bob.call("join", {"room": str(room_id)}))["ok"]
    client: RawClient = await raw()
    await client.connect_chat(owner[1])

    join_id, join = client.event_packet("join", {"room": str(room_id)})
    sends = [
        client.event_packet("send", {"room": str(room_id), "client_id": f"p{i}", "body": f"{i}"})
        for i in range(3)
    ]
    await client.write(b"".join(text_frame(packet) for packet in [join, *(p for _, p in sends)]))

    joined = await client.ack(join_id)
    assert joined["ok"] is True, joined
    acks = [await client.ack(ack_id) for ack_id, _ in sends]
    assert all(ack["ok"] for ack in acks), acks
    assert [ack["message"]["body"] for ack in acks] == ["0", "1", "2"]
    assert [ack["message"]["seq"] for ack in acks] == [1, 2, 3]
    await bob.wait_for("message", 3, timeout=TIMEOUT)
    assert [(m["seq"], m["body"]) for m in bob.received["message"]] == [
        (1, "0"),
        (2, "1"),
        (3, "2"),
    ]
