"""Vets are paid through Connect destination charges. localstripe refuses `transfer_data` and
`application_fee_amount` (asserted below), so the request shape of those PaymentIntents is
checked against a recording fake of Stripe, behind the live API."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest
import stripe

from domain.commerce.payouts import platform_fee
from domain.identity import Role
from tests.payments.conftest import CONSULT_FEE, consult_parties, place_order
from tests.payments.fake_stripe import FakeStripe
from tests.rest.conftest import MakeUser, bearer


async def test_an_admin_sets_a_vets_connect_account(
    api: httpx.AsyncClient, make_user: MakeUser
) -> None:
    _, admin = await make_user(Role.admin)
    vet, vet_token = await make_user(Role.vet)
    owner, owner_token = await make_user(Role.owner)
    _, other_vet = await make_user(Role.vet)
    path = f"/v1/vets/{vet.id}/payout-account"
    account = {"stripe_account_id": "acct_1VetPayouts"}
    for token in (vet_token, owner_token):
        assert (await api.put(path, json=account, headers=bearer(token))).status_code == 403
    assert (await api.get(path, headers=bearer(vet_token))).status_code == 404
    bad = await api.put(path, json={"stripe_account_id": "bogus"}, headers=bearer(admin))
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    not_a_vet = await api.put(
        f"/v1/vets/{owner.id}/payout-account", json=account, headers=bearer(admin)
    )
    assert not_a_vet.status_code == 404
    assert (await api.put(path, json=account, headers=bearer(admin))).json() == account
    assert (await api.get(path, headers=bearer(vet_token))).json() == account
    assert (await api.get(path, headers=bearer(admin))).json() == account
    assert (await api.get(path, headers=bearer(other_vet))).status_code == 404
    another, _ = await make_user(Role.vet)
    taken = await api.put(
        f"/v1/vets/{another.id}/payout-account", json=account, headers=bearer(admin)
    )
    assert taken.status_code == 409


async def _connect(api: httpx.AsyncClient, admin: str, vet_id: object) -> str:
    account = f"acct_{uuid4().hex[:16]}"
    response = await api.put(
        f"/v1/vets/{vet_id}/payout-account",
        json={"stripe_account_id": account},
        headers=bearer(admin),
    )
    assert response.status_code == 200, response.text
    return account


async def test_a_connected_vets_consult_fee_is_a_destination_charge(
    fake_stripe_api: tuple[FakeStripe, httpx.AsyncClient], make_user: MakeUser
) -> None:
    fake, api = fake_stripe_api
    _, admin = await make_user(Role.admin)
    parties = await consult_parties(api, make_user)
    account = await _connect(api, admin, parties.vet.id)
    booked = await parties.book(10)
    assert booked.status_code == 201, booked.text
    [intent] = fake.to("/v1/payment_intents")
    assert intent.idempotency_key == f"pawhub-consult-fee-{booked.json()['id']}"
    assert intent.form["capture_method"] == "manual"
    assert intent.form["transfer_data[destination]"] == account
    assert intent.form["application_fee_amount"] == str(platform_fee(CONSULT_FEE, 10.0)) == "450"


async def test_an_order_of_a_vets_products_pays_the_vet(
    fake_stripe_api: tuple[FakeStripe, httpx.AsyncClient], make_user: MakeUser
) -> None:
    fake, api = fake_stripe_api
    _, admin = await make_user(Role.admin)
    vet, _ = await make_user(Role.vet)
    _, buyer = await make_user(Role.owner)
    account = await _connect(api, admin, vet.id)
    variant = {"sku": uuid4().hex, "name": "1", "price_minor": 1234, "currency": "eur", "stock": 5}
    product = {"name": "Treats", "kind": "food", "variants": [variant]}
    vets = await api.post(
        "/v1/admin/products", json={**product, "vet_id": str(vet.id)}, headers=bearer(admin)
    )
    platform = await api.post(
        "/v1/admin/products",
        json={**product, "variants": [{**variant, "sku": uuid4().hex}]},
        headers=bearer(admin),
    )
    vets_variant = vets.json()["variants"][0]["id"]
    for variant_id in (vets_variant, platform.json()["variants"][0]["id"]):
        await place_order(api, buyer, variant_id, 3)
    to_vet, to_platform = fake.to("/v1/payment_intents")
    assert to_vet.form["amount"] == "3702"
    assert to_vet.form["transfer_data[destination]"] == account
    assert to_vet.form["application_fee_amount"] == "370"
    assert "transfer_data[destination]" not in to_platform.form
    assert "application_fee_amount" not in to_platform.form
    mixed = await api.post(
        "/v1/orders",
        json={
            "items": [
                {"variant_id": vets_variant, "quantity": 1},
                {"variant_id": platform.json()["variants"][0]["id"], "quantity": 1},
            ]
        },
        headers=bearer(buyer),
    )
    assert mixed.status_code == 422


async def test_localstripe_lacks_destination_charges(stripe_api: stripe.StripeClient) -> None:
    """Why the fake above: if localstripe learns these parameters, test them there instead."""
    with pytest.raises(stripe.InvalidRequestError):
        await stripe_api.v1.payment_intents.create_async(
            {
                "amount": 1000,
                "currency": "eur",
                "transfer_data": {"destination": "acct_1VetPayouts"},
                "application_fee_amount": 100,
            }
        )


def test_the_platform_fee_rounds_half_up() -> None:
    assert platform_fee(4500, 10.0) == 450
    assert platform_fee(3702, 10.0) == 370
    assert platform_fee(1005, 5.0) == 50  # 50.25
    assert platform_fee(1010, 2.5) == 25  # 25.25
    assert platform_fee(30, 5.0) == 2  # 1.5 rounds up
    assert platform_fee(999, 0) == 0
