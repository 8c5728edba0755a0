"""A livekit call is recorded by LiveKit's egress, asked for by the hub at a local Twirp
endpoint that checks each request: a participant egress per person to the recordings' S3 bucket
while the recording records, all stopped by a pause (a withdrawal) and started anew on resume,
stopped again by `record stop`; LiveKit's signed `egress_ended` webhook completes each row, and
the owner's download lists the finished MP4 files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from livekit import api

from bench.media.consults import make_video_consult
from bench.media.rtc_client import RtcClient
from pawhub.settings import Settings
from signaling.modes import SFU_MAX_PARTICIPANTS
from tests.conftest import serve_api, start_hub
from tests.integrations.test_livekit import API_KEY, API_SECRET, FakeRoomService, signed_webhook
from tests.rest.test_attachments import s3_url  # noqa: F401 (moto's S3 server)
from tests.rest.test_recordings import s3_session
from tests.signaling.rtc_client import error_code, join
from tests.signaling.test_rtc_recording import consent, record, states_seen

BUCKET = "pawhub-livekit-recordings"


@pytest.fixture
async def livekit_recording_settings(
    settings: Settings,
    livekit_server: FakeRoomService,
    s3_url: str,  # noqa: F811
) -> Settings:
    async with s3_session(s3_url) as s3:
        if BUCKET not in {found["Name"] for found in (await s3.list_buckets())["Buckets"]}:
            await s3.create_bucket(Bucket=BUCKET)
    return settings.model_copy(
        update={
            "livekit_url": livekit_server.url,
            "livekit_api_key": API_KEY,
            "livekit_api_secret": API_SECRET,
            "s3_endpoint_url": s3_url,
            "s3_bucket": BUCKET,
            "s3_access_key_id": "pawhub-dev",
            "s3_secret_access_key": "pawhub-dev",
        }
    )


@pytest.fixture
async def hub(livekit_recording_settings: Settings) -> AsyncIterator[str]:
    runner, url = await start_hub(livekit_recording_settings)
    yield url
    await runner.cleanup()


def started_for(livekit: FakeRoomService, recording_id: str) -> dict[str, str]:
    """Who each participant egress started so far records, by the S3 key it writes."""
    starts = livekit.of("StartParticipantEgress")
    assert all(isinstance(start, api.ParticipantEgressRequest) for start in starts)
    return {
        start.file_outputs[0].filepath: start.identity  # type: ignore[attr-defined]
        for start in starts
        if start.file_outputs[0].filepath.startswith(f"recordings/{recording_id}/")  # type: ignore[attr-defined]
    }


async def test_a_livekit_call_is_recorded_by_egress_while_everyone_consents(
    hub: str,
    livekit_server: FakeRoomService,
    livekit_recording_settings: Settings,
    pool: asyncpg.Pool,
    settings: Settings,
    s3_url: str,  # noqa: F811
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=SFU_MAX_PARTICIPANTS - 1)
    vet = await RtcClient.connect(hub, consult.vet.token)
    owner = await RtcClient.connect(hub, consult.owner.token)
    try:
        assert (await join(vet, consult))["mode"] == "livekit"
        await join(owner, consult)
        assert (await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id}))[
            "ok"
        ]
        await owner.wait_for("admitted")
        await consent(vet, consult.id, granted=True)
        assert error_code(await record(vet, consult.id, "start")) == "consent_required"
        assert livekit_server.of("StartParticipantEgress") == []

        await consent(owner, consult.id, granted=True)
        started = await record(vet, consult.id, "start")
        assert started["ok"], started
        recording_id = started["recording_id"]
        first = started_for(livekit_server, recording_id)
        assert sorted(first.values()) == sorted([consult.vet.id, consult.owner.id])
        for start in livekit_server.of("StartParticipantEgress"):
            assert isinstance(start, api.ParticipantEgressRequest)
            assert start.room_name == f"consult-{consult.id}"
            [output] = start.file_outputs
            assert output.file_type == api.EncodedFileType.MP4
            assert output.filepath.endswith(".mp4")
            assert (output.s3.bucket, output.s3.endpoint) == (BUCKET, s3_url)
            assert output.s3.force_path_style and output.s3.access_key == "pawhub-dev"
        assert all(call.grants.room_record for call in livekit_server.calls[-2:])

        await consent(owner, consult.id, granted=False)  # a pause stops every egress
        assert (await states_seen(vet, 2))[-1] == "paused"
        assert livekit_server.egresses == set()
        assert len(livekit_server.of("StopEgress")) == 2

        await consent(owner, consult.id, granted=True)  # a resume starts new ones
        assert (await states_seen(vet, 3))[-1] == "recording"
        resumed = started_for(livekit_server, recording_id)
        assert len(resumed) == 4 and len(livekit_server.egresses) == 2

        assert (await record(vet, consult.id, "stop"))["ok"]
        assert (await states_seen(vet, 4))[-1] == "stopped"
        assert livekit_server.egresses == set()
    finally:
        await vet.close()
        await owner.close()

    rows = await pool.fetch(
        "SELECT egress_id, user_id, object_key, status FROM recording_egresses"
        " WHERE recording_id = $1 ORDER BY started_at",
        recording_id,
    )
    assert {row["object_key"]: str(row["user_id"]) for row in rows} == resumed
    assert {row["status"] for row in rows} == {"active"}  # until LiveKit says they ended

    # LiveKit reports each egress ended: the owner's first with its file, the rest failed.
    owner_first = next(row for row in rows if str(row["user_id"]) == consult.owner.id)
    async with serve_api(livekit_recording_settings) as api_url:
        for row in rows:
            done = row["egress_id"] == owner_first["egress_id"]
            info = api.EgressInfo(
                egress_id=row["egress_id"],
                status=api.EgressStatus.EGRESS_COMPLETE if done else api.EgressStatus.EGRESS_FAILED,
                error="" if done else "participant left",
                file_results=[api.FileInfo(size=123_456, duration=8_500_000_000)] if done else [],
            )
            event = api.WebhookEvent(
                event="egress_ended", id=f"EV_{row['egress_id']}", egress_info=info
            )
            body, authorization = signed_webhook(event)
            headers = {"Authorization": authorization, "Content-Type": "application/webhook+json"}
            async with aiohttp.ClientSession() as http:
                for _ in range(2):  # LiveKit retries deliveries: the second changes nothing
                    async with http.post(
                        f"{api_url}/v1/webhooks/livekit", data=body, headers=headers
                    ) as reply:
                        assert reply.status == 200, await reply.text()

        ended = await pool.fetch(
            "SELECT egress_id, status, size_bytes, duration_s, error FROM recording_egresses"
            " WHERE recording_id = $1",
            recording_id,
        )
        by_id = {row["egress_id"]: row for row in ended}
        mine = by_id[owner_first["egress_id"]]
        assert (mine["status"], mine["size_bytes"], mine["duration_s"]) == (
            "complete",
            123_456,
            8.5,
        )
        assert all(
            row["status"] == "failed" and row["error"] == "participant left"
            for egress_id, row in by_id.items()
            if egress_id != owner_first["egress_id"]
        )

        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {consult.owner.token}"}
            async with http.get(
                f"{api_url}/v1/recordings/{recording_id}/download", headers=headers
            ) as reply:
                assert reply.status == 200, await reply.text()
                download = await reply.json()
    [file] = download["files"]
    assert (file["user_id"], file["content_type"], file["duration_s"]) == (
        consult.owner.id,
        "video/mp4",
        8.5,
    )
    assert owner_first["object_key"] in file["url"]
    assert UUID(recording_id)
