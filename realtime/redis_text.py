"""A Redis reply as text, whether the client decodes replies (str) or not (bytes): the one
helper for what every module reading members, scores' members or hash fields back needs."""

from __future__ import annotations


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
