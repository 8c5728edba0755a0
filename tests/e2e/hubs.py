"""Hub replicas as real processes (`pawhub hub`), for multi-replica and failure tests."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.embedded import EmbeddedRedis, EmbeddedServer, free_port
from pawhub.settings import Settings
from tests.recording_client import ChatClient


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


async def start_hub_process(
    settings: Settings, *, port: int | None = None, **overrides: str
) -> HubProcess:
    """A hub process for `settings` (environment `overrides` added), on `port` or a free one,
    once healthy."""
    port = port or free_port()
    env = {**settings.child_environment(), "CHAT_RATE_LIMIT": "0", **overrides}
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


async def on_two_replicas(
    settings: Settings, room: Any
) -> tuple[HubProcess, HubProcess, ChatClient, ChatClient]:
    """Two hub processes; the room's owner connected to the first, its vet to the second."""
    _, owner, vet = room
    first, second = await start_hub_process(settings), await start_hub_process(settings)
    owner_client = await ChatClient.connect(first.url, owner[1])
    vet_client = await ChatClient.connect(second.url, vet[1])
    return first, second, owner_client, vet_client


def own_redis(settings: Settings, data: Path) -> tuple[EmbeddedRedis, EmbeddedServer, Settings]:
    """A Redis of the test's own, to stop and start again, and `settings` pointing at it."""
    redis = EmbeddedRedis(data, port=free_port())
    server = redis.start()
    return redis, server, settings.model_copy(update={"redis_url": server.url})


async def close_all(clients: Iterable[ChatClient], hubs: Iterable[HubProcess]) -> None:
    for client in clients:
        await client.close()
    for hub in hubs:
        hub.stop()
