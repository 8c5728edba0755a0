"""Server processes freeze their start-up heap, so full collections stop walking it."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import asyncio, gc
import pawhub.hub  # what a hub process has imported by the time it is up
from pawhub.heap import settle_after_startup
before = gc.get_freeze_count()
asyncio.run(settle_after_startup())
print(before, gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_settling_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    output = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    before, frozen, young_threshold = map(int, output.split())
    assert before == 0
    assert frozen > 50_000  # modules, classes and schemas of the hub's imports
    assert young_threshold > 700  # CPython's default
