"""WebSocket frames as a server writes them (RFC 6455 5.2): unmasked and final."""

from __future__ import annotations

from engineio import packet as eio_packet

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


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


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(code.to_bytes(2, "big") + reason.encode()[:123], CLOSE)


def packet_frame(packet: eio_packet.Packet) -> bytes:
    encoded = packet.encode()
    if isinstance(encoded, str):
        return frame(encoded.encode())
    return frame(encoded, BINARY)
