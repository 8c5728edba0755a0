"""Hub replicas as real processes (`pawhub hub`), for multi-replica and failure tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from deploy.embedded import free_port
from pawhub.settings import Settings


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    url: str

    def metric(self, name: str) -> float | None:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def health(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def start_hub_process(settings: Settings, **overrides: str) -> HubProcess:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "REDIS_NAMESPACE": settings.redis_namespace,
        "JWT_SECRET": settings.jwt_secret,
        "CHAT_RATE_LIMIT": "0",
        **overrides,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "pawhub", "hub", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    hub = HubProcess(process, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"hub exited with {process.returncode}")
        try:
            if await asyncio.to_thread(hub.health) == 200:
                return hub
        except OSError:
            pass
        await asyncio.sleep(0.2)
    hub.stop()
    raise RuntimeError("hub did not become healthy")
