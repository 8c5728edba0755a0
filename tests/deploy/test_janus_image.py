"""deploy/janus/Dockerfile and compose's `janus` service, offline (no Docker engine runs here):
hadolint; the image's Janus is Debian's pinned to the version this machine's tests run, as the
hubs' non-root user, writing recordings where the hubs read them; and the configuration the
image builds, run here with the image's entrypoint and compose's command, serves the hub's API
beyond loopback (the hubs reach it over compose's network) with the VideoRoom plugin, and
offers its candidates on the media ports compose publishes."""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import pytest
import yaml
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from bench.media.synthetic import ColorBarTrack
from deploy.embedded import free_port
from media.janus import JanusSession
from media.janus_room import JanusRoom
from tests.deploy.test_dockerfile import hadolint, instructions
from tests.waiting import POLL_S, TIMEOUT_S

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "janus" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"


def test_hadolint_finds_nothing_in_the_janus_image() -> None:
    assert hadolint(DOCKERFILE) == []


def test_the_image_runs_the_janus_the_tests_run_as_the_hubs_non_root_user() -> None:
    steps = instructions(DOCKERFILE.read_text())
    assert re.fullmatch(r"debian:\d+\.\d+-slim", dict(steps)["FROM"])
    runs = " ".join(arguments for instruction, arguments in steps if instruction == "RUN")
    pinned = re.search(r"janus=(\S+)", runs)
    assert pinned is not None
    installed = subprocess.run(
        ["dpkg-query", "--showformat=${Version}", "--show", "janus"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert pinned.group(1) == installed
    user = dict(steps)["USER"]
    dockerfile_user = dict(instructions((ROOT / "deploy" / "Dockerfile").read_text()))["USER"]
    assert user == dockerfile_user != "0:0", "Janus writes where the hubs' user reads and deletes"


def built_configuration(folder: Path, api_port: int) -> None:
    """What the image's COPY and RUN sed make of deploy/janus, with the API on `api_port`."""
    steps = instructions(DOCKERFILE.read_text())
    copy = next(arguments for instruction, arguments in steps if instruction == "COPY")
    *sources, _ = copy.split()
    folder.mkdir()
    for source in sources:
        shutil.copy(ROOT / source, folder)
    seds = [
        shlex.split(arguments.split("&&")[0])
        for instruction, arguments in steps
        if instruction == "RUN" and arguments.startswith("sed ")
    ]
    assert seds, "the image rebinds the API"
    for _, _, expression, path in seds:
        target = folder / Path(path).name
        sed = ["sed", expression]
        edited = subprocess.run(sed, input=target.read_text(), capture_output=True, text=True)
        target.write_text(edited.stdout)
    transport = folder / "janus.transport.websockets.jcfg"
    transport.write_text(re.sub(r"ws_port = \d+", f"ws_port = {api_port}", transport.read_text()))


def host_address() -> str:
    return next(a for a in aioice.ice.get_host_addresses(True, False) if a != "127.0.0.1")


async def test_the_built_configuration_serves_the_hubs_and_media_on_the_published_ports(
    tmp_path: Path,
) -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    service = compose["services"]["janus"]
    published = re.fullmatch(r"(\d+)-(\d+):\1-\2/udp", service["ports"][0])
    assert published is not None
    low, high = int(published.group(1)), int(published.group(2))
    command = [
        part.replace("${PUBLIC_HOST:-127.0.0.1}", host_address()) for part in service["command"]
    ]
    assert command[command.index("--rtp-port-range") + 1] == f"{low}-{high}"

    folder, port = tmp_path / "pawhub-janus", free_port()
    built_configuration(folder, port)
    entrypoint = [
        part if part != "/etc/pawhub-janus" else str(folder)
        for part in yaml.safe_load(dict(instructions(DOCKERFILE.read_text()))["ENTRYPOINT"])
    ]
    process = await asyncio.create_subprocess_exec(
        *entrypoint, *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        async with aiohttp.ClientSession() as http:
            session = await connected(http, f"ws://{host_address()}:{port}")
            room = JanusRoom(await session.attach(), "image-check")
            token = JanusRoom.new_token()
            await room.create([token], max_publishers=1)
            publisher = await session.attach()
            await publisher.join_as_publisher(room.id, token, "check")
            pc.addTrack(ColorBarTrack(90))
            await pc.setLocalDescription(await pc.createOffer())
            answer = await publisher.publish({"type": "offer", "sdp": pc.localDescription.sdp})
            await pc.setRemoteDescription(RTCSessionDescription(**answer))
            ports = [int(c.split()[5]) for c in re.findall(r"a=candidate:(.*)", answer["sdp"])]
            assert ports and all(low <= p <= high for p in ports), ports
            await room.destroy()
            await session.close()
    finally:
        await pc.close()
        process.kill()
        await process.wait()


async def connected(http: aiohttp.ClientSession, url: str) -> JanusSession:
    for _ in range(int(TIMEOUT_S / POLL_S)):
        try:
            return await JanusSession.connect(http, url)
        except aiohttp.ClientError:
            await asyncio.sleep(POLL_S)
    pytest.fail(f"Janus did not answer on {url}")


def test_janus_writes_recordings_where_the_hubs_read_them() -> None:
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    directory = services["hub-1"]["environment"]["RECORDING_BUFFER_DIR"]
    mount = f"recordings:{directory}"
    for name in ("hub-1", "hub-2", "janus"):
        assert mount in services[name]["volumes"], name
    assert "recordings" in compose["volumes"]
    for dockerfile in (DOCKERFILE, ROOT / "deploy" / "Dockerfile"):  # owned by the hubs' user
        assert f"install -d -o 10001 -g 10001 {directory}" in dockerfile.read_text()
