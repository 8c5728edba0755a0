"""Pets and their health records."""

from __future__ import annotations

from uuid import UUID

from litestar import MediaType, Request, get, patch, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.response.base import ASGIResponse

from domain.clinical import ehr, pets
from domain.clinical.ehr import RecordsRead
from domain.clinical.pets import NewPet, Pet, PetChanges
from domain.clinical.records import (
    Amendment,
    NewAmendment,
    NewRecord,
    Record,
    RecordCorrection,
)
from domain.identity.permissions import may_own_pets, may_write_records
from domain.identity.tokens import Principal
from rest.auth import CurrentActor, CurrentPrincipal, Db, provide_actor
from rest.clinical.attachments import PetRecordsController, Store
from rest.guards import role_allows
from rest.problems import problem_responses


class PetController(PetRecordsController):
    path = "/v1/pets"

    @post(
        guards=[role_allows(may_own_pets, "own pets")],
        responses=problem_responses(400, 401, 403),
    )
    async def create(self, db: Db, principal: CurrentPrincipal, data: JSONBody[NewPet]) -> Pet:
        return await pets.create_pet(db, principal.user_id, data)

    @get(summary="Pets the caller owns or has a booking with", responses=problem_responses(401))
    async def list_pets(self, db: Db, principal: CurrentPrincipal) -> list[Pet]:
        return await pets.list_pets(db, principal.user_id)

    @get("/{pet_id:uuid}", responses=problem_responses(400, 401, 404))
    async def read(self, db: Db, principal: CurrentPrincipal, pet_id: FromPath[UUID]) -> Pet:
        return await pets.get_pet(db, principal.user_id, pet_id)

    @patch("/{pet_id:uuid}", responses=problem_responses(400, 401, 403, 404))
    async def update(
        self,
        db: Db,
        principal: CurrentPrincipal,
        pet_id: FromPath[UUID],
        data: JSONBody[PetChanges],
    ) -> Pet:
        return await pets.update_pet(db, principal.user_id, pet_id, data)

    @post(
        "/{pet_id:uuid}/records",
        summary="Write a health record (vets with a booking for the pet)",
        description=(
            "An `attachment` names an object uploaded through `POST "
            "/v1/pets/{pet_id}/attachments`; it is refused (409) until that object is stored "
            "with the announced size and content type."
        ),
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    )
    async def add_record(
        self,
        db: Db,
        store: Store,
        actor: CurrentActor,
        pet_id: FromPath[UUID],
        data: JSONBody[NewRecord],
    ) -> Record:
        return await ehr.add_record(db, actor, pet_id, data.root, store)

    @get(
        "/{pet_id:uuid}/records",
        summary="The pet's health records, oldest first, with their amendments",
        responses={
            200: ResponseSpec(list[Record], description="The records", generate_examples=False),
            **problem_responses(400, 401, 404),
        },
    )
    async def list_records(
        self, request: Request[Principal, str, State], pet_id: FromPath[UUID]
    ) -> ASGIResponse:
        # The hottest read: concurrent reads share one statement and one commit (group
        # commit), outside the `db` dependency; the actor is read off the request directly
        # (resolving it as a dependency costs ~40 us a request). PostgreSQL already built the
        # JSON of list[Record]: it goes out as it is.
        read = RecordsRead(provide_actor(request), pet_id)
        records: str = await request.app.state.record_reads.submit(read)
        return ASGIResponse(body=records.encode(), media_type=MediaType.JSON)


class RecordController(PetRecordsController):
    """Records are never deleted: DELETE answers 405."""

    path = "/v1/records"

    @get(
        "/{record_id:uuid}",
        summary="A record; an attachment comes with a short-lived `download_url`",
        responses=problem_responses(400, 401, 404, 503),
    )
    async def read(
        self, db: Db, store: Store, actor: CurrentActor, record_id: FromPath[UUID]
    ) -> Record:
        return await ehr.get_record(db, actor, record_id, store)

    @patch(
        "/{record_id:uuid}",
        summary="Correct a record within 24 hours of signing it (its author only)",
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    )
    async def correct(
        self,
        db: Db,
        store: Store,
        actor: CurrentActor,
        record_id: FromPath[UUID],
        data: JSONBody[RecordCorrection],
    ) -> Record:
        return await ehr.correct_record(db, actor, record_id, data, store)

    @post(
        "/{record_id:uuid}/amendments",
        summary="Amend a record; the original stays as signed",
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
    )
    async def amend(
        self,
        db: Db,
        store: Store,
        actor: CurrentActor,
        record_id: FromPath[UUID],
        data: JSONBody[NewAmendment],
    ) -> Amendment:
        return await ehr.amend_record(db, actor, record_id, data, store)
