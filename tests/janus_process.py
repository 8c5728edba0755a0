"""A real Janus (Debian's `janus`) on deploy/janus's configuration, its WebSocket API on a free
port, for the tests of media.janus and of `/rtc` served through it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from deploy.embedded import free_port
from media.janus import JanusSession
from tests.waiting import POLL_S, TIMEOUT_S

CONFIG = Path(__file__).parents[1] / "deploy" / "janus"


class Janus:
    """A Janus process on deploy/janus's configuration, its WebSocket API on a free port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        shutil.copytree(CONFIG, folder)
        transport = folder / "janus.transport.websockets.jcfg"
        text = re.sub(r"ws_port = \d+", f"ws_port = {self.port}", transport.read_text())
        transport.write_text(text)
        self._folder = folder
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            "janus", "-F", str(self._folder), "--disable-colors",
            "-L", str(self._folder / "janus.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for _ in range(int(TIMEOUT_S / POLL_S)):
                with contextlib.suppress(aiohttp.ClientError):
                    await (await JanusSession.connect(http, self.url)).close()
                    return
                await asyncio.sleep(POLL_S)
        pytest.fail("Janus did not start")

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()


@pytest.fixture
async def janus(tmp_path: Path) -> AsyncIterator[Janus]:
    server = Janus(tmp_path / "janus")
    await server.start()
    yield server
    await server.kill()
