"""Wellness plans: owners subscribe a pet to the monthly plan and cancel it; the status shown
is Stripe's, mirrored from its answers and webhooks."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException
from litestar.params import FromPath, JSONBody

from domain.commerce import wellness_plans
from domain.commerce.wellness_plans import NewPlan, PlanCancellation, PlanSubscription
from domain.identity.permissions import may_own_pets
from rest.auth import SECURED, CurrentPrincipal, Db
from rest.commerce.payments import STRIPE_DEPENDENCIES, Stripe
from rest.config import settings_of
from rest.guards import role_allows
from rest.problems import problem_responses


class WellnessPlanController(Controller):
    path = "/v1/wellness-plans"
    tags = ["payments"]
    security = SECURED
    dependencies = STRIPE_DEPENDENCIES
    guards = [role_allows(may_own_pets, "subscribe pets to plans")]

    @post(
        summary="Subscribe one of the caller's pets to the monthly wellness plan",
        description=(
            "Charges the owner's saved card through a Stripe subscription; when it cannot, "
            "the plan is `incomplete` and `client_secret` lets Stripe.js pay the first invoice. "
            "409 while the pet has a live plan; 503 when no plan is configured."
        ),
        responses=problem_responses(400, 401, 403, 404, 409, 502, 503),
    )
    async def subscribe(
        self,
        db: Db,
        state: State,
        stripe_api: Stripe,
        principal: CurrentPrincipal,
        data: JSONBody[NewPlan],
    ) -> PlanSubscription:
        settings = settings_of(state)
        await wellness_plans.check_pet(db, principal.user_id, data.pet_id)
        if not settings.wellness_plan_price_id:
            raise ServiceUnavailableException("no wellness plan is configured")
        return await wellness_plans.subscribe(
            db, stripe_api, principal.user_id, data, settings.wellness_plan_price_id
        )

    @get(summary="The caller's plans", responses=problem_responses(401, 403))
    async def list_plans(self, db: Db, principal: CurrentPrincipal) -> list[PlanSubscription]:
        return await wellness_plans.plans_of(db, principal.user_id)

    @post(
        "/{subscription_id:str}/cancel",
        status_code=200,
        summary="Cancel the caller's plan, by default at the end of the paid period",
        responses=problem_responses(400, 401, 403, 404, 502),
    )
    async def cancel(
        self,
        db: Db,
        stripe_api: Stripe,
        principal: CurrentPrincipal,
        subscription_id: FromPath[str],
        data: JSONBody[PlanCancellation | None] = None,
    ) -> PlanSubscription:
        return await wellness_plans.cancel(
            db, stripe_api, principal.user_id, subscription_id, data or PlanCancellation()
        )
