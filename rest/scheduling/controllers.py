"""Vets' availability and slots, bookings, and the consults video bookings open."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get, post, put
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath, JSONBody, QueryParameter
from pydantic import BaseModel, ConfigDict

from domain.commerce import booking_fees
from domain.commerce.booking_fees import PaidBooking
from domain.errors import NotFound
from domain.identity.permissions import may_book, may_set_availability
from domain.scheduling import bookings, consults
from domain.scheduling.availability import Availability, get_availability, set_availability
from domain.scheduling.booking_rules import BookingStatus, NewBooking, Slot
from domain.scheduling.consults import Consult
from rest.auth import SECURED, CurrentPrincipal, Db
from rest.commerce.payments import FEE_DEPENDENCIES, ConsultFeeTerms, Stripe
from rest.guards import role_allows
from rest.problems import problem_responses


class VetController(Controller):
    path = "/v1/vets/{vet_id:uuid}"
    tags = ["scheduling"]
    security = SECURED

    @put(
        "/availability",
        summary="Publish a vet's weekly hours and exceptions (that vet or an admin)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def publish(
        self,
        db: Db,
        principal: CurrentPrincipal,
        vet_id: FromPath[UUID],
        data: JSONBody[Availability],
    ) -> Availability:
        if not may_set_availability(principal, vet_id):
            raise PermissionDeniedException("only that vet or an admin may publish their hours")
        return await set_availability(db, vet_id, data)

    @get("/availability", responses=problem_responses(400, 401, 404))
    async def availability(self, db: Db, vet_id: FromPath[UUID]) -> Availability:
        found = await get_availability(db, vet_id)
        if found is None:
            raise NotFound("this vet has published no availability")
        return found

    @get(
        "/slots",
        summary="Free slots between two instants, in UTC",
        responses=problem_responses(400, 401, 404, 422),
    )
    async def slots(
        self,
        db: Db,
        vet_id: FromPath[UUID],
        from_: Annotated[datetime, QueryParameter(name="from", description="ISO 8601 with offset")],
        to: Annotated[
            datetime, QueryParameter(description="ISO 8601 with offset, at most 31 days on")
        ],
        duration_min: Annotated[int, QueryParameter(ge=5, le=480)] = 30,
    ) -> list[Slot]:
        return await bookings.list_slots(db, vet_id, from_, to, duration_min)


class BookingController(Controller):
    path = "/v1/bookings"
    tags = ["scheduling"]
    security = SECURED
    dependencies = FEE_DEPENDENCIES

    @post(
        summary="Book a vet for one of the caller's pets (409 when the time is taken)",
        description=(
            "A video booking with a consult fee (CONSULT_FEE_MINOR > 0) holds it with a "
            "manual-capture PaymentIntent: `fee.client_secret` is for Stripe.js to authorise "
            "the owner's card. When Stripe refuses, the booking is cancelled and the answer "
            "is 502."
        ),
        guards=[role_allows(may_book, "book consults")],
        responses=problem_responses(400, 401, 403, 404, 409, 422, 502),
    )
    async def create(
        self,
        db: Db,
        stripe_api: Stripe,
        fee_terms: ConsultFeeTerms,
        principal: CurrentPrincipal,
        data: JSONBody[NewBooking],
    ) -> PaidBooking:
        return await booking_fees.book(db, stripe_api, principal.user_id, data, fee_terms)

    @get("/{booking_id:uuid}", responses=problem_responses(400, 401, 404))
    async def read(
        self, db: Db, principal: CurrentPrincipal, booking_id: FromPath[UUID]
    ) -> PaidBooking:
        return await booking_fees.read(db, principal.user_id, booking_id)

    @post(
        "/{booking_id:uuid}/cancel",
        status_code=200,
        summary="Cancel (owner or vet), releasing a held fee; the booking and its history stay",
        responses=problem_responses(400, 401, 404, 409, 502),
    )
    async def cancel(
        self, db: Db, stripe_api: Stripe, principal: CurrentPrincipal, booking_id: FromPath[UUID]
    ) -> PaidBooking:
        return await booking_fees.cancel(db, stripe_api, principal.user_id, booking_id)

    @post(
        "/{booking_id:uuid}/complete",
        status_code=200,
        summary="Mark a confirmed booking completed, capturing its fee (its vet or an admin)",
        description="409 while the owner has not authorised the consult fee.",
        responses=problem_responses(400, 401, 403, 404, 409, 502),
    )
    async def complete(
        self, db: Db, stripe_api: Stripe, principal: CurrentPrincipal, booking_id: FromPath[UUID]
    ) -> PaidBooking:
        return await booking_fees.record_outcome(
            db, stripe_api, principal, booking_id, BookingStatus.completed
        )

    @post(
        "/{booking_id:uuid}/no-show",
        status_code=200,
        summary="Mark a started booking a no-show, releasing its fee (its vet or an admin)",
        responses=problem_responses(400, 401, 403, 404, 409, 502),
    )
    async def no_show(
        self, db: Db, stripe_api: Stripe, principal: CurrentPrincipal, booking_id: FromPath[UUID]
    ) -> PaidBooking:
        return await booking_fees.record_outcome(
            db, stripe_api, principal, booking_id, BookingStatus.no_show
        )


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UUID


class ConsultController(Controller):
    path = "/v1/consults/{consult_id:uuid}"
    tags = ["scheduling"]
    security = SECURED

    @get(
        summary="A consult its participants see; `room` is its chat room",
        responses=problem_responses(400, 401, 404),
    )
    async def read(
        self, db: Db, principal: CurrentPrincipal, consult_id: FromPath[UUID]
    ) -> Consult:
        return await consults.consult_for(db, principal.user_id, consult_id)

    @post(
        "/participants",
        summary="Invite someone to the consult's call (its vet or owner)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def invite(
        self,
        db: Db,
        principal: CurrentPrincipal,
        consult_id: FromPath[UUID],
        data: JSONBody[Invitation],
    ) -> Consult:
        return await consults.invite(db, principal.user_id, consult_id, data.user_id)
