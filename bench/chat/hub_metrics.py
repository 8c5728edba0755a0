"""What each pawhub hub tells of its fan-out at /metrics: the publications it received from
Redis, by fate (`own` echoed back, `applied` for a room it hosts, `not_hosted`). The hub's
counters live as long as its process, so the bench reads them once its run is over."""

from __future__ import annotations

import asyncio
import re
import urllib.request

_RECEIVED = re.compile(r'^pawhub_fanout_publications_received_total\{fate="(\w+)"\} (\S+)$')


def _received(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, int] = {}
    for line in text.splitlines():
        if match := _RECEIVED.match(line):
            found[match[1]] = int(float(match[2]))
    return found


async def publications_received(urls: list[str]) -> list[dict[str, int]]:
    """Per hub, in the order of `urls`: publications received by fate ({} if unreadable)."""

    async def one(url: str) -> dict[str, int]:
        try:
            return await asyncio.to_thread(_received, url)
        except OSError:
            return {}

    return list(await asyncio.gather(*(one(url) for url in urls)))
