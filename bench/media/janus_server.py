"""A Janus process on deploy/janus's configuration with its WebSocket API on a port of our
choosing, optionally pinned to one core: for the Janus benchmark and the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from pathlib import Path

import aiohttp

from deploy.embedded import free_port
from media.janus import JanusSession

CONFIG = Path(__file__).parents[2] / "deploy" / "janus"
START_TIMEOUT_S = 30.0


class JanusServer:
    """With `api_secret` and `admin_key`, Janus asks for them as production's should."""

    def __init__(
        self,
        folder: Path,
        cpu: int | None = None,
        api_secret: str | None = None,
        admin_key: str | None = None,
    ) -> None:
        self.port = free_port()
        self.api_secret = api_secret
        shutil.copytree(CONFIG, folder)
        transport = folder / "janus.transport.websockets.jcfg"
        text = re.sub(r"ws_port = \d+", f"ws_port = {self.port}", transport.read_text())
        transport.write_text(text)
        for name, setting, value in (
            ("janus.jcfg", "api_secret", api_secret),
            ("janus.plugin.videoroom.jcfg", "admin_key", admin_key),
        ):
            if value is not None:
                config = folder / name
                general = f'general: {{\n\t{setting} = "{value}"\n'
                config.write_text(config.read_text().replace("general: {\n", general, 1))
        self._folder = folder
        self._cpu = cpu
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    async def start(self) -> None:
        pinned = ["taskset", "--cpu-list", str(self._cpu)] if self._cpu is not None else []
        self._process = await asyncio.create_subprocess_exec(
            *pinned, "janus", "-F", str(self._folder), "--disable-colors",
            "-L", str(self._folder / "janus.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        async with aiohttp.ClientSession() as http:
            while asyncio.get_running_loop().time() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    await (await JanusSession.connect(http, self.url, self.api_secret)).close()
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"Janus did not start: see {self._folder / 'janus.log'}")

    def cpu_s(self) -> float:
        """CPU seconds the Janus process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()
