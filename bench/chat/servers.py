"""The servers under test, started by the tester itself: pawhub hub processes or the Node
reference, and (when DATABASE_URL / REDIS_URL are unset) embedded PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServer, free_port, stop_process
from pawhub.resources import migrate_database
from pawhub.settings import Settings

REFERENCE = Path(__file__).resolve().parent.parent / "reference"
TARGETS = ("pawhub", "node")
_PR_SET_PDEATHSIG = 1
_HEALTHY_WITHIN_S = 60.0


@dataclass(frozen=True)
class Services:
    """Where the hub's PostgreSQL and Redis are, and the secret tokens are signed with."""

    database_url: str
    redis_url: str
    redis_namespace: str
    jwt_secret: str


@contextlib.asynccontextmanager
async def backing_services(
    database_url: str | None,
    redis_url: str | None,
    redis_namespace: str,
    jwt_secret: str,
    data_dir: Path,
) -> AsyncIterator[Services]:
    """The given URLs, or embedded servers (data kept under `data_dir`, so the bench users
    created once are reused by later runs); the database is migrated either way."""
    started: list[EmbeddedServer] = []
    try:
        if not database_url:
            started.append(EmbeddedPostgres(data_dir).start())
            database_url = started[-1].url
        if not redis_url:
            started.append(EmbeddedRedis(data_dir).start())
            redis_url = started[-1].url
        await migrate_database(database_url)
        yield Services(database_url, redis_url, redis_namespace, jwt_secret)
    finally:
        for server in reversed(started):
            server.stop()


def bench_services(settings: Settings) -> contextlib.AbstractAsyncContextManager[Services]:
    """The backing services of a bench command: the settings' URLs, or embedded servers with
    their data under DATA_DIR/bench; Redis keys under REDIS_NAMESPACE-bench."""
    return backing_services(
        settings.database_url,
        settings.redis_url,
        f"{settings.redis_namespace}-bench",
        settings.jwt_secret,
        Path(settings.data_dir) / "bench",
    )


def _child_setup() -> Callable[[], None]:
    def setup() -> None:
        # Every connection is a file descriptor; and never outlive the tester.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return setup


@dataclass
class ServerGroup:
    """K server processes of one target; clients are spread over `urls`."""

    target: str
    processes: list[subprocess.Popen[bytes]]
    urls: list[str]

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process, signal.SIGTERM, 15)


def ensure_reference_installed() -> None:
    if (REFERENCE / "node_modules" / "socket.io").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("the Node reference needs npm (Node.js 20) on PATH")
    subprocess.run(
        [npm, "ci", "--prefix", str(REFERENCE), "--no-audit", "--no-fund"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _command(target: str, port: int) -> list[str]:
    if target == "pawhub":
        return [sys.executable, "-m", "pawhub", "hub", "--port", str(port)]
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("the Node reference needs node (Node.js 20) on PATH")
    return [node, str(REFERENCE / "server.js")]


def _environment(target: str, port: int, services: Services, shared: bool) -> dict[str, str]:
    common = {
        **os.environ,
        "JWT_SECRET": services.jwt_secret,
        "REDIS_NAMESPACE": services.redis_namespace,
    }
    if target == "pawhub":
        return {
            **common,
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "CHAT_RATE_LIMIT": "0",
            # The tester opens every connection from this one address (10,000 in capacity).
            "MAX_CONNECTIONS_PER_IP": "0",
        }
    reference = {**common, "PORT": str(port)}
    reference.pop("REDIS_URL", None)
    if shared:  # several processes share rooms through the Redis adapter
        reference["REDIS_URL"] = services.redis_url
    return reference


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def start_servers(
    target: str,
    count: int,
    services: Services,
    log_dir: Path,
    settings: Mapping[str, str] | None = None,
) -> ServerGroup:
    """`settings` are environment variables that override the load tests' ones (e.g. the
    flood bench puts CHAT_RATE_LIMIT back to its default)."""
    if target == "node":
        await asyncio.to_thread(ensure_reference_installed)
    group = _launch(target, count, services, log_dir, settings or {})
    try:
        await _wait_healthy(group)
    except BaseException:
        group.stop()
        raise
    return group


def _launch(
    target: str, count: int, services: Services, log_dir: Path, settings: Mapping[str, str]
) -> ServerGroup:
    log_dir.mkdir(parents=True, exist_ok=True)
    group = ServerGroup(target, [], [])
    for index in range(count):
        port = free_port()
        with (log_dir / f"{target}-{index}.log").open("ab") as log:
            group.processes.append(
                subprocess.Popen(
                    _command(target, port),
                    env={**_environment(target, port, services, shared=count > 1), **settings},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_child_setup(),
                )
            )
        group.urls.append(f"http://127.0.0.1:{port}")
    return group


async def _wait_healthy(group: ServerGroup) -> None:
    deadline = time.monotonic() + _HEALTHY_WITHIN_S
    for process, url in zip(group.processes, group.urls, strict=True):
        while not await asyncio.to_thread(_healthy, url):
            if process.poll() is not None:
                raise RuntimeError(f"{group.target} server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{group.target} server at {url} did not become healthy")
            await asyncio.sleep(0.2)
