"""coturn as deploy/docker-compose.yml starts it: the compose service's own shell command
renders the shipped config with TURN_SECRET, and Debian's coturn (on loopback) then accepts
credentials signed with that secret and nothing else."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aioice import stun, turn

from deploy.embedded import free_port, stop_process
from signaling.turn import turn_credential
from tests.signaling.conftest import SHIPPED_CONFIG, coturn_command, wait_listening

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"
SECRET = "deploy-test-turn-secret-0123456789"
# The placeholder the shipped config once held: coturn accepted it beside the real secret.
OLD_PLACEHOLDER = "CHANGE-ME-same-as-TURN_SECRET"


def compose_coturn_command() -> tuple[str, list[str]]:
    """The compose service's shell command, split into the config rendering and the start."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["coturn"]
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = service["command"]
    render, _, start = script.partition(" && ")
    # Compose turns $$ into $ before the shell sees the command.
    return render.replace("$$", "$"), start.split()


@pytest.fixture(scope="module")
def rendered_coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """coturn started from the config the compose command renders; its port on loopback."""
    state = tmp_path_factory.mktemp("coturn-compose")
    render, start = compose_coturn_command()
    assert start[:4] == ["exec", "turnserver", "-c", "/tmp/turnserver.conf"]
    config = state / "turnserver.conf"
    render = render.replace("/etc/coturn/turnserver.conf.in", str(SHIPPED_CONFIG))
    subprocess.run(
        ["/bin/sh", "-c", render.replace("/tmp/turnserver.conf", str(config))],
        env={"TURN_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=10,
    )
    assert config.read_text().count("\nstatic-auth-secret=") == 1
    port = free_port()
    # The test harness's loopback command, less its own --static-auth-secret: the secret must
    # come from the rendered file alone.
    command = [
        arg for arg in coturn_command(port, state, config) if "static-auth-secret" not in arg
    ]
    log = state / "turnserver.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command + start[4:], stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, process, log)
        yield port
    finally:
        stop_process(process, signal.SIGTERM, 10)


async def allocation_error(port: int, secret: str) -> int | None:
    """None when coturn grants a relay for a credential signed with `secret`, else its error."""
    credential = turn_credential(secret, "vet-1")
    try:
        transport, _ = await turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=("127.0.0.1", port),
            username=credential.username,
            password=credential.credential,
        )
    except stun.TransactionFailed as failed:
        code: int = failed.response.error_code
        return code
    transport.close()
    return None


def test_the_shipped_config_holds_no_secret() -> None:
    active = [line for line in SHIPPED_CONFIG.read_text().splitlines() if not line.startswith("#")]
    assert "use-auth-secret" in active
    assert not [line for line in active if line.startswith("static-auth-secret")]


async def test_coturn_as_compose_runs_it_accepts_turn_secret_and_nothing_else(
    rendered_coturn: int,
) -> None:
    assert await allocation_error(rendered_coturn, SECRET) is None
    assert await allocation_error(rendered_coturn, OLD_PLACEHOLDER) == 401
    assert await allocation_error(rendered_coturn, "not-the-secret") == 401
