"""A consult Janus serves, recorded for real: a hub with S3 (moto's server) and a real Janus,
a vet and an owner through `/rtc` (bench.media.split_media), the vet records, the owner
withdraws consent for a while and gives it again, the vet stops. Janus writes each
participant's streams while it records (recordings.janus_take); each participant's own video
lands in S3 as one WebM with the paused time left out, in two segments (one per stretch), and
the manifest lists the states."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bench.media.consults import make_video_consult
from bench.media.split_media import SplitMedia
from pawhub.settings import Settings
from tests.conftest import start_hub
from tests.janus_process import Janus
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.signaling.rtc_client import connected, enter_call, join
from tests.signaling.test_rtc_recording import consent, record, states_seen
from tests.signaling.test_rtc_recording_media import (
    BUCKET,
    LUMAS,
    ensure_bucket,
    paused_recording_in_s3,
)
from tests.waiting import eventually


@pytest.fixture
async def recording_janus_hub(
    settings: Settings,
    s3_url: str,  # noqa: F811
    janus: Janus,
    tmp_path: Path,
) -> AsyncIterator[str]:
    await ensure_bucket(s3_url)
    stored = {
        "s3_endpoint_url": s3_url,
        "s3_bucket": BUCKET,
        "recording_buffer_dir": tmp_path / "buffer",  # Janus writes its files here too
        "janus_url": janus.url,
    }
    runner, url = await start_hub(settings.model_copy(update=stored))
    yield url
    await runner.cleanup()


async def more_frames(member: SplitMedia, luma: int, more: int) -> None:
    start = member.frames_from(luma)
    await eventually(lambda: member.frames_from(luma) >= start + more, f"{more} more frames")


async def test_each_participant_s_media_reaches_s3_through_janus_without_the_paused_time(
    recording_janus_hub: str,
    pool: asyncpg.Pool,
    settings: Settings,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(recording_janus_hub, consult.vet, consult.owner) as (vet, owner):
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        vet_media = SplitMedia(vet, consult.id, LUMAS["vet"])
        owner_media = SplitMedia(owner, consult.id, LUMAS["owner"])
        try:
            vet_media.publish()
            owner_media.publish()
            await more_frames(owner_media, LUMAS["vet"], 15)
            await more_frames(vet_media, LUMAS["owner"], 15)

            await consent(vet, consult.id, granted=True)
            await consent(owner, consult.id, granted=True)
            started = await record(vet, consult.id, "start")
            assert started["ok"], started
            began = time.monotonic()
            await more_frames(owner_media, LUMAS["vet"], 60)  # ~2 s recorded
            await consent(owner, consult.id, granted=False)
            assert (await states_seen(vet, 2))[-1] == "paused"
            paused_at = time.monotonic()
            await asyncio.sleep(2)  # nothing of this is recorded
            await consent(owner, consult.id, granted=True)
            assert (await states_seen(vet, 3))[-1] == "recording"
            paused_s = time.monotonic() - paused_at
            await more_frames(owner_media, LUMAS["vet"], 45)
            assert (await record(vet, consult.id, "stop"))["ok"]
            wall_s = time.monotonic() - began
        finally:
            await vet_media.close()
            await owner_media.close()

    manifest = await paused_recording_in_s3(
        pool, s3_url, consult, started["recording_id"], tmp_path, wall_s - paused_s
    )
    for entry in manifest["participants"].values():
        assert len(entry["segments"]) == 2, entry  # one per stretch recorded
        assert [file["take"] for file in entry["files"]] == [1]
    assert not list((tmp_path / "buffer").glob("*/*/*.mjr")), "Janus's files left behind"
