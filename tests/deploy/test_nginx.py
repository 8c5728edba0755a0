"""deploy/nginx/nginx.conf, run by Debian's nginx on loopback (deploy/loadbalancer.py changes
only its upstream addresses, listen port and pid file): `nginx -t`, then the balancing it does
in front of stand-in replicas, and Socket.IO clients over long-polling through it to two real
hub replicas."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from deploy.embedded import free_port
from deploy.loadbalancer import NGINX_CONF, NginxConfigError, loopback_config
from pawhub.settings import Settings
from realtime.server import SOCKET_SERVER
from tests.conftest import start_hub
from tests.deploy.nginx_process import nginx_command, running_nginx, write_config
from tests.recording_client import ChatClient


def test_nginx_accepts_the_shipped_configuration(tmp_path: Path) -> None:
    config, _ = write_config(tmp_path, hub_ports=[free_port(), free_port()], api_port=free_port())
    checked = subprocess.run(
        [*nginx_command(tmp_path, config), "-t"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_the_loopback_config_differs_from_the_shipped_one_only_in_addresses(
    tmp_path: Path,
) -> None:
    rendered = loopback_config(
        hub_ports=[9001, 9002, 9003], api_port=9100, listen_port=9200, pid_file=tmp_path / "pid"
    ).splitlines()
    shipped = NGINX_CONF.read_text().splitlines()
    changed = [line.strip() for line in rendered if line not in shipped]
    assert changed == [
        f"pid {tmp_path / 'pid'};",
        "server 127.0.0.1:9001 max_fails=1 fail_timeout=10s;",
        "server 127.0.0.1:9002 max_fails=1 fail_timeout=10s;",
        "server 127.0.0.1:9003 max_fails=1 fail_timeout=10s;",
        "server 127.0.0.1:9100 max_fails=1 fail_timeout=10s;",
        "listen 127.0.0.1:9200 reuseport backlog=4096;",
    ]
    with pytest.raises(ValueError, match="at least one hub"):
        loopback_config(hub_ports=[], api_port=1, listen_port=2, pid_file=tmp_path / "pid")


def test_a_config_of_another_shape_is_refused_not_half_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    altered = tmp_path / "nginx.conf"
    altered.write_text(NGINX_CONF.read_text().replace("listen 80", "listen [::]:80"))
    monkeypatch.setattr("deploy.loadbalancer.NGINX_CONF", altered)
    with pytest.raises(NginxConfigError, match="expected one listen line, found 0"):
        loopback_config(hub_ports=[1], api_port=2, listen_port=3, pid_file=tmp_path / "pid")


@contextlib.asynccontextmanager
async def stand_in(name: str) -> AsyncIterator[tuple[int, web.AppRunner]]:
    """A replica that answers every request with its name and what it received."""

    async def describe(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            websocket = web.WebSocketResponse()
            await websocket.prepare(request)
            await websocket.send_json({"replica": name})
            await websocket.close()
            return websocket
        return web.json_response(
            {
                "replica": name,
                "path": request.path,
                "forwarded_for": request.headers.get("X-Forwarded-For"),
                "real_ip": request.headers.get("X-Real-IP"),
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", describe)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, runner
    finally:
        await runner.cleanup()


@pytest.fixture
async def balanced(tmp_path: Path) -> AsyncIterator[tuple[str, web.AppRunner]]:
    """nginx over stand-ins hub-1, hub-2 and api; the URL and hub-1's runner (to stop it)."""
    async with (
        stand_in("hub-1") as (hub1, hub1_runner),
        stand_in("hub-2") as (hub2, _),
        stand_in("api") as (api, _),
    ):
        with running_nginx(tmp_path, [hub1, hub2], api) as url:
            yield url, hub1_runner


async def answer_of(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def replica_of(session: aiohttp.ClientSession, url: str) -> str:
    replica: str = (await answer_of(session, url))["replica"]
    return replica


async def websocket_replica(session: aiohttp.ClientSession, url: str) -> str:
    async with session.ws_connect(url) as websocket:
        replica: str = (await websocket.receive_json(timeout=5))["replica"]
        return replica


async def test_a_polling_session_stays_on_one_replica_up_to_its_upgrade(
    balanced: tuple[str, web.AppRunner],
) -> None:
    url, _ = balanced
    polling = f"{url}/socket.io/?EIO=4&transport=polling"
    async with aiohttp.ClientSession() as session:
        handshake = await replica_of(session, polling)
        polls = {await replica_of(session, f"{polling}&sid=sid-{i}") for i in range(20)}
        upgrades = {
            await websocket_replica(session, f"{url}/socket.io/?EIO=4&transport=websocket&sid=s{i}")
            for i in range(10)
        }
    assert polls == upgrades == {handshake}


async def test_websocket_only_connections_spread_over_the_replicas(
    balanced: tuple[str, web.AppRunner],
) -> None:
    url, _ = balanced
    async with aiohttp.ClientSession() as session:
        replicas = [
            await websocket_replica(session, f"{url}/socket.io/?EIO=4&transport=websocket")
            for _ in range(40)
        ]
    # Random per connection: all 40 on one replica would happen once in 2**39 runs.
    assert set(replicas) == {"hub-1", "hub-2"}


async def test_routes_forwarded_headers_and_nothing_else_published(
    balanced: tuple[str, web.AppRunner],
) -> None:
    url, _ = balanced
    async with aiohttp.ClientSession() as session:
        api = await answer_of(session, f"{url}/v1/pets")
        app = await answer_of(session, f"{url}/app/consult")
        async with session.get(
            f"{url}/v1/me", headers={"X-Forwarded-For": "203.0.113.9"}
        ) as response:
            relayed = await response.json()
        for unpublished in ("/metrics", "/healthz", "/schema/openapi.json"):
            async with session.get(url + unpublished) as response:
                assert response.status == 404, unpublished
        async with session.get(f"{url}/lb-healthz") as response:
            assert response.status == 200
    assert api["replica"] == "api" and api["path"] == "/v1/pets"
    assert app["replica"] in {"hub-1", "hub-2"} and app["path"] == "/app/consult"
    assert api["forwarded_for"] == "127.0.0.1" and api["real_ip"] == "127.0.0.1"
    # The client's own header is kept and nginx appends the address it saw.
    assert relayed["forwarded_for"] == "203.0.113.9, 127.0.0.1"


async def test_every_connection_goes_to_the_surviving_replica_when_one_is_down(
    balanced: tuple[str, web.AppRunner],
) -> None:
    url, hub1 = balanced
    await hub1.cleanup()
    async with aiohttp.ClientSession() as session:
        replicas = [
            await replica_of(session, f"{url}/socket.io/?EIO=4&transport=polling")
            for _ in range(10)
        ]
        replicas += [
            await websocket_replica(session, f"{url}/socket.io/?EIO=4&transport=websocket")
            for _ in range(20)
        ]
    assert set(replicas) == {"hub-2"}


async def test_socketio_clients_through_nginx_to_two_real_hubs(
    tmp_path: Path, settings: Settings, room: Any
) -> None:
    """Clients that start on long-polling and upgrade (every request of a session must reach
    the hub that holds it) and websocket-only clients (spread over both hubs) chat through
    nginx, across replicas."""
    room_id, owner, vet = room
    hubs = [await start_hub(settings) for _ in range(2)]
    ports = [int(url.rsplit(":", 1)[1]) for _, url in hubs]
    clients: list[ChatClient] = []

    def sessions_per_hub() -> list[int]:
        return [len(runner.app[SOCKET_SERVER].eio.sockets) for runner, _ in hubs]

    async def join(url: str, transports: list[str]) -> None:
        client = ChatClient()
        clients.append(client)
        token = (owner, vet)[len(clients) % 2][1]
        await client.sio.connect(
            url, auth={"token": token}, namespaces=["/chat"], transports=transports
        )
        assert (await client.call("join", {"room": str(room_id)}))["ok"]

    try:
        with running_nginx(tmp_path, ports, api_port=free_port()) as url:
            for _ in range(3):
                await join(url, ["polling", "websocket"])
            # Websocket-only clients land at random: join until both hubs hold sessions
            # (24 all on the polling clients' hub: 1 in 2**24).
            while 0 in sessions_per_hub() and len(clients) < 27:
                await join(url, ["websocket"])
            assert 0 not in sessions_per_hub() and sum(sessions_per_hub()) == len(clients)
            for i, client in enumerate(clients):
                ack = await client.call(
                    "send", {"room": str(room_id), "client_id": f"lb{i}", "body": f"hello {i}"}
                )
                assert ack["ok"], ack
            sent = sorted(f"hello {i}" for i in range(len(clients)))
            for client in clients:
                received = await client.wait_for("message", len(clients))
                assert sorted(message["body"] for message in received) == sent
    finally:
        for client in clients:
            await client.close()
        for runner, _ in hubs:
            await runner.cleanup()
