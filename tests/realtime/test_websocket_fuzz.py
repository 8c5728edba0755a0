"""The hub's RFC 6455 frame parser (`realtime.frame_reader.FrameReader`, what every websocket
served below aiohttp parses with), driven in memory, against wsproto's server side, the
maintained sans-IO reference: the same random frame streams (whole and fragmented messages,
masked and not, control frames between fragments, text that is not UTF-8, oversized
messages, reserved bits and opcodes, close frames with every kind of code and reason), fed
whole, in random pieces and a byte at a time, must give the same messages, the same pongs,
and the same close with the same code.

Where the hub deliberately differs, the reference (`expected`) applies the hub's choice:

- Bounds: a message may not pass `max_message` bytes or `max_fragments` frames. The hub closes
  with 1009 at the header of the frame that would pass either bound, without waiting for its
  payload; wsproto has no such bounds.
- Lengths written in more bytes than needed (126 then a 2-byte length under 126, or 127 then
  an 8-byte length under 65536) are accepted, as aiohttp and Node's ws accept them; RFC 6455
  asks senders for the shortest form, wsproto fails the connection (1002). The reference is
  fed such data frames written the shortest way.
- Close code 1014 (IANA's "Bad Gateway") is valid and echoed, as in aiohttp and websockets;
  wsproto refuses it (1002). The reference is fed 1013 in its place.

And where the timing differs but not the outcome: wsproto checks UTF-8 and the order of data
frames as each piece of a frame arrives; the hub checks the order at the frame's header and
UTF-8 when the frame is whole (per fragment, like wsproto, not only per message). The streams
here always end on a frame boundary, where both have decided.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, cast

from engineio import packet as eio_packet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from realtime import frames
from realtime.frame_reader import MAX_FRAGMENTS, FrameReader, WebSocketState
from realtime.websocket import Entrance, WebSocketConnection
from tests.realtime.ws_raw import (
    BINARY,
    CLOSE,
    CONTINUATION,
    MESSAGE_TOO_BIG,
    PING,
    PONG,
    TEXT,
    client_frame,
    close_payload,
)

# Small bounds, so that random streams reach them.
MAX_MESSAGE, FRAGMENTS = 300, 6
NO_STATUS = 1005  # the code of a close that carried none (RFC 6455 7.1.5)

Event = tuple[str, Any]  # ("message", str | bytes) or ("ping", bytes)


@dataclass
class Outcome:
    events: list[Event] = field(default_factory=list)
    close_code: int | None = None  # the code the server closes with; None: still open


# The hub's parser, driven without a socket


class MemoryTransport:
    """What the parser calls on its transport; every frame the server writes is parsed."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.closing = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        opcode, payload = data[0] & 0x0F, server_payload(data)
        if opcode == PONG:
            self.outcome.events.append(("ping", payload))
        else:
            assert opcode == CLOSE, data
            assert self.outcome.close_code is None, "a second close frame"
            code = int.from_bytes(payload[:2], "big") if payload else NO_STATUS
            codecs.decode(payload[2:], "utf-8")  # our reasons are UTF-8 too
            self.outcome.close_code = code

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None:
        assert not self.paused
        self.paused = True

    def resume_reading(self) -> None:
        assert self.paused
        self.paused = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def server_payload(data: bytes) -> bytes:
    """The payload of one whole, unmasked, final server frame."""
    assert data[0] & 0xF0 == 0x80 and not data[1] & 0x80, data[:2]
    length, start = data[1] & 0x7F, 2
    if length >= 126:
        start += 2 if length == 126 else 8
        length = int.from_bytes(data[2:start], "big")
    assert len(data) == start + length
    return data[start:]


class RecordingReader(FrameReader):
    """The parser, with the messages it would hand to engine.io recorded."""

    __slots__ = ("outcome",)

    def __init__(self, max_message: int, max_fragments: int) -> None:
        self.outcome = Outcome()
        transport = cast(asyncio.Transport, MemoryTransport(self.outcome))
        super().__init__(transport, max_message, max_fragments)

    def message_received(self, message: str | bytes) -> None:
        assert self.outcome.close_code is None, "a message after the close"
        self.outcome.events.append(("message", message))


def parse(
    chunks: Iterable[bytes], max_message: int = MAX_MESSAGE, max_fragments: int = FRAGMENTS
) -> Outcome:
    reader = RecordingReader(max_message, max_fragments)
    for chunk in chunks:
        reader.data_received(chunk)
    transport = cast(MemoryTransport, reader.transport)
    assert transport.closing == (reader.outcome.close_code is not None) and not transport.paused
    return reader.outcome


# Frames


@dataclass(frozen=True)
class Spec:
    """One client frame, as the stream writes it."""

    opcode: int
    payload: bytes = b""
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    key: bytes = b"\x00\x00\x00\x00"
    length_bytes: int | None = None  # None: the shortest form
    top_bit: bool = False  # an 8-byte length with its most significant bit set (malformed)

    def encode(self, *, shortest: bool = False) -> bytes:
        length_bytes = None if shortest else self.length_bytes
        declared = None
        if self.top_bit:
            length_bytes, declared = 8, 1 << 63 | len(self.payload)
        return client_frame(
            self.payload,
            self.opcode,
            fin=self.fin,
            masked=self.masked,
            declared_length=declared,
            rsv=self.rsv,
            key=self.key,
            length_bytes=length_bytes,
        )

    @property
    def is_control(self) -> bool:
        return bool(self.opcode & 0x8)

    @property
    def header_is_valid(self) -> bool:
        """Whether the header alone (before any message state) is a valid client frame."""
        return (
            self.opcode in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG)
            and not self.rsv
            and self.masked
            and not self.top_bit
            and not (self.is_control and (not self.fin or self._length_field > 125))
        )

    @property
    def _length_field(self) -> int:
        """The 7-bit length in the second byte."""
        return self.encode()[1] & 0x7F


# The reference: wsproto, with the hub's deliberate differences


def expected(
    specs: list[Spec], max_message: int = MAX_MESSAGE, fragments: int = FRAGMENTS
) -> Outcome:
    outcome = Outcome()
    wsproto = Connection(ConnectionType.SERVER)
    text, binary = "", bytearray()  # the message wsproto is delivering, piece by piece
    size, frames_in_message, in_message = 0, 0, False  # the hub's bounds, over what is valid
    for spec in specs:
        data_frame = spec.header_is_valid and not spec.is_control
        continues = spec.opcode == CONTINUATION
        if data_frame and continues == in_message:
            next_size = (size if continues else 0) + len(spec.payload)
            next_frames = (frames_in_message if continues else 0) + 1
            if next_size > max_message or next_frames > fragments:
                outcome.close_code = MESSAGE_TOO_BIG
                return outcome
        wsproto.receive_data(reference_bytes(spec))
        for event in wsproto.events():
            if isinstance(event, TextMessage):
                text += event.data
                if event.message_finished:
                    outcome.events.append(("message", text))
                    text = ""
            elif isinstance(event, BytesMessage):
                binary += event.data
                if event.message_finished:
                    outcome.events.append(("message", bytes(binary)))
                    binary = bytearray()
            elif isinstance(event, Ping):
                outcome.events.append(("ping", bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                outcome.close_code = (
                    1014 if event.code == 1013 and is_close(spec, 1014) else event.code
                )
                return outcome
            else:
                assert isinstance(event, Pong), event
        if data_frame:  # wsproto took it: it is part of a message now
            size = (size if continues else 0) + len(spec.payload)
            frames_in_message = (frames_in_message if continues else 0) + 1
            in_message = not spec.fin
    return outcome


def is_close(spec: Spec, code: int) -> bool:
    return spec.opcode == CLOSE and spec.payload[:2] == code.to_bytes(2, "big")


def reference_bytes(spec: Spec) -> bytes:
    """`spec` as wsproto is fed it: data frame lengths in the shortest form, 1013 for 1014."""
    if is_close(spec, 1014) and spec.header_is_valid:
        spec = replace(spec, payload=close_payload(1013) + spec.payload[2:])
    return spec.encode(shortest=not spec.is_control and not spec.top_bit)


# Streams

keys = st.binary(min_size=4, max_size=4)
NOT_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]


@st.composite
def lengths(draw: st.DrawFn, size: int) -> int | None:
    """Mostly the shortest form; sometimes a longer one than needed."""
    choice = draw(st.sampled_from([None, None, None, 2, 8]))
    return None if choice == 2 and size >= 1 << 16 else choice


@st.composite
def control_frames(draw: st.DrawFn) -> Spec:
    """Mostly valid pings and pongs; now and then too long, not final or with a long length."""
    opcode = draw(st.sampled_from([PING, PING, PONG]))
    broken = draw(st.integers(0, 9)) == 0
    payload = draw(st.binary(min_size=126, max_size=130) if broken else st.binary(max_size=125))
    fin = not broken or draw(st.booleans())
    length_bytes = draw(lengths(len(payload))) if broken else None
    return Spec(opcode, payload, fin=fin, key=draw(keys), length_bytes=length_bytes)


@st.composite
def close_frames(draw: st.DrawFn) -> Spec:
    codes = st.sampled_from(
        [
            1000,
            1001,
            1002,
            1003,
            1004,
            1005,
            1006,
            1007,
            1008,
            1009,
            1010,
            1011,
            1012,
            1013,
            1014,
            1015,
            1016,
            999,
            0,
            1100,
            2000,
            2999,
            3000,
            3999,
            4000,
            4999,
            5000,
            65535,
        ]
    ) | st.integers(0, 65535)
    reason = st.text(max_size=20).map(str.encode) | st.sampled_from(NOT_UTF8)
    coded = st.builds(lambda code, why: close_payload(code) + why, codes, reason)
    payload = draw(coded | coded | coded | st.just(b"") | st.binary(min_size=1, max_size=1))
    return Spec(CLOSE, payload, key=draw(keys))


@st.composite
def messages(draw: st.DrawFn) -> list[Spec]:
    """One text or binary message, whole or cut anywhere (inside a character too), maybe with
    control frames between its fragments and maybe with bytes that are not UTF-8."""
    text = draw(st.booleans())
    data = draw(st.text(max_size=100)).encode() if text else draw(st.binary(max_size=400))
    if text and draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(NOT_UTF8)) + data[at:]
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
    specs = []
    for i, piece in enumerate(pieces):
        opcode = CONTINUATION if i else TEXT if text else BINARY
        last = i == len(pieces) - 1
        specs.append(
            Spec(opcode, piece, fin=last, key=draw(keys), length_bytes=draw(lengths(len(piece))))
        )
        if not last and draw(st.integers(0, 3)) == 0:
            specs.append(draw(control_frames()))
    return specs


@st.composite
def broken_frames(draw: st.DrawFn) -> Spec:
    """A data frame with one thing wrong (a reserved opcode or bit, no mask, a length with its
    top bit set, a continuation of nothing), or any header at all."""
    payload = draw(st.binary(max_size=40))
    frame = Spec(draw(st.sampled_from([TEXT, BINARY])), payload, key=draw(keys))
    defect = draw(st.sampled_from(["opcode", "rsv", "unmasked", "top bit", "order", "any"]))
    if defect == "opcode":
        return replace(frame, opcode=draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])))
    if defect == "rsv":
        return replace(frame, rsv=draw(st.integers(1, 7)))
    if defect == "unmasked":
        return replace(frame, masked=False)
    if defect == "top bit":
        return replace(frame, top_bit=True)
    if defect == "order":
        return replace(frame, opcode=CONTINUATION, fin=draw(st.booleans()))
    return Spec(
        opcode=draw(st.integers(0, 15)),
        payload=payload,
        fin=draw(st.booleans()),
        rsv=draw(st.integers(0, 7)),
        masked=draw(st.booleans()),
        key=draw(keys),
        length_bytes=draw(lengths(len(payload))),
        top_bit=draw(st.booleans()),
    )


# Mostly messages, which a close or a broken frame may end early.
streams = st.lists(
    st.sampled_from(["message", "message", "message", "control", "close", "broken"]).flatmap(
        lambda kind: {
            "message": messages(),
            "control": control_frames().map(lambda spec: [spec]),
            "close": close_frames().map(lambda spec: [spec]),
            "broken": broken_frames().map(lambda spec: [spec]),
        }[kind]
    ),
    max_size=6,
).map(lambda groups: [spec for group in groups for spec in group])


def pieces(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    bounds = sorted({0, *cuts, len(data)})
    return (data[a:b] for a, b in itertools.pairwise(bounds))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=streams, data=st.data())
def test_the_parser_agrees_with_wsproto_whole_in_pieces_and_byte_by_byte(
    specs: list[Spec], data: st.DataObject
) -> None:
    stream = b"".join(spec.encode() for spec in specs)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    reference = expected(specs)
    assert parse([stream]) == reference
    assert parse(pieces(stream, cuts)) == reference
    assert parse(stream[i : i + 1] for i in range(len(stream))) == reference


def test_every_close_code_and_reason_is_judged_as_wsproto_judges_it() -> None:
    for code in [*range(5100), 65535]:
        for reason in (b"", b"bye", b"\xff"):
            spec = Spec(CLOSE, close_payload(code) + reason)
            assert parse([spec.encode()]) == expected([spec]), (code, reason)


# The hub's own choices, one by one


def fragmented(count: int, opcode: int = TEXT, piece: bytes = b"") -> list[Spec]:
    """A message in `count` frames of `piece` each."""
    return [
        Spec(opcode if i == 0 else CONTINUATION, piece, fin=i == count - 1) for i in range(count)
    ]


def test_a_message_may_come_in_max_fragments_frames_and_no_more() -> None:
    at_bound = fragmented(MAX_FRAGMENTS, piece=b"a")
    outcome = parse([b"".join(spec.encode() for spec in at_bound)], 1_000_000, MAX_FRAGMENTS)
    assert outcome == Outcome([("message", "a" * MAX_FRAGMENTS)])

    past_it = fragmented(30_000)  # the attack: empty continuations, never final
    outcome = parse([b"".join(spec.encode() for spec in past_it)], 1_000_000, MAX_FRAGMENTS)
    assert outcome == Outcome([], MESSAGE_TOO_BIG)
    assert MAX_FRAGMENTS == 1024


def test_a_frame_that_would_make_its_message_too_big_is_refused_at_its_header() -> None:
    """Only the header arrives: the hub does not wait for a payload it would refuse."""
    first = Spec(BINARY, b"x" * 200, fin=False).encode()
    header_only = client_frame(b"", CONTINUATION, declared_length=101)
    assert parse([first + header_only]) == Outcome([], MESSAGE_TOO_BIG)
    exactly = client_frame(b"y" * 100, CONTINUATION, key=b"abcd")
    assert parse([first + exactly]) == Outcome([("message", b"x" * 200 + b"y" * 100)])


def test_deliberate_differences_from_wsproto_are_what_the_docstring_says() -> None:
    long_form = Spec(TEXT, b"short", length_bytes=8)
    assert parse([long_form.encode()]) == Outcome([("message", "short")])
    wsproto = Connection(ConnectionType.SERVER)
    wsproto.receive_data(long_form.encode())
    assert [type(e) for e in wsproto.events()] == [CloseConnection]

    bad_gateway = Spec(CLOSE, close_payload(1014, "upstream"))
    assert parse([bad_gateway.encode()]) == Outcome([], 1014)
    wsproto = Connection(ConnectionType.SERVER)
    wsproto.receive_data(bad_gateway.encode())
    [close] = wsproto.events()
    assert isinstance(close, CloseConnection) and close.code == 1002


def test_unmasking_is_aiohttps_compiled_function() -> None:
    """The loop time a 1 MB frame costs rests on it (aiohttp falls back to Python without
    its extensions; an upgrade that drops or renames it must fail here)."""
    assert frames.unmask.__name__ == "_websocket_mask_cython"
    payload = bytearray(b"\x00\x01\x02\x03\x04")
    frames.unmask(b"\xff\x0f\xf0\x00", payload)
    assert payload == b"\xff\x0e\xf2\x03\xfb"


# Work per byte


def best_time(run: Callable[[], object], repeat: int = 5) -> float:
    """The least CPU time of `repeat` runs (the least disturbed by other processes)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
    return min(times)


def empty_fragments(count: int) -> bytes:
    """Text frames of `count` frames: one "a" then empty continuations, the issue's attack."""
    specs = [Spec(TEXT, b"a", fin=False), *(Spec(CONTINUATION, fin=False) for _ in range(count))]
    return b"".join(spec.encode() for spec in specs)


def in_pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_parsing_work_grows_linearly_with_the_bytes_received() -> None:
    """8 times the bytes may take at most 24 times the time (linear is 8, quadratic 64), for
    endless empty continuations (fragment bound lifted) and for one frame arriving in 1 KB
    pieces. Compared on the same machine in the same run, so only the growth counts."""

    def ratio(stream: Callable[[int], list[bytes]], small: int) -> float:
        chunks_small, chunks_large = stream(small), stream(8 * small)
        unbounded = {"max_message": 1 << 30, "max_fragments": 1 << 30}
        large = best_time(lambda: parse(chunks_large, **unbounded))
        return large / best_time(lambda: parse(chunks_small, **unbounded))

    def continuations(count: int) -> list[bytes]:
        return [empty_fragments(count)]

    def one_frame(size: int) -> list[bytes]:
        return in_pieces(Spec(BINARY, b"\x01" * size).encode(), 1024)

    assert ratio(continuations, 4_000) < 24
    assert ratio(one_frame, 128 * 1024) < 24


def test_a_megabyte_in_a_thousand_fragments_costs_the_order_of_one_megabyte_frame() -> None:
    """The issue's yardstick: 1 MB of fragments is parsed in the same order of time as one
    1 MB frame (both arriving in 64 KB reads, as from a socket): within 10 times, plus 5 us
    for each of the 1000 headers (Python's price per frame, some 2 us here). A parser that
    re-reads the message so far on every fragment takes some 50 times."""
    piece = b"\x01" * 1000
    fragments = b"".join(spec.encode() for spec in fragmented(1000, BINARY, piece))
    whole = Spec(BINARY, piece * 1000).encode()
    limits = {"max_message": 1_000_000, "max_fragments": MAX_FRAGMENTS}
    fragmented_time = best_time(lambda: parse(in_pieces(fragments, 65536), **limits))
    whole_time = best_time(lambda: parse(in_pieces(whole, 65536), **limits))
    assert parse(in_pieces(fragments, 65536), **limits) == Outcome([("message", piece * 1000)])
    assert fragmented_time < 10 * whole_time + 1000 * 5e-6


# Handing messages over to engine.io


class BusySocket:
    """An engine.io socket whose handling of messages waits until `free`."""

    def __init__(self) -> None:
        self.received: list[str | bytes] = []
        self.closed = False
        self._free = asyncio.Event()

    async def receive(self, packet: eio_packet.Packet) -> None:
        await self._free.wait()
        self.received.append(packet.data)

    def free(self) -> None:
        self._free.set()


async def unreachable(environ: dict[str, Any]) -> None:
    raise AssertionError("the connection is given its socket directly")


async def hand_over(messages: list[bytes]) -> tuple[bool, BusySocket, MemoryTransport]:
    """`messages` (binary frames, in one read) to a connection whose engine.io socket is busy:
    whether its reading paused, then the socket and transport once all were handled."""
    transport = MemoryTransport(Outcome())
    entrance = Entrance("/socket.io/", 1_000_000, connect=unreachable, connections=set())
    connection = WebSocketConnection(cast(asyncio.Transport, transport), entrance)
    socket = BusySocket()
    connection.socket, connection.state = socket, WebSocketState.CONNECTED  # as `accept` does
    connection.data_received(b"".join(Spec(BINARY, m).encode() for m in messages))
    await asyncio.sleep(0)
    paused = transport.paused
    socket.free()
    async with asyncio.timeout(5):
        while len(socket.received) < len(messages):
            await asyncio.sleep(0)
    return paused, socket, transport


async def test_reading_pauses_while_a_megabyte_or_64_messages_wait_and_resumes_after() -> None:
    """What a connection holds while engine.io is busy is bounded in bytes and in messages;
    once they are handled, it reads again."""
    for messages in ([b"\x01" * 600_000] * 3, [b"4x"] * 100):
        paused, socket, transport = await hand_over(messages)
        assert paused and socket.received == messages and not transport.paused
    paused, socket, transport = await hand_over([b"\x01" * 400_000, b"4x"] * 2)
    assert not paused and len(socket.received) == 4
