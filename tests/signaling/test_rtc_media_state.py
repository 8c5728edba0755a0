"""`media {consult_id, audio, video}` (a contract extension): who has their microphone or camera
off is told to the others in the call, and to whoever comes in later."""

from __future__ import annotations

import asyncpg

from bench.media.consults import make_video_consult
from pawhub.settings import Settings
from tests.signaling.rtc_client import connected, enter_call, error_code, join


async def test_the_others_hear_of_a_muted_microphone_and_so_does_a_late_arrival(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    guest_person = consult.invited[0]
    async with connected(hub_url, consult.vet, consult.owner, guest_person) as (vet, owner, guest):
        await enter_call(consult, vet, [(owner, consult.owner)])
        muted = {"consult_id": consult.id, "audio": False, "video": True}
        assert (await vet.call("media", muted)) == {"ok": True}
        told = await owner.wait_for("media")
        assert told == {**muted, "user_id": consult.vet.id}
        assert not vet.received["media"]  # not echoed to its sender

        # The vet's join again on the same connection keeps the microphone off.
        await enter_call(consult, vet, [(guest, guest_person)])
        late = await guest.wait_for("media")
        assert late == {**muted, "user_id": consult.vet.id}

        camera_off = {"consult_id": consult.id, "audio": True, "video": False}
        assert (await owner.call("media", camera_off))["ok"]
        for other in (vet, guest):
            event = await other.wait_for("media", lambda e: e["user_id"] == consult.owner.id)
            assert event == {**camera_off, "user_id": consult.owner.id}
        told_guest = [(e["user_id"], e["audio"], e["video"]) for e in guest.received["media"]]
        assert told_guest == [(consult.vet.id, False, True), (consult.owner.id, True, False)]


async def test_bad_or_unplaced_media_is_refused_and_the_connection_stays(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.vet, consult.owner) as (vet, owner):
        assert error_code(await vet.call("media", {"consult_id": consult.id})) == "invalid"
        bad = {"consult_id": consult.id, "audio": "maybe", "video": True}
        assert error_code(await vet.call("media", bad)) == "invalid"
        state = {"consult_id": consult.id, "audio": False, "video": False}
        assert error_code(await vet.call("media", state)) in {"forbidden", "not_found"}
        await join(vet, consult)
        waiting = await join(owner, consult)
        assert waiting["waiting"] is True
        assert error_code(await owner.call("media", state)) == "forbidden"  # not let in yet
        assert (await vet.call("media", state))["ok"]
        await vet.call("admit", {"consult_id": consult.id, "user_id": consult.owner.id})
        told = await owner.wait_for("media")  # on coming in
        assert told == {**state, "user_id": consult.vet.id}
