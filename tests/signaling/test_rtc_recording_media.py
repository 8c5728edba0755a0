"""A consult recorded for real: two aiortc peers with synthetic cameras in an SFU call through
the hub, the vet records, the owner withdraws consent for a while and gives it again, the vet
stops; each participant's own media lands in S3 (moto's server) as one WebM with the time
paused left out, and the manifest lists the states."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import av
import pytest
import redis.asyncio as aioredis

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.rtc_client import RtcClient
from bench.media.synthetic import sender_luma
from pawhub.settings import Settings
from recordings.room import SEGMENTS_PER_TAKE
from tests.conftest import RUN_ID, start_hub
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.rtc_client import connected, enter_call, join, sfu_peers, use_loopback_ice
from tests.signaling.test_rtc_recording import consent, record, states_seen
from tests.waiting import eventually

LUMAS = {"vet": 50, "owner": 120}
BUCKET = f"pawhub-test-{RUN_ID}-sfu-recordings"


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    use_loopback_ice(monkeypatch)


@pytest.fixture
async def recording_hub(
    settings: Settings,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[str]:
    await ensure_bucket(s3_url)
    stored = {"s3_endpoint_url": s3_url, "s3_bucket": BUCKET, "recording_buffer_dir": tmp_path}
    runner, url = await start_hub(settings.model_copy(update=stored))
    yield url
    await runner.cleanup()


async def ensure_bucket(s3_url: str) -> None:  # noqa: F811 (the server's address)
    """BUCKET on the S3 server, made if it is not there yet."""
    async with s3_session(s3_url) as s3:
        if BUCKET not in {found["Name"] for found in (await s3.list_buckets())["Buckets"]}:
            await s3.create_bucket(Bucket=BUCKET)


VetAndOwner = tuple[VideoConsult, RtcClient, RtcClient]


@pytest.fixture
async def vet_and_owner(
    recording_hub: str, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[VetAndOwner]:
    """A video consult's vet and owner, connected to the recording hub."""
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(recording_hub, consult.vet, consult.owner) as (vet, owner):
        yield consult, vet, owner


async def frames_after(peer: Any, who: str, more: int) -> None:
    start = peer.senders(LUMAS)[who]
    await eventually(lambda: peer.senders(LUMAS)[who] >= start + more, f"{more} frames of {who}")


# Packets a recording may hold that do not decode, as a player would skip them: a frame whose
# RTP packets were lost on a loaded machine (seen once in CI, in what Janus recorded).
UNDECODABLE_SHARE = 0.05


def decoded_lumas(path: Path) -> tuple[int, float, float]:
    """Video frames, their mean identifying luma (bench.media.synthetic), and the video's
    duration in seconds. At most UNDECODABLE_SHARE of the packets (and at least one) may fail
    to decode."""
    lumas: list[float] = []
    packets = undecodable = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            packets += packet.size > 0  # not the demuxer's end-of-stream flush
            try:
                lumas.extend(sender_luma(frame) for frame in packet.decode())
            except av.error.InvalidDataError:
                undecodable += 1
        duration = float(container.duration or 0) / av.time_base
    assert undecodable <= max(1, UNDECODABLE_SHARE * packets), f"{undecodable} of {packets}"
    return len(lumas), sum(lumas) / len(lumas), duration


async def sfu_call(consult: Any, vet: RtcClient, owner: RtcClient) -> dict[str, Any]:
    """The vet and the owner in an sfu call, each sending its own luma; their peers, once the
    owner sees the vet."""
    await join(vet, consult, mode="sfu")
    await enter_call(consult, vet, [(owner, consult.owner)])
    peers = await sfu_peers(consult, vet, owner, LUMAS)
    await frames_after(peers["owner"], "vet", 15)
    return peers


async def start_recording(consult: Any, vet: RtcClient, owner: RtcClient) -> dict[str, Any]:
    """Both consent and the vet starts recording; the `record` ack."""
    await consent(vet, consult.id, granted=True)
    await consent(owner, consult.id, granted=True)
    started: dict[str, Any] = await record(vet, consult.id, "start")
    assert started["ok"], started
    return started


async def test_each_participant_s_media_reaches_s3_without_the_paused_time(
    vet_and_owner: VetAndOwner,
    pool: asyncpg.Pool,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    consult, vet, owner = vet_and_owner
    peers = await sfu_call(consult, vet, owner)
    await frames_after(peers["vet"], "owner", 15)

    started = await start_recording(consult, vet, owner)
    began = time.monotonic()
    await frames_after(peers["owner"], "vet", 60)  # ~2 s recorded
    await consent(owner, consult.id, granted=False)
    assert (await states_seen(vet, 2))[-1] == "paused"
    paused_at = time.monotonic()
    await asyncio.sleep(2)  # nothing of this is recorded
    await consent(owner, consult.id, granted=True)
    assert (await states_seen(vet, 3))[-1] == "recording"
    paused_s = time.monotonic() - paused_at
    await frames_after(peers["owner"], "vet", 45)
    assert (await record(vet, consult.id, "stop"))["ok"]
    wall_s = time.monotonic() - began

    manifest = await paused_recording_in_s3(
        pool, s3_url, consult, started["recording_id"], tmp_path, wall_s - paused_s
    )
    for entry in manifest["participants"].values():
        assert entry["segments"] and [file["take"] for file in entry["files"]] == [1]


async def paused_recording_in_s3(
    pool: asyncpg.Pool,
    s3_url: str,  # noqa: F811 (the server's address, not the fixture)
    consult: VideoConsult,
    recording_id: str,
    tmp_path: Path,
    recorded_s: float,
) -> dict[str, Any]:
    """Once the recording is stopped and indexed: the vet's and the owner's files in S3 each
    show their own video (LUMAS), over at most `recorded_s` (paused time left out); the
    manifest's states went recording, paused, recording, stopped. The manifest."""
    row = await wait_for_state(pool, recording_id, "stopped")
    files = await pool.fetch(
        "SELECT user_id, object_key FROM recording_files WHERE recording_id = $1", recording_id
    )
    names = {consult.vet.id: "vet", consult.owner.id: "owner"}
    assert {names[str(file["user_id"])] for file in files} == {"vet", "owner"}
    async with s3_session(s3_url) as s3:
        key = row["manifest_key"]
        manifest: dict[str, Any] = json.loads(
            await (await s3.get_object(Bucket=BUCKET, Key=key))["Body"].read()
        )
        for file in files:
            who = names[str(file["user_id"])]
            path = tmp_path / f"{who}.webm"
            body = await (await s3.get_object(Bucket=BUCKET, Key=file["object_key"]))["Body"].read()
            path.write_bytes(body)
            frames, luma, duration = decoded_lumas(path)
            assert frames >= 30, f"{who}: {frames} frames"
            assert abs(luma - LUMAS[who]) < 20, f"{who}'s file shows luma {luma:.0f}"
            assert 1.0 < duration < recorded_s + 1.0, (who, duration, recorded_s)
    states = [state["state"] for state in manifest["states"]]
    assert states == ["recording", "paused", "recording", "stopped"]
    assert set(manifest["participants"]) == {consult.vet.id, consult.owner.id}
    return manifest


async def wait_for_state(
    pool: asyncpg.Pool, recording_id: str, state: str, *, indexed: bool = True
) -> asyncpg.Record:
    """The recording's row once in `state` (and, if `indexed`, with its manifest written)."""
    deadline = time.monotonic() + 60
    while True:
        row = await pool.fetchrow(
            "SELECT state, manifest_key FROM recordings WHERE id = $1", recording_id
        )
        assert row is not None
        if row["state"] == state and (row["manifest_key"] is not None or not indexed):
            return row
        assert time.monotonic() < deadline, f"recording still {row['state']}"
        await asyncio.sleep(0.2)


async def test_a_hub_stopping_mid_recording_ends_it_interrupted_with_its_media_kept(
    settings: Settings,
    s3_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    await ensure_bucket(s3_url)
    stored = {"s3_endpoint_url": s3_url, "s3_bucket": BUCKET, "recording_buffer_dir": tmp_path}
    runner, url = await start_hub(settings.model_copy(update=stored))
    consult = await make_video_consult(pool, settings.jwt_secret)
    vet = await RtcClient.connect(url, consult.vet.token)
    owner = await RtcClient.connect(url, consult.owner.token)
    try:
        peers = await sfu_call(consult, vet, owner)
        started = await start_recording(consult, vet, owner)
        await frames_after(peers["owner"], "vet", 45)
    finally:
        await runner.cleanup()  # the hub stops while the recording records
        await vet.close()
        await owner.close()
    row = await wait_for_state(pool, started["recording_id"], "interrupted")
    files = await pool.fetchval(
        "SELECT count(*) FROM recording_files WHERE recording_id = $1", started["recording_id"]
    )
    assert files == 2  # what it had recorded is joined and kept
    reason = await pool.fetchval(
        """SELECT reason FROM recording_events WHERE recording_id = $1
            ORDER BY id DESC LIMIT 1""",
        started["recording_id"],
    )
    assert reason == "the hub recording it stopped" and row["manifest_key"]


async def test_a_dead_replicas_recording_is_marked_interrupted_by_the_reaper(
    recording_hub: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    assert settings.redis_url is not None
    redis = aioredis.from_url(settings.redis_url, decode_responses=True)
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with (
        connected(recording_hub, consult.vet, consult.owner) as (vet, owner),
        contextlib.aclosing(redis),
    ):
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        started = await start_recording(consult, vet, owner)
        # What a replica that hosted the room and died leaves in Redis: the room pinned to it
        # and a lease that has run out.
        prefix, dead = settings.redis_namespace, "replica-that-died"
        await redis.set(f"{prefix}:rtc:sfu:{consult.id}", dead)
        await redis.sadd(f"{prefix}:rtc:pinned:{dead}", consult.id)
        await redis.zadd(f"{prefix}:rtc:replicas", {dead: int(time.time() * 1000) - 1})

        told = await vet.wait_for("recording", lambda event: event["state"] == "interrupted")
        assert told == {
            "consult_id": consult.id,
            "state": "interrupted",
            "recording_id": started["recording_id"],
        }
        await owner.wait_for("recording", lambda event: event["state"] == "interrupted")
        # Whichever replica reaps writes the manifest if it has S3: the tests' other hubs have none.
        await wait_for_state(pool, started["recording_id"], "interrupted", indexed=False)
        assert await redis.get(f"{prefix}:rtc:sfu:{consult.id}") is None  # free to pin again
        again = await record(vet, consult.id, "start")  # the vet may record anew
        assert again["ok"] and again["recording_id"] != started["recording_id"]


async def test_a_room_that_closes_and_starts_again_records_a_second_take(
    recording_hub: str,
    pool: asyncpg.Pool,
    settings: Settings,
    s3_url: str,  # noqa: F811
) -> None:
    # Both participants reconnect: the hub drops their old connections from the room, which
    # empties and closes while the recording stays live; their new connections start a new
    # room, which records a second take. Neither take may overwrite the other's segments.
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(recording_hub, consult.vet, consult.owner) as (vet, owner):
        first = await sfu_call(consult, vet, owner)
        started = await start_recording(consult, vet, owner)
        recording_id = started["recording_id"]
        await frames_after(first["owner"], "vet", 45)
        async with connected(recording_hub, consult.vet, consult.owner) as (vet_again, owner_again):
            for client in (vet_again, owner_again):
                assert (await join(client, consult))["waiting"] is False  # their place kept
            second = await sfu_peers(consult, vet_again, owner_again, LUMAS)
            await frames_after(second["owner"], "vet", 45)
            assert (await record(vet_again, consult.id, "stop"))["ok"]
            await wait_for_state(pool, recording_id, "stopped")

    async def takes_indexed() -> bool:
        files = await pool.fetchval(
            "SELECT count(*) FROM recording_files WHERE recording_id = $1", recording_id
        )
        return bool(files == 4)

    deadline = time.monotonic() + 60
    while not await takes_indexed():
        assert time.monotonic() < deadline, "the two takes were never both joined"
        await asyncio.sleep(0.2)
    files = await pool.fetch(
        "SELECT user_id, take FROM recording_files WHERE recording_id = $1", recording_id
    )
    assert sorted((str(row["user_id"]), row["take"]) for row in files) == sorted(
        (person, take) for person in (consult.vet.id, consult.owner.id) for take in (1, 2)
    )
    segments = await pool.fetch(
        "SELECT user_id, seq, object_key, sha256 FROM recording_segments WHERE recording_id = $1",
        recording_id,
    )
    for person in (consult.vet.id, consult.owner.id):
        takes = {
            row["seq"] // SEGMENTS_PER_TAKE for row in segments if str(row["user_id"]) == person
        }
        assert takes == {1, 2}, (person, takes)
    async with s3_session(s3_url) as s3:
        for row in segments:
            body = await (await s3.get_object(Bucket=BUCKET, Key=row["object_key"]))["Body"].read()
            assert hashlib.sha256(body).hexdigest() == row["sha256"]
        key = await pool.fetchval("SELECT manifest_key FROM recordings WHERE id = $1", recording_id)
        manifest = json.loads(await (await s3.get_object(Bucket=BUCKET, Key=key))["Body"].read())
    for entry in manifest["participants"].values():
        assert [file["take"] for file in entry["files"]] == [1, 2]
    assert sum(len(entry["segments"]) for entry in manifest["participants"].values()) == len(
        segments
    )
