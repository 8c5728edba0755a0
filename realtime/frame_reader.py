"""The RFC 6455 frame parser under every websocket the hub serves itself.

Its work is linear in the bytes received (a frame that arrives in pieces is collected in one
growing buffer, never re-copied), each message it may assemble is bounded in bytes and in
fragments, and payloads are unmasked by compiled code.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import logging
from typing import cast

from realtime.frames import BINARY, CLOSE, PING, PONG, TEXT, close_frame, frame, unmask

log = logging.getLogger(__name__)

# Fragments one message may arrive in. Browsers never fragment what they send; this still
# lets the largest message (1 MB) come in 1 KB pieces, and keeps a client from making the
# hub parse endless empty continuations as one message.
MAX_FRAGMENTS = 1024
_CONTINUATION = 0x0
_OPCODES = frozenset((_CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG))
GOING_AWAY = 1001  # close codes (RFC 6455 7.4.1)
_PROTOCOL_ERROR, UNSUPPORTED_DATA, _INVALID_DATA, _TOO_BIG = 1002, 1003, 1007, 1009
# Codes a peer may close with (RFC 6455 7.4, and 1012-1014 from the IANA registry).
_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, *range(1007, 1015)))


class WebSocketState(enum.Enum):
    """Where a websocket is, as Starlette's `WebSocketState` says it."""

    CONNECTING = enum.auto()  # upgrade asked for, not answered yet: bytes are kept, unparsed
    CONNECTED = enum.auto()
    CLOSING = enum.auto()  # a close frame is sent: nothing more is read


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class FrameReader(asyncio.Protocol):
    """A client's frames in (RFC 6455 5), whole messages out to `message_received`, in order.

    While idle it holds no object of its own: the buffer is the shared empty bytes, and a
    message's fragments and UTF-8 decoder exist only while a fragmented message arrives."""

    __slots__ = (
        "_buffer",
        "_max_fragments",
        "_max_message",
        "_message",
        "_message_frames",
        "_utf8",
        "state",
        "transport",
    )

    def __init__(
        self, transport: asyncio.Transport, max_message: int, max_fragments: int = MAX_FRAGMENTS
    ) -> None:
        self.transport = transport
        self._max_message = max_message
        self._max_fragments = max_fragments
        # Bytes not parsed yet: empty, or a bytearray holding an incomplete frame.
        self._buffer: bytes | bytearray = b""
        self._message: bytearray | None = None  # a fragmented message so far
        self._message_frames = 0
        self._utf8: codecs.IncrementalDecoder | None = None  # only for fragmented text
        self.state = WebSocketState.CONNECTED

    def message_received(self, message: str | bytes) -> None:
        """A whole text (str) or binary (bytes) message."""
        raise NotImplementedError

    def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a close frame (an empty one without a code) and close once it is out."""
        if self.state is not WebSocketState.CLOSING:
            self.state = WebSocketState.CLOSING
            self._buffer, self._message, self._utf8 = b"", None, None
            if not self.transport.is_closing():
                self.transport.write(close_frame(code, reason))
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.state is WebSocketState.CLOSING:
            return
        try:
            self._parse(data)
        except _ProtocolError as error:
            log.info("closing a websocket: %s", error)
            self.close(error.code, str(error))

    def _keep(self, data: bytes) -> None:
        """Add `data` to the unparsed bytes without parsing them."""
        if self._buffer:
            self._buffer += data
        else:
            self._buffer = bytearray(data)

    # frames

    def _parse(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer:
            buffer += data  # the bytearray in place: a frame's pieces are copied once each
        else:
            buffer = data
        offset, size = 0, len(buffer)
        while size - offset >= 2 and self.state is not WebSocketState.CLOSING:
            first, second = buffer[offset], buffer[offset + 1]
            fin, opcode, length = bool(first & 0x80), first & 0x0F, second & 0x7F
            if opcode not in _OPCODES:
                raise _ProtocolError(_PROTOCOL_ERROR, f"reserved opcode {opcode:#x}")
            if opcode & 0x8 and (length > 125 or not fin):
                raise _ProtocolError(_PROTOCOL_ERROR, "control frames are short and whole")
            start = offset + 2
            if length >= 126:
                start += 2 if length == 126 else 8
                if start > size:
                    break
                length = int.from_bytes(buffer[offset + 2 : start], "big")
                if length >> 63:
                    raise _ProtocolError(_PROTOCOL_ERROR, "frame length's top bit is set")
            if first & 0x70:
                raise _ProtocolError(_PROTOCOL_ERROR, "reserved bits set (no extension)")
            if not second & 0x80:
                raise _ProtocolError(_PROTOCOL_ERROR, "client frames must be masked")
            if not opcode & 0x8:
                self._admit(opcode, length)  # before waiting for a payload it would refuse
            end = start + 4 + length
            if end > size:
                break
            payload = buffer[start + 4 : end]
            if not isinstance(payload, bytearray):
                payload = bytearray(payload)
            unmask(bytes(buffer[start : start + 4]), payload)
            offset = end
            self._frame(fin, opcode, payload)
        if self.state is WebSocketState.CLOSING:
            return
        if offset == size:
            self._buffer = b""
        elif buffer is not self._buffer:
            self._buffer = bytearray(buffer[offset:])
        elif offset:
            del cast(bytearray, buffer)[:offset]

    def _admit(self, opcode: int, length: int) -> None:
        """Refuse a data frame out of sequence, or one that would make its message too big."""
        message = self._message
        if opcode == _CONTINUATION:
            if message is None:
                raise _ProtocolError(_PROTOCOL_ERROR, "a continuation of nothing")
            size, frames = len(message) + length, self._message_frames + 1
        elif message is not None:
            raise _ProtocolError(_PROTOCOL_ERROR, "a new message inside a fragmented one")
        else:
            size, frames = length, 1
        if size > self._max_message:
            raise _ProtocolError(_TOO_BIG, "message too big")
        if frames > self._max_fragments:
            raise _ProtocolError(_TOO_BIG, "message in too many fragments")

    def _frame(self, fin: bool, opcode: int, payload: bytearray) -> None:
        if opcode == PING:
            self.transport.write(frame(bytes(payload), PONG))
        elif opcode == PONG:
            pass
        elif opcode == CLOSE:
            self._close_received(payload)
        elif opcode == _CONTINUATION:
            message = self._message
            assert message is not None  # `_admit` saw to it
            message += payload
            self._message_frames += 1
            if self._utf8 is not None:
                self._check_utf8(payload, fin)
            if fin:
                text = self._utf8 is not None
                self._message, self._utf8 = None, None
                self._deliver(TEXT if text else BINARY, message)
        elif fin:
            self._deliver(opcode, payload)
        else:
            self._message, self._message_frames = payload, 1
            if opcode == TEXT:
                self._utf8 = codecs.getincrementaldecoder("utf-8")()
                self._check_utf8(payload, False)

    def _check_utf8(self, fragment: bytearray, final: bool) -> None:
        """Fail a text message at its first fragment that cannot be UTF-8 (RFC 6455 8.1)."""
        assert self._utf8 is not None
        try:
            self._utf8.decode(fragment, final)
        except UnicodeDecodeError:
            raise _ProtocolError(_INVALID_DATA, "text is not UTF-8") from None

    def _deliver(self, opcode: int, payload: bytearray) -> None:
        if opcode == TEXT:
            try:
                message: str | bytes = payload.decode()
            except UnicodeDecodeError:
                raise _ProtocolError(_INVALID_DATA, "text is not UTF-8") from None
        else:
            message = bytes(payload)
        self.message_received(message)

    def _close_received(self, payload: bytearray) -> None:
        """Answer a close with the same code (RFC 6455 5.5.1), or fail an invalid one."""
        if not payload:
            self.close(None)
            return
        code = int.from_bytes(payload[:2], "big")
        if len(payload) == 1 or not (code in _CLOSE_CODES or 3000 <= code < 5000):
            raise _ProtocolError(_PROTOCOL_ERROR, f"invalid close frame (code {code})")
        try:
            payload[2:].decode()
        except UnicodeDecodeError:
            raise _ProtocolError(_INVALID_DATA, "close reason is not UTF-8") from None
        self.close(code)
