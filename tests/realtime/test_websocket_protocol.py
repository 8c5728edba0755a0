"""The hub's Engine.IO websocket endpoint at the RFC 6455 level, black-box, with the raw
client of `tests.realtime.ws_raw`: a TCP connection, an HTTP upgrade written by hand, masked
client frames built there and the server's frames parsed there."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest

from tests.realtime.ws_raw import (
    CLOSE,
    CONTINUATION,
    ENDPOINT,
    INVALID_PAYLOAD,
    MAX_MESSAGE_SIZE,
    MESSAGE_TOO_BIG,
    NORMAL_CLOSURE,
    PING,
    PONG,
    PROTOCOL_ERROR,
    TEXT,
    TIMEOUT,
    HttpHead,
    RawClient,
    client_frame,
    close_payload,
    expected_accept,
    hub_address,
    new_key,
    read_http_head,
    text_frame,
    upgrade_request,
)


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
