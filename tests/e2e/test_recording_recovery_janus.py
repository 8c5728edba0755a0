"""A hub SIGKILLed while Janus records a consult it hosts: what Janus wrote reaches S3 once a
hub starts again on the same disk. Janus ends the dead hub's session (its socket closed), which
closes the files; the restarted hub's reaper ends the recording `interrupted`, and its recovery
converts the files (recordings.janus_take) into each participant's file, listed in the
manifest."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import pytest

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from bench.media.split_media import SplitMedia
from pawhub.settings import Settings
from tests.e2e.hubs import start_hub_process
from tests.e2e.test_recording_recovery import read, recovered_after_a_restart
from tests.e2e.test_rtc_replicas import SHORT, kill
from tests.janus_process import Janus
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.rtc_client import enter_call, join
from tests.signaling.test_rtc_recording import consent, record
from tests.signaling.test_rtc_recording_media import BUCKET, LUMAS, decoded_lumas, ensure_bucket
from tests.waiting import eventually

pytestmark = pytest.mark.slow


async def test_what_janus_recorded_for_a_killed_hub_reaches_s3_after_a_restart(
    settings: Settings,
    pool: asyncpg.Pool,
    janus: Janus,
    s3_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    await ensure_bucket(s3_url)
    own = settings.model_copy(update={"redis_namespace": f"{settings.redis_namespace}-jrec"})
    disk = {
        "S3_ENDPOINT_URL": s3_url,
        "S3_BUCKET": BUCKET,
        "RECORDING_BUFFER_DIR": str(tmp_path / "buffer"),
        "JANUS_URL": janus.url,
    }
    consult = await make_video_consult(pool, settings.jwt_secret)
    doomed = await start_hub_process(own, **SHORT, **disk)
    vet = await RtcClient.connect(doomed.url, consult.vet.token)
    owner = await RtcClient.connect(doomed.url, consult.owner.token)
    media = [
        SplitMedia(vet, consult.id, LUMAS["vet"]),
        SplitMedia(owner, consult.id, LUMAS["owner"]),
    ]
    try:
        await join(vet, consult, mode="sfu")
        await enter_call(consult, vet, [(owner, consult.owner)])
        for member in media:
            member.publish()
        await eventually(
            lambda: (
                media[0].frames_from(LUMAS["owner"]) > 15
                and media[1].frames_from(LUMAS["vet"]) > 15
            ),
            "video both ways",
        )
        await consent(vet, consult.id, granted=True)
        await consent(owner, consult.id, granted=True)
        started = await record(vet, consult.id, "start")
        assert started["ok"], started
        recording_id = started["recording_id"]
        await asyncio.sleep(3)  # Janus records
        kill(doomed)
    finally:
        for member in media:
            await member.close()
        await vet.close()
        await owner.close()
        doomed.stop()

    directory = tmp_path / "buffer" / recording_id
    assert list(directory.glob("*/*.mjr")), "Janus wrote nothing where the hub reads"

    await recovered_after_a_restart(own, disk, directory)

    row = await pool.fetchrow(
        "SELECT state, manifest_key FROM recordings WHERE id = $1", recording_id
    )
    assert row is not None and row["state"] == "interrupted" and row["manifest_key"]
    files = await pool.fetch(
        "SELECT user_id, object_key FROM recording_files WHERE recording_id = $1", recording_id
    )
    names = {consult.vet.id: "vet", consult.owner.id: "owner"}
    assert {names[str(file["user_id"])] for file in files} == {"vet", "owner"}
    async with s3_session(s3_url) as s3:
        for file in files:
            who = names[str(file["user_id"])]
            path = tmp_path / f"{who}.webm"
            path.write_bytes(await read(s3, file["object_key"]))
            frames, luma, _ = decoded_lumas(path)
            assert frames >= 15, f"{who}: {frames} frames"
            assert abs(luma - LUMAS[who]) < 20, f"{who}'s file shows luma {luma:.0f}"
        manifest = json.loads(await read(s3, row["manifest_key"]))
    assert set(manifest["participants"]) == {consult.vet.id, consult.owner.id}
