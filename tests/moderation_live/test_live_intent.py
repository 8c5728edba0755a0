"""Intent through the live path (send -> stream -> scoring worker -> `flag` on a moderator's
socket) with the shipped learned model: a threat in each grammatical form that the send-path
rules let through is flagged within 2 s; tricky clinical messages of every species are not.

None of these messages is in the corpus.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from domain.identity import Role
from moderation.learned_model import Artefact
from tests.recording_client import ChatClient, ModeratorClient

pytestmark = pytest.mark.usefixtures("scoring_worker")

FLAG_WITHIN_S = 2.0  # generous: the goal is a p99 of 500 ms under load

# One threat per grammatical form, each worded so the pre-send rules do not refuse it: the
# learned model is what reads the intent.
THREATS = {
    "conditional": "If the anaesthetic goes wrong, that surgeon is getting hurt.",
    "future": "Next week the lads and I will put that vet in hospital.",
    "imperative": "Someone stab that vet for me.",
    "wished": "Hope your kids get run over.",
}

CLINICAL = {
    "dog": "My bitch is in season, when is the best day to take her to the stud?",
    "dog, euthanasia": "We've decided to put Bramble down on Friday, can the vet come to us?",
    "cat": "The cat killed a vole and now she's vomiting, could it be poisoned?",
    "cat, castration": "My tom is spraying and fighting, is it time to have his balls off?",
    "horse": "The old mare has to be destroyed, do you shoot or inject?",
    "stallion": "Our stallion's sheath is swollen after covering the mare.",
    "cattle": "The heifer's calf died inside her, can you come and get it out?",
    "cattle, slaughter": "How long before slaughter do we have to stop the penicillin?",
    "sheep": "Flystrike on the ewe, maggots eating her alive, what do I do?",
    "goat": "The billy goat keeps mounting the does and stinks, is that the rut?",
    "pig": "Can we castrate the piglets ourselves or does a vet have to do it?",
    "poultry": "Our cock has stopped crowing and the hens are pecking him bloody.",
    "parrot": "The parrot bit my lip and drew blood, is that hormonal?",
    "reptile": "The snake struck at me and won't eat the dead mice.",
    "rabbit": "Do I need to kill the fleas on the rabbit with something special?",
    "rodent": "The hamster ate her babies, is that because we touched the nest?",
    "exotic": "The ferret killed our pet rat, should we worry about disease?",
}


@pytest.fixture
async def moderator(chat_url: str, make_user: Any) -> Any:
    _, token = await make_user(Role.moderator, "Mo Derator")
    client = await ModeratorClient.connect(chat_url, token)
    assert (await client.call("subscribe", {}))["ok"]
    yield client
    await client.close()


async def _send(client: ChatClient, room_id: UUID, client_id: str, body: str) -> dict[str, Any]:
    ack = await client.call("send", {"room": str(room_id), "client_id": client_id, "body": body})
    assert ack["ok"], (body, ack)  # the send-path rules let it through: the model must read it
    message: dict[str, Any] = ack["message"]
    return message


@pytest.mark.parametrize("form", sorted(THREATS))
async def test_a_threat_in_each_grammatical_form_is_flagged_within_2_s(
    room: Any, connect: Any, moderator: ModeratorClient, form: str
) -> None:
    room_id, owner, _ = room
    alice = await connect(owner[1])
    await alice.call("join", {"room": str(room_id)})
    # The session's worker starts cold (a process pool loading the model): time it warm.
    warm_up = await _send(alice, room_id, "warm-up", "f4ck you, you useless quack")
    await moderator.wait_until("flag", lambda f: f["message"]["id"] == warm_up["id"], timeout=60)
    sent_at = time.monotonic()
    message = await _send(alice, room_id, form, THREATS[form])

    flag = await moderator.wait_until(
        "flag", lambda f: f["message"]["id"] == message["id"], timeout=FLAG_WITHIN_S
    )
    assert time.monotonic() - sent_at <= FLAG_WITHIN_S
    assert "threat" in flag["labels"] and flag["model"] == "vet-linear"
    assert flag["model_version"] == Artefact.load().meta["version"]  # features, recipe, corpus


async def test_tricky_clinical_messages_of_every_species_are_not_flagged(
    room: Any, connect: Any, moderator: ModeratorClient, pool: asyncpg.Pool
) -> None:
    room_id, owner, vet = room
    alice, bob = await connect(owner[1]), await connect(vet[1])
    for client in (alice, bob):
        await client.call("join", {"room": str(room_id)})
    clinical = [
        await _send(alice if index % 2 else bob, room_id, f"c{index}", body)
        for index, body in enumerate(CLINICAL.values())
    ]
    # A flagged message sent after them: once its flag is in, they have all been scored.
    last = await _send(alice, room_id, "last", "f4ck you, you useless quack")
    await moderator.wait_until("flag", lambda f: f["message"]["id"] == last["id"])
    await asyncio.sleep(0)

    ids = [UUID(message["id"]) for message in clinical]
    flagged = await pool.fetch(
        "SELECT m.body FROM flags f JOIN messages m ON m.id = f.message_id"
        " WHERE f.message_id = ANY($1::uuid[])",
        ids,
    )
    assert [row["body"] for row in flagged] == []
    scored = await pool.fetchval(
        "SELECT count(*) FROM messages"
        " WHERE id = ANY($1::uuid[]) AND moderated_revision IS NOT NULL",
        ids,
    )
    assert scored == len(CLINICAL)
    assert not [f for f in moderator.received["flag"] if UUID(f["message"]["id"]) in ids]
