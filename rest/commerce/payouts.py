"""Vets' Stripe Connect accounts, set by an admin; consult fees and a vet's products are then
destination charges paying that account, the platform keeping PLATFORM_FEE_PERCENT."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from domain.commerce import payouts
from domain.commerce.payouts import PayoutAccount
from domain.identity import Role
from rest.auth import SECURED, CurrentPrincipal, Db
from rest.guards import role_allows
from rest.problems import problem_responses


class PayoutAccountController(Controller):
    path = "/v1/vets/{vet_id:uuid}/payout-account"
    tags = ["payments"]
    security = SECURED

    @put(
        summary="Set a vet's Stripe Connect account id, acct_... (admins only)",
        guards=[role_allows(payouts.may_manage_payouts, "set payout accounts")],
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def set_account(
        self, db: Db, vet_id: FromPath[UUID], data: JSONBody[PayoutAccount]
    ) -> PayoutAccount:
        return await payouts.set_payout_account(db, vet_id, data)

    @get(
        summary="A vet's Connect account (that vet or an admin)",
        responses=problem_responses(400, 401, 404),
    )
    async def read(
        self, db: Db, principal: CurrentPrincipal, vet_id: FromPath[UUID]
    ) -> PayoutAccount:
        if principal.role is not Role.admin and principal.user_id != vet_id:
            raise NotFoundException("no payout account")
        account = await payouts.get_payout_account(db, vet_id)
        if account is None:
            raise NotFoundException("no payout account")
        return account
