"""A p2p call recorded for real: two aiortc peers with synthetic cameras meet peer to peer
through the hub; when the vet starts recording, both get `mode sfu`, close their p2p
connections and renegotiate with the hub's SFU, whose offers name each forwarded track's
stream after its publisher; their media flows through the room into S3 (moto's server)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench.media.rtc_client import RtcClient
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.rtc_client import enter_call, join, use_loopback_ice
from tests.signaling.test_rtc_recording import consent, record
from tests.signaling.test_rtc_recording_media import (
    BUCKET,
    LUMAS,
    VetAndOwner,
    decoded_lumas,
    frames_after,
    recording_hub,  # noqa: F401 (a hub storing recordings in moto's S3)
    vet_and_owner,  # noqa: F401 (its vet and owner)
)


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    use_loopback_ice(monkeypatch)


def forwarded_streams(client: RtcClient) -> set[str]:
    """The stream ids (`a=msid` first parts) of the tracks the room sent the client."""
    streams: set[str] = set()
    for signal in client.received["signal"]:
        description = signal.get("description")
        if signal["from"] != "sfu" or description is None or description["type"] != "offer":
            continue
        for section in description["sdp"].split("\r\nm=")[1:]:
            lines = section.splitlines()
            if "a=sendonly" in lines:
                msids = (line.split()[0] for line in lines if line.startswith("a=msid:"))
                streams |= {msid.removeprefix("a=msid:") for msid in msids}
    return streams


async def finished_files(pool: asyncpg.Pool, recording_id: str) -> list[Any]:
    """The recording's files, once its manifest is written."""
    deadline = time.monotonic() + 60
    query = "SELECT manifest_key FROM recordings WHERE id = $1"
    while await pool.fetchval(query, recording_id) is None:
        assert time.monotonic() < deadline, "the recording was never finished"
        await asyncio.sleep(0.2)
    return list(
        await pool.fetch(
            "SELECT user_id, object_key FROM recording_files WHERE recording_id = $1",
            recording_id,
        )
    )


async def test_recording_moves_a_p2p_call_to_the_sfu_and_records_both(
    vet_and_owner: VetAndOwner,  # noqa: F811
    pool: asyncpg.Pool,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    consult, vet, owner = vet_and_owner
    clients = {"vet": vet, "owner": owner}
    ids = {"vet": consult.vet.id, "owner": consult.owner.id}
    await enter_call(consult, vet, [(owner, consult.owner)])
    assert owner.received["admitted"][0]["mode"] == "p2p"
    p2p = {
        "vet": vet.peer(consult.id, ids["owner"], LUMAS["vet"]),
        "owner": owner.peer(consult.id, ids["vet"], LUMAS["owner"]),
    }
    await p2p["vet"].offer()
    await frames_after(p2p["owner"], "vet", 15)
    await frames_after(p2p["vet"], "owner", 15)

    await consent(vet, consult.id, granted=True)
    await consent(owner, consult.id, granted=True)
    started = await record(vet, consult.id, "start")
    assert started["ok"], started
    for client in clients.values():
        assert await client.wait_for("mode") == {"consult_id": consult.id, "mode": "sfu"}

    sfu = {}
    for name, client in clients.items():  # each closes its p2p connection and offers anew
        other = "owner" if name == "vet" else "vet"
        await client.peers.pop(ids[other]).close()
        sfu[name] = client.peer(consult.id, "sfu", LUMAS[name])
        await sfu[name].offer()
    await frames_after(sfu["owner"], "vet", 60)  # ~2 s through the room, recorded
    await frames_after(sfu["vet"], "owner", 30)
    for name, client in clients.items():
        other = "owner" if name == "vet" else "vet"
        assert forwarded_streams(client) == {ids[other]}, "a stream not named by its publisher"
        assert sfu[name].senders(LUMAS)[name] == 0
        assert not client.received["signal_failed"]

    assert (await record(vet, consult.id, "stop"))["ok"]
    files = await finished_files(pool, started["recording_id"])
    names = {value: name for name, value in ids.items()}
    assert {names[str(row["user_id"])] for row in files} == {"vet", "owner"}
    async with s3_session(s3_url) as s3:
        for row in files:
            who = names[str(row["user_id"])]
            path = tmp_path / f"{who}.webm"
            stored = await s3.get_object(Bucket=BUCKET, Key=row["object_key"])
            path.write_bytes(await stored["Body"].read())
            frames, luma, _ = decoded_lumas(path)
            assert frames >= 30, f"{who}: {frames} frames"
            assert abs(luma - LUMAS[who]) < 20, f"{who}'s file shows luma {luma:.0f}"

    # Stopping does not move the call back: it stays in sfu.
    assert (await join(owner, consult))["mode"] == "sfu"
    assert [event["mode"] for event in vet.received["mode"]] == ["sfu"]
