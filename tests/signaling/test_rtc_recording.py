"""`consent` and `record` on `/rtc`: recording only while everyone in the call consents, paused
by a late joiner or a withdrawal, stopped by the vet or their leaving; every change stored and
told to those in the call, every consent in an append-only ledger."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from bench.media.consults import VideoConsult, make_video_consult
from bench.media.rtc_client import RtcClient
from domain.recordings import repository
from domain.recordings.consent import NOTICE_VERSION
from domain.recordings.lifecycle import RecordingState
from pawhub.settings import Settings
from tests.signaling.rtc_client import connected, enter_call, error_code, join


async def consent(client: RtcClient, consult_id: str, *, granted: bool) -> None:
    assert await client.call("consent", {"consult_id": consult_id, "granted": granted}) == {
        "ok": True
    }


async def record(client: RtcClient, consult_id: str, action: str) -> dict[str, Any]:
    return await client.call("record", {"consult_id": consult_id, "action": action})


async def states_seen(client: RtcClient, count: int) -> list[str]:
    """The states of the first `count` `recording` events the client received."""
    await client.wait_for("recording", lambda _: len(client.received["recording"]) >= count)
    return [event["state"] for event in client.received["recording"]]


@contextlib.asynccontextmanager
async def call_with_a_latecomer(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[tuple[VideoConsult, RtcClient, RtcClient, RtcClient]]:
    """A consult with one invited guest: its vet and owner in the call, the guest connected
    and not yet joined."""
    consult = await make_video_consult(pool, settings.jwt_secret, invited=1)
    async with connected(hub_url, consult.vet, consult.owner, consult.invited[0]) as clients:
        vet, owner, late = clients
        await enter_call(consult, vet, [(owner, consult.owner)])
        yield consult, vet, owner, late


async def test_recording_follows_everyone_s_consent(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with call_with_a_latecomer(hub_url, pool, settings) as (consult, vet, owner, late):
        guest = consult.invited[0]

        refused = await record(vet, consult.id, "start")
        assert error_code(refused) == "consent_required"
        assert sorted(refused["missing"]) == sorted([consult.vet.id, consult.owner.id])
        assert "Olive Owner" in refused["error"]["message"]
        await consent(vet, consult.id, granted=True)
        assert await owner.wait_for("consent") == {
            "consult_id": consult.id,
            "user_id": consult.vet.id,
            "granted": True,
        }
        refused = await record(vet, consult.id, "start")
        assert refused["missing"] == [consult.owner.id]
        await consent(owner, consult.id, granted=True)

        started = await record(vet, consult.id, "start")
        assert started["ok"], started
        recording_id = started["recording_id"]
        assert await owner.wait_for("recording") == {
            "consult_id": consult.id,
            "state": "recording",
            "recording_id": recording_id,
        }
        again = await record(vet, consult.id, "start")
        assert again == {"ok": True, "recording_id": recording_id}

        await enter_call(consult, vet, [(late, guest)])  # joins without consent: paused
        assert await states_seen(owner, 2) == ["recording", "paused"]
        assert (await late.wait_for("recording"))["state"] == "paused"
        await consent(late, consult.id, granted=True)
        assert await states_seen(owner, 3) == ["recording", "paused", "recording"]

        await consent(owner, consult.id, granted=False)  # a withdrawal pauses
        assert await states_seen(vet, 4) == ["recording", "paused", "recording", "paused"]
        assert (await vet.wait_for("consent", lambda e: not e["granted"]))["user_id"] == (
            consult.owner.id
        )
        await consent(owner, consult.id, granted=True)
        assert await states_seen(late, 4) == ["paused", "recording", "paused", "recording"]

        stopped = await record(vet, consult.id, "stop")
        assert stopped == {"ok": True, "recording_id": recording_id}
        assert (await states_seen(owner, 6))[-1] == "stopped"
        assert error_code(await record(vet, consult.id, "stop")) == "conflict"

    stored = await repository.get(pool, UUID(recording_id))
    assert stored is not None
    assert stored.state is RecordingState.stopped
    assert stored.started_by == consult.vet.user.id == stored.stopped_by
    assert stored.stopped_at is not None and stored.duration_s > 0
    history = await repository.events(pool, stored.id)
    assert [state for state, _, _ in history] == [
        "recording",
        "paused",
        "recording",
        "paused",
        "recording",
        "stopped",
    ]
    assert history[3][1:] == (consult.owner.user.id, "consent withdrawn")
    ledger = await pool.fetch(
        "SELECT user_id, granted, notice_version, ip FROM consent_ledger"
        " WHERE consult_id = $1 ORDER BY id",
        UUID(consult.id),
    )
    assert [(row["user_id"], row["granted"]) for row in ledger] == [
        (consult.vet.user.id, True),
        (consult.owner.user.id, True),
        (guest.user.id, True),
        (consult.owner.user.id, False),
        (consult.owner.user.id, True),
    ]
    assert {row["notice_version"] for row in ledger} == {NOTICE_VERSION}
    assert {row["ip"] for row in ledger} == {"127.0.0.1"}


async def test_only_the_vet_records_and_their_leaving_stops_it(
    hub_url: str, pool: asyncpg.Pool, settings: Settings
) -> None:
    async with call_with_a_latecomer(hub_url, pool, settings) as (consult, vet, owner, late):
        guest = consult.invited[0]
        assert error_code(await record(owner, consult.id, "start")) == "forbidden"
        assert error_code(await record(vet, consult.id, "stop")) == "conflict"
        bad = {"consult_id": consult.id, "action": "rewind"}
        assert error_code(await vet.call("record", bad)) == "invalid"
        for client in (vet, owner):
            await consent(client, consult.id, granted=True)
        recording_id = (await record(vet, consult.id, "start"))["recording_id"]

        await enter_call(consult, vet, [(late, guest)])
        assert await states_seen(owner, 2) == ["recording", "paused"]
        assert (await late.call("leave", {"consult_id": consult.id}))["ok"]
        assert await states_seen(owner, 3) == ["recording", "paused", "recording"]

        assert (await vet.call("leave", {"consult_id": consult.id}))["ok"]
        assert await owner.wait_for("recording", lambda e: e["state"] == "stopped") == {
            "consult_id": consult.id,
            "state": "stopped",
            "recording_id": recording_id,
        }
        await join(vet, consult)
        assert error_code(await record(vet, consult.id, "stop")) == "conflict"
    history = await repository.events(pool, UUID(recording_id))
    assert history[-1] == (RecordingState.stopped, consult.vet.user.id, "the vet left")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_ledger SET granted = true",
        "DELETE FROM consent_ledger",
        "TRUNCATE consent_ledger",
    ],
)
async def test_the_consent_ledger_is_append_only(
    hub_url: str, pool: asyncpg.Pool, settings: Settings, statement: str
) -> None:
    consult = await make_video_consult(pool, settings.jwt_secret)
    async with connected(hub_url, consult.owner) as (owner,):
        assert (await join(owner, consult))["waiting"] is True
        await consent(owner, consult.id, granted=False)  # from the lobby
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await pool.execute(statement)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM consent_ledger WHERE consult_id = $1", UUID(consult.id)
        )
        == 1
    )
