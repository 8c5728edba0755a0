"""Payments fixtures: localstripe on a local port, the API with the marketplace routes on a real
port, products in stock, and Stripe webhook deliveries signed with the stripe library's helper."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
import stripe

from deploy.embedded import free_port
from domain.commerce.catalog import NewProduct, NewVariant, Product, ProductKind, create_product
from domain.commerce.payments import stripe_client
from domain.identity import Role, User
from pawhub.settings import Settings
from tests.conftest import serve_api
from tests.payments.fake_stripe import FakeStripe, serve_fake_stripe
from tests.rest.conftest import ALWAYS_OPEN, MakeUser, bearer, book, tomorrow_at

WEBHOOK_SECRET = "whsec_pawhub_test_secret"


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "localstripe exited during start-up"
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{url}/v1/customers", auth=("sk_test_pawhub", ""))
            break
        assert time.monotonic() < deadline, "localstripe did not start"
        time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(10)
    log.close()


@pytest.fixture(scope="session")
def pay_settings(settings: Settings, localstripe_url: str) -> Settings:
    return settings.model_copy(
        update={
            "stripe_api_key": "sk_test_pawhub",
            "stripe_api_base": localstripe_url,
            "stripe_webhook_secret": WEBHOOK_SECRET,
        }
    )


@pytest.fixture(scope="session")
def stripe_api(pay_settings: Settings) -> stripe.StripeClient:
    return stripe_client(pay_settings.stripe_api_key, pay_settings.stripe_api_base)


@pytest.fixture(scope="session")
async def pay_api_url(pay_settings: Settings) -> AsyncIterator[str]:
    async with serve_api(pay_settings) as url:
        yield url


@pytest.fixture(scope="session")
async def fee_api_url(fee_settings: Settings) -> AsyncIterator[str]:
    async with serve_api(fee_settings) as url:
        yield url


@pytest.fixture
async def api(pay_api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=pay_api_url, timeout=60) as client:
        yield client


@pytest.fixture
async def fee_api(fee_api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API with paid consults and the wellness plan."""
    async with httpx.AsyncClient(base_url=fee_api_url, timeout=60) as client:
        yield client


MakeProduct = Callable[..., Awaitable[Product]]


@pytest.fixture
def make_product(pool: asyncpg.Pool) -> MakeProduct:
    async def make(
        stock: int = 10,
        price_minor: int = 1299,
        prescription_drug: str | None = None,
        kind: ProductKind = ProductKind.food,
    ) -> Product:
        new = NewProduct(
            name=f"Product {uuid4().hex[:6]}",
            kind=kind,
            prescription_drug=prescription_drug,
            variants=[
                NewVariant(
                    sku=uuid4().hex,
                    name="2 kg",
                    price_minor=price_minor,
                    currency="eur",
                    stock=stock,
                )
            ],
        )
        async with pool.acquire() as conn:
            return await create_product(conn, new)

    return make


async def place_order(
    api: httpx.AsyncClient, token: str, variant_id: object, quantity: int = 1
) -> dict[str, Any]:
    """Order `quantity` of a variant as the holder of `token`; the 201 body
    (`order`, `payment_intent_id`, `client_secret`)."""
    created = await api.post(
        "/v1/orders",
        json={"items": [{"variant_id": str(variant_id), "quantity": quantity}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def stock_of(pool: asyncpg.Pool, product: Product) -> int:
    quantity: int = await pool.fetchval(
        "SELECT quantity FROM stock WHERE variant_id = $1", product.variants[0].id
    )
    return quantity


def signed(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None
) -> tuple[str, str]:
    """The body and Stripe-Signature header Stripe would send, through stripe's own helper."""
    payload = json.dumps(event)
    timestamp = int(time.time()) if at is None else at
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)
    return payload, f"t={timestamp},v1={signature}"


def stripe_event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid4().hex}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "data": {"object": obj},
    }


async def deliver(api: httpx.AsyncClient, event: dict[str, Any], **sign: Any) -> httpx.Response:
    payload, header = signed(event, **sign)
    return await api.post(
        "/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


async def pay(
    client: stripe.StripeClient, payment_intent_id: str, card: str = "4242424242424242"
) -> Any:
    """What Stripe.js does in the buyer's browser: attach a card and confirm."""
    method = await client.v1.payment_methods.create_async(
        {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}
    )
    await client.v1.payment_intents.update_async(payment_intent_id, {"payment_method": method.id})
    with contextlib.suppress(stripe.CardError):
        await client.v1.payment_intents.confirm_async(payment_intent_id)
    return await client.v1.payment_intents.retrieve_async(payment_intent_id)


def charge_of(intent: Any) -> str:
    """The PaymentIntent's latest charge id (localstripe expands it into the object)."""
    charge = intent.latest_charge
    return charge if isinstance(charge, str) else str(charge.id)


async def outbox_count(pool: asyncpg.Pool, topic: str, key: str, value: object) -> int:
    """How many `topic` events the outbox holds whose payload's `key` is `value`."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND payload->>$2 = $3",
        topic,
        key,
        str(value),
    )
    return count


@dataclass(frozen=True)
class Placed:
    """An order as placed over the API: its product, id and PaymentIntent."""

    product: Product
    order: dict[str, Any]
    payment_intent_id: str
    client_secret: str

    @property
    def id(self) -> str:
        order_id: str = self.order["id"]
        return order_id


@dataclass(frozen=True)
class Shop:
    """An owner buying over the live API, paying through localstripe."""

    api: httpx.AsyncClient
    pool: asyncpg.Pool
    stripe: stripe.StripeClient
    token: str
    make_product: MakeProduct

    async def order(self, stock: int, quantity: int, price_minor: int = 1299) -> Placed:
        """A fresh product with `stock` units, of which the owner orders `quantity`."""
        product = await self.make_product(stock=stock, price_minor=price_minor)
        body = await place_order(self.api, self.token, product.variants[0].id, quantity)
        return Placed(product, body["order"], body["payment_intent_id"], body["client_secret"])

    async def status(self, order: Placed) -> str:
        """The order's status as its buyer reads it."""
        response = await self.api.get(f"/v1/orders/{order.id}", headers=bearer(self.token))
        status: str = response.json()["status"]
        return status

    async def stock(self, order: Placed) -> int:
        return await stock_of(self.pool, order.product)


@pytest.fixture
async def shop(
    api: httpx.AsyncClient,
    pool: asyncpg.Pool,
    stripe_api: stripe.StripeClient,
    make_user: MakeUser,
    make_product: MakeProduct,
) -> Shop:
    _, token = await make_user(Role.owner)
    return Shop(api, pool, stripe_api, token, make_product)


@dataclass(frozen=True)
class PaidOrder:
    """Two of five units at 10.00 each, paid at Stripe; the webhook not yet delivered."""

    placed: Placed
    intent: Any


@pytest.fixture
async def paid_order(shop: Shop) -> PaidOrder:
    placed = await shop.order(stock=5, quantity=2, price_minor=1000)
    intent = await pay(shop.stripe, placed.payment_intent_id)
    assert intent.status == "succeeded"
    return PaidOrder(placed, intent)


CONSULT_FEE = 4500


@pytest.fixture(scope="session")
async def wellness_plan(stripe_api: stripe.StripeClient) -> str:
    """The monthly plan at localstripe (which knows plans, not prices)."""
    plan = await stripe_api.v1.plans.create_async(
        {"amount": 1900, "currency": "eur", "interval": "month", "product": {"name": "Wellness"}}
    )
    return plan.id


@pytest.fixture(scope="session")
def fee_settings(pay_settings: Settings, wellness_plan: str) -> Settings:
    """Paid consults and the wellness plan on localstripe."""
    return pay_settings.model_copy(
        update={"consult_fee_minor": CONSULT_FEE, "wellness_plan_price_id": wellness_plan}
    )


@pytest.fixture
async def fake_stripe_api(
    fee_settings: Settings,
) -> AsyncIterator[tuple[FakeStripe, httpx.AsyncClient]]:
    """The API with paid consults, talking to a recording fake of Stripe."""
    async with serve_fake_stripe() as (fake, stripe_url):
        settings = fee_settings.model_copy(update={"stripe_api_base": stripe_url})
        async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=60) as api:
            yield fake, api


@dataclass(frozen=True)
class Parties:
    """An owner with a pet, and a vet open around the clock, each with a token, on `api`."""

    api: httpx.AsyncClient
    owner: User
    owner_token: str
    vet: User
    vet_token: str
    pet_id: str

    async def book(self, hour: int = 9, kind: str = "video") -> httpx.Response:
        """The owner books the pet with the vet tomorrow at `hour` UTC."""
        start = tomorrow_at(hour)
        return await book(self.api, self.owner_token, self.vet.id, self.pet_id, start, kind=kind)

    async def booked(self, hour: int = 9) -> dict[str, Any]:
        """A video booking, made: its body."""
        response = await self.book(hour)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


async def consult_parties(api: httpx.AsyncClient, make_user: MakeUser) -> Parties:
    owner, owner_token = await make_user(Role.owner)
    vet, vet_token = await make_user(Role.vet)
    opened = await api.put(
        f"/v1/vets/{vet.id}/availability", json=ALWAYS_OPEN, headers=bearer(vet_token)
    )
    assert opened.status_code == 200, opened.text
    pet = await api.post(
        "/v1/pets", json={"name": "Rex", "species": "dog"}, headers=bearer(owner_token)
    )
    assert pet.status_code == 201, pet.text
    return Parties(api, owner, owner_token, vet, vet_token, pet.json()["id"])


@pytest.fixture
async def parties(fee_api: httpx.AsyncClient, make_user: MakeUser) -> Parties:
    """Consult parties on the API with paid consults."""
    return await consult_parties(fee_api, make_user)
