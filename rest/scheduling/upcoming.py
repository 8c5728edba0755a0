"""`GET /v1/consults`: the caller's upcoming consults, for the home page's `Join consult` links."""

from __future__ import annotations

from litestar import get

from domain.scheduling.upcoming import UpcomingConsult, upcoming_for
from rest.auth import SECURED, CurrentPrincipal, Db
from rest.problems import problem_responses


@get(
    "/v1/consults",
    tags=["scheduling"],
    security=SECURED,
    summary="The caller's consults not yet ended, soonest first, with pet, vet and owner names",
    responses=problem_responses(401),
)
async def upcoming_consults(db: Db, principal: CurrentPrincipal) -> list[UpcomingConsult]:
    return await upcoming_for(db, principal.user_id)
