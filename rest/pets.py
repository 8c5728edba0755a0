"""Pets and their health records."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, MediaType, Response, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from domain import ehr, pets
from domain.ehr import Amendment, NewAmendment, NewRecord, Record, RecordCorrection
from domain.permissions import may_own_pets, may_write_records
from domain.pets import NewPet, Pet, PetChanges
from rest.auth import SECURED, CurrentActor, CurrentPrincipal, Db
from rest.guards import role_allows
from rest.problems import problem_responses


class PetController(Controller):
    path = "/v1/pets"
    tags = ["pets"]
    security = SECURED

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
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def add_record(
        self, db: Db, actor: CurrentActor, pet_id: FromPath[UUID], data: JSONBody[NewRecord]
    ) -> Record:
        return await ehr.add_record(db, actor, pet_id, data.root)

    @get(
        "/{pet_id:uuid}/records",
        summary="The pet's health records, oldest first, with their amendments",
        responses={
            200: ResponseSpec(list[Record], description="The records", generate_examples=False),
            **problem_responses(400, 401, 404),
        },
    )
    async def list_records(
        self, db: Db, actor: CurrentActor, pet_id: FromPath[UUID]
    ) -> Response[bytes]:
        # PostgreSQL already built the JSON of list[Record]: send it as it is.
        return Response(
            (await ehr.list_records(db, actor, pet_id)).encode(), media_type=MediaType.JSON
        )


class RecordController(Controller):
    """Records are never deleted: DELETE answers 405."""

    path = "/v1/records"
    tags = ["pets"]
    security = SECURED

    @get("/{record_id:uuid}", responses=problem_responses(400, 401, 404))
    async def read(self, db: Db, actor: CurrentActor, record_id: FromPath[UUID]) -> Record:
        return await ehr.get_record(db, actor, record_id)

    @patch(
        "/{record_id:uuid}",
        summary="Correct a record within 24 hours of signing it (its author only)",
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def correct(
        self,
        db: Db,
        actor: CurrentActor,
        record_id: FromPath[UUID],
        data: JSONBody[RecordCorrection],
    ) -> Record:
        return await ehr.correct_record(db, actor, record_id, data)

    @post(
        "/{record_id:uuid}/amendments",
        summary="Amend a record; the original stays as signed",
        guards=[role_allows(may_write_records, "write health records")],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def amend(
        self, db: Db, actor: CurrentActor, record_id: FromPath[UUID], data: JSONBody[NewAmendment]
    ) -> Amendment:
        return await ehr.amend_record(db, actor, record_id, data)
