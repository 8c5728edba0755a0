"""A real Janus (Debian's `janus`) on deploy/janus's configuration, its WebSocket API on a free
port (bench.media.janus_server), for the tests of media.janus and of `/rtc` served through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.media.janus_server import JanusServer as Janus


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[Janus]:
    server = Janus(tmp_path / "janus")
    await server.start()
    yield server
    await server.kill()
