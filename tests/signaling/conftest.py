"""A real coturn (Debian's `turnserver`) on loopback with the TURN REST API (use-auth-secret)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.embedded import free_port
from tests.integrations.test_livekit import livekit_server  # noqa: F401 (the local Twirp endpoint)
from tests.janus_process import janus  # noqa: F401 (a real Janus)

TURN_SECRET = "test-turn-secret-0123456789"
SHIPPED_CONFIG = Path(__file__).parents[2] / "deploy" / "coturn" / "turnserver.conf"


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


def coturn_command(port: int, state_dir: Path, config: Path | None) -> list[str]:
    """coturn on 127.0.0.1 only, with TURN_SECRET; without `config`, loopback peers are
    allowed (a shipped config denies them, as production must)."""
    turnserver = shutil.which("turnserver")
    if turnserver is None:
        pytest.fail("turnserver not found: `make system-deps` (apt-get install coturn) installs it")
    if config is None:
        config_args = ["-n", "--allow-loopback-peers", "--realm=pawhub.test", "--use-auth-secret"]
    else:
        config_args = ["-c", str(config)]
    return [
        turnserver,
        *config_args,
        "--no-cli",
        "--no-tls",
        "--no-dtls",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        f"--static-auth-secret={TURN_SECRET}",
        "--log-file=stdout",
        f"--pidfile={state_dir / 'turnserver.pid'}",
        f"--userdb={state_dir / 'turndb'}",
    ]


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"turnserver exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"turnserver did not listen on {port}:\n{log.read_text()}")


@contextmanager
def running_coturn(state_dir: Path, config: Path | None = None) -> Iterator[Coturn]:
    port = free_port()
    log = state_dir / "turnserver.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            coturn_command(port, state_dir, config),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_listening(port, process, log)
        yield Coturn(port, TURN_SECRET, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    with running_coturn(tmp_path_factory.mktemp("coturn")) as server:
        yield server


@pytest.fixture(scope="module")
def shipped_coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn with deploy/coturn/turnserver.conf, moved onto loopback and the test secret."""
    with running_coturn(tmp_path_factory.mktemp("coturn-shipped"), SHIPPED_CONFIG) as server:
        yield server
