"""The lobby's `deny`: the vet turns a waiting person away; they are told why, leave the lobby
and may come back later to wait again. Only the vet denies, and only someone who waits."""

from __future__ import annotations

from uuid import uuid4

import asyncpg

from bench.media.consults import make_video_consult
from pawhub.settings import Settings
from signaling.payloads import MAX_REASON_CHARS
from tests.signaling.rtc_client import MINIMAL_SDP, connected, enter_call, error_code, join


async def test_a_denied_owner_is_told_leaves_the_lobby_and_may_wait_again(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.vet, consult.owner) as (vet, owner):
        await join(vet, consult)
        assert (await join(owner, consult))["waiting"] is True
        await vet.wait_for("lobby")

        deny = {"consult_id": consult.id, "user_id": consult.owner.id, "reason": "wrong pet"}
        assert await vet.call("deny", deny) == {"ok": True}
        assert await owner.wait_for("denied") == {"consult_id": consult.id, "reason": "wrong pet"}
        left = await vet.wait_for("lobby_left")
        assert left == {"consult_id": consult.id, "user_id": consult.owner.id}
        assert (await join(vet, consult))["lobby"] == []  # nobody waits any more
        offer = {"type": "offer", "sdp": MINIMAL_SDP}
        signal = {"consult_id": consult.id, "to": consult.vet.id, "description": offer}
        assert error_code(await owner.call("signal", signal)) == "forbidden"
        assert error_code(await vet.call("deny", deny)) == "not_found"  # already gone

        again = await join(owner, consult)  # later, the owner tries again and waits
        assert again["waiting"] is True and again["peers"] == []
        entry = {"consult_id": consult.id, "user_id": consult.owner.id, "name": "Olive Owner"}
        assert vet.received["lobby"].count(entry) == 2
        assert (await join(vet, consult))["lobby"] == [entry]
        no_reason = {"consult_id": consult.id, "user_id": consult.owner.id}
        assert (await vet.call("deny", no_reason))["ok"]
        await owner.wait_for("denied", lambda event: event["reason"] is None)
        assert owner.sio.connected and not owner.received["admitted"]


async def test_only_the_vet_denies_and_only_someone_waiting(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    (guest_person,) = consult.invited
    people = (consult.vet, consult.owner, guest_person)
    async with connected(hub_url, *people) as (vet, owner, guest):
        await enter_call(consult, vet, [(owner, consult.owner)])
        assert (await join(guest, consult))["waiting"] is True
        deny_guest = {"consult_id": consult.id, "user_id": guest_person.id}
        assert error_code(await owner.call("deny", deny_guest)) == "forbidden"
        assert error_code(await guest.call("deny", deny_guest)) == "forbidden"

        for someone in (consult.owner.id, consult.vet.id, str(uuid4())):  # in, or unknown
            refused = await vet.call("deny", {"consult_id": consult.id, "user_id": someone})
            assert error_code(refused) == "not_found", someone
        too_long = {**deny_guest, "reason": "x" * (MAX_REASON_CHARS + 1)}
        assert error_code(await vet.call("deny", too_long)) == "invalid"

        assert not guest.received["denied"] and not owner.received["denied"]
        assert (await join(guest, consult))["waiting"] is True  # still waiting
        assert all(client.sio.connected for client in (vet, owner, guest))
