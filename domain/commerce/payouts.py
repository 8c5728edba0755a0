"""Vets are paid through Stripe Connect destination charges: a PaymentIntent for something a vet
sells (a consult, a vet's product) names the vet's connected account in
`transfer_data.destination` and keeps the platform's share as `application_fee_amount`."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated
from uuid import UUID

from asyncpg import UniqueViolationError
from pydantic import BaseModel, ConfigDict, StringConstraints
from stripe.params import PaymentIntentCreateParams

from domain.db import Db
from domain.errors import Conflict, NotFound
from domain.identity import Role

DEFAULT_PLATFORM_FEE_PERCENT = 10.0
AccountId = Annotated[str, StringConstraints(pattern=r"^acct_[A-Za-z0-9]{1,64}$")]


class PayoutAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stripe_account_id: AccountId


@dataclass(frozen=True)
class Destination:
    """Where a charge's money goes, and what the platform keeps of it."""

    account_id: str
    application_fee_minor: int

    def apply_to(self, params: PaymentIntentCreateParams) -> None:
        """Make a PaymentIntent's create parameters a destination charge to this account."""
        params["transfer_data"] = {"destination": self.account_id}
        params["application_fee_amount"] = self.application_fee_minor


def may_manage_payouts(role: Role) -> bool:
    return role is Role.admin


def platform_fee(amount_minor: int, percent: float) -> int:
    """The platform's share of an amount, rounded half up to a minor unit."""
    share = Decimal(amount_minor) * Decimal(str(percent)) / 100
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def set_payout_account(db: Db, vet_id: UUID, account: PayoutAccount) -> PayoutAccount:
    is_vet = await db.fetchval("SELECT role = 'vet' FROM users WHERE id = $1", vet_id)
    if not is_vet:
        raise NotFound("no such vet")
    try:
        await db.execute(
            """INSERT INTO vet_payout_accounts (vet_id, stripe_account_id) VALUES ($1, $2)
               ON CONFLICT (vet_id) DO UPDATE
                   SET stripe_account_id = EXCLUDED.stripe_account_id, updated_at = now()""",
            vet_id,
            account.stripe_account_id,
        )
    except UniqueViolationError as exc:
        raise Conflict("that account already pays another vet") from exc
    return account


async def get_payout_account(db: Db, vet_id: UUID) -> PayoutAccount | None:
    account_id = await db.fetchval(
        "SELECT stripe_account_id FROM vet_payout_accounts WHERE vet_id = $1", vet_id
    )
    return PayoutAccount(stripe_account_id=account_id) if account_id else None


async def destination_for(
    db: Db, vet_id: UUID | None, amount_minor: int, percent: float
) -> Destination | None:
    """The destination charge paying `vet_id`, or None (no vet, or no connected account yet:
    the platform keeps the charge and pays the vet outside Stripe)."""
    if vet_id is None:
        return None
    account = await get_payout_account(db, vet_id)
    if account is None:
        return None
    return Destination(account.stripe_account_id, platform_fee(amount_minor, percent))
