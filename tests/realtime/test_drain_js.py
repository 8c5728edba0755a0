"""The official JavaScript socket.io-client through a hub's drain (`realtime.drain`): the drain
drops its transport, which the client reconnects after by itself ("transport close" or
"transport error"; a Socket.IO DISCONNECT would be "io server disconnect", after which it does
not), over a websocket served below aiohttp, a long-polling session upgraded to one, and
long-polling alone."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pawhub.settings import Settings
from realtime.drain import DrainPhase, drain
from realtime.server import SOCKET_SERVER
from tests.conftest import start_hub

DRAIN_JS = Path(__file__).parents[1] / "js" / "drain.mjs"


@pytest.mark.parametrize("transports", ["websocket", "polling,websocket", "polling"])
async def test_the_official_js_client_reconnects_by_itself_after_a_drain(
    settings: Settings, room: Any, transports: str
) -> None:
    _, owner, _ = room
    node = shutil.which("node")
    assert node is not None, "make test installs Node.js"
    runner, url = await start_hub(settings)
    sio = runner.app[SOCKET_SERVER]
    js = await asyncio.create_subprocess_exec(
        node,
        str(DRAIN_JS),
        url,
        owner[1],
        transports,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert js.stdin is not None and js.stdout is not None
    stdout = js.stdout

    upgrades = 0

    async def step(name: str) -> dict[str, Any]:
        """The client's next line of step `name`, counting the upgrades on the way."""
        nonlocal upgrades
        while True:
            line = await asyncio.wait_for(stdout.readline(), 10)
            assert line, "the JS client stopped"
            data: dict[str, Any] = json.loads(line)
            if data["step"] == name:
                return data
            assert data == {"step": "upgraded", "transport": "websocket"}, data
            upgrades += 1

    try:
        await step("connected")
        if transports == "polling,websocket" and not upgrades:
            await step("upgraded")
        loop = asyncio.get_running_loop()
        await drain(sio, notice_s=0, deadline=loop.time() + 5)
        dropped = await step("disconnected")
        assert dropped["reason"] in ("transport close", "transport error"), dropped
        sio.drain.phase = DrainPhase.SERVING  # stands for the replica it reconnects to
        await step("connected")
    finally:
        js.stdin.write(b"bye\n")
        await js.stdin.drain()
        await asyncio.wait_for(js.wait(), 10)
        await runner.cleanup()
