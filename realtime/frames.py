"""WebSocket frames as a server writes them (RFC 6455 5.2): unmasked and final; and the
unmasking of a client's frames."""

from __future__ import annotations

from aiohttp._websocket.helpers import websocket_mask
from engineio import packet as eio_packet

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA

# unmask(key, payload) XORs a client frame's payload with its 4-byte masking key, in place. It
# is aiohttp's own (the function its frame reader uses), compiled: a 1 MB payload costs well
# under a millisecond of loop time, where Python-level unmasking costs several.
unmask = websocket_mask


def frame(payload: bytes, opcode: int = TEXT) -> bytes:
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        header = bytes((first, length))
    elif length < 1 << 16:
        header = bytes((first, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + length.to_bytes(8, "big")
    return header + payload


def close_frame(code: int | None, reason: str = "") -> bytes:
    """A close frame; with no code (answering a close that carried none) it is empty. The
    reason is cut to fit a control frame, on a character boundary so it stays UTF-8."""
    if code is None:
        return frame(b"", CLOSE)
    fitting = reason.encode()[:123].decode(errors="ignore").encode()
    return frame(code.to_bytes(2, "big") + fitting, CLOSE)


def packet_frame(packet: eio_packet.Packet) -> bytes:
    encoded = packet.encode()
    if isinstance(encoded, str):
        return frame(encoded.encode())
    return frame(encoded, BINARY)
