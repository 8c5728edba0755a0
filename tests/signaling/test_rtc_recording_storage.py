"""S3 out of reach while a consult records: the segments wait on the hub's disk, the vet (and
nobody else) is told when that buffer nears its limit and again when S3 has taken it back, and
every segment ends up in S3 with the sha256 it was written with."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bench.media.consults import make_video_consult
from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.media.test_recording_buffer import Switch
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.rtc_client import connected, use_loopback_ice
from tests.signaling.test_rtc_recording import record
from tests.signaling.test_rtc_recording_media import (
    BUCKET,
    sfu_call,
    start_recording,
    wait_for_state,
)

# Four segments of the test's synthetic video (~21 KB per participant per 10 s), far below the
# settings' floor (model_copy does not validate), for the buffer to near its limit in ~20 s.
BUFFER_BYTES = 100_000


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    use_loopback_ice(monkeypatch)


@pytest.fixture
async def cuttable_s3(s3_url: str) -> AsyncIterator[Switch]:  # noqa: F811
    async with s3_session(s3_url) as s3:
        if BUCKET not in {found["Name"] for found in (await s3.list_buckets())["Buckets"]}:
            await s3.create_bucket(Bucket=BUCKET)
    switch = Switch(s3_url)
    await switch.on()
    yield switch
    await switch.off()


async def test_the_vet_is_told_while_segments_pile_up_for_want_of_s3(
    settings: Settings,
    cuttable_s3: Switch,
    s3_url: str,  # noqa: F811
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    stored = {
        "s3_endpoint_url": f"http://127.0.0.1:{cuttable_s3.port}",
        "s3_bucket": BUCKET,
        "recording_buffer_dir": tmp_path,
        "recording_buffer_max_bytes": BUFFER_BYTES,
    }
    runner, url = await start_hub(settings.model_copy(update=stored))
    consult = await make_video_consult(pool, settings.jwt_secret)
    try:
        async with connected(url, consult.vet, consult.owner) as (vet, owner):
            await sfu_call(consult, vet, owner)
            started = await start_recording(consult, vet, owner)
            await cuttable_s3.off()  # S3 goes away mid-recording

            near_full = await vet.wait_for("recording_storage", timeout=60)
            assert near_full["consult_id"] == consult.id
            assert near_full["recording_id"] == started["recording_id"]
            assert near_full["near_full"] is True
            assert 0.8 * BUFFER_BYTES <= near_full["buffered_bytes"] <= BUFFER_BYTES
            assert near_full["limit_bytes"] == BUFFER_BYTES

            await cuttable_s3.on()  # S3 is back: what waited goes up
            drained = await vet.wait_for(
                "recording_storage", lambda event: not event["near_full"], timeout=60
            )
            assert drained["buffered_bytes"] < 0.8 * BUFFER_BYTES
            assert "recording_storage" not in owner.received  # it is the vet's to act on
            assert (await record(vet, consult.id, "stop"))["ok"]
        await wait_for_state(pool, started["recording_id"], "stopped")
    finally:
        await runner.cleanup()

    segments = await pool.fetch(
        "SELECT object_key, size_bytes, sha256 FROM recording_segments WHERE recording_id = $1",
        started["recording_id"],
    )
    assert sum(row["size_bytes"] for row in segments) > BUFFER_BYTES * 0.8
    async with s3_session(s3_url) as s3:
        for row in segments:
            stored_object = await s3.get_object(Bucket=BUCKET, Key=row["object_key"])
            body = await stored_object["Body"].read()
            assert hashlib.sha256(body).hexdigest() == row["sha256"]
