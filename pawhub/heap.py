"""Garbage-collector settings for long-running servers.

CPython's full (generation 2) collection walks every tracked object, so with a server's
start-up heap (modules, schemas, compiled patterns: ~290,000 objects in the hub) plus its
connections, each one paused the event loop for 60-170 ms and set the latency tail. Objects
that live for the whole process are frozen once start-up is done, so no collection walks them
again; a larger first-generation threshold makes collections rarer while reference counting
still frees almost everything at once.
"""

from __future__ import annotations

import gc

_YOUNG_THRESHOLD = 50_000  # CPython's default is 700


async def settle_after_startup(_: object = None) -> None:
    """An aiohttp `on_startup` hook (or a call once a server is up): only server processes
    call it, never a test process that hosts a hub next to its own objects."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_THRESHOLD, middle, old)
