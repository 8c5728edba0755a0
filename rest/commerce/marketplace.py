"""The marketplace: the catalog, cart reservations and orders paid through Stripe."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel

from domain.commerce import catalog, orders, payments, stock
from domain.commerce.catalog import Product
from domain.commerce.orders import NewOrder, Order
from domain.commerce.stock import NewReservation, Reservation
from rest.auth import SECURED, CurrentPrincipal, Db
from rest.commerce.payments import STRIPE_DEPENDENCIES, Stripe
from rest.config import settings_of
from rest.problems import problem_responses


class ProductController(Controller):
    path = "/v1/products"
    tags = ["marketplace"]
    security = SECURED

    @get(
        summary="The catalog, with each variant's price and stock", responses=problem_responses(401)
    )
    async def list_products(self, db: Db) -> list[Product]:
        return await catalog.list_products(db)

    @get("/{product_id:uuid}", responses=problem_responses(400, 401, 404))
    async def read(self, db: Db, product_id: FromPath[UUID]) -> Product:
        return await catalog.get_product(db, product_id)


class CartController(Controller):
    path = "/v1/cart"
    tags = ["marketplace"]
    security = SECURED

    @post(
        "/reservations",
        summary="Hold stock for 15 minutes; an order for the variant takes it",
        responses=problem_responses(400, 401, 404, 409),
    )
    async def reserve(
        self, db: Db, principal: CurrentPrincipal, data: JSONBody[NewReservation]
    ) -> Reservation:
        return await stock.reserve(db, principal.user_id, data)

    @get(
        "/reservations",
        summary="The caller's unexpired reservations",
        responses=problem_responses(401),
    )
    async def list_reservations(self, db: Db, principal: CurrentPrincipal) -> list[Reservation]:
        return await stock.list_reservations(db, principal.user_id)


class OrderCreated(BaseModel):
    order: Order
    payment_intent_id: str
    client_secret: str


class OrderController(Controller):
    path = "/v1/orders"
    tags = ["marketplace"]
    security = SECURED
    dependencies = STRIPE_DEPENDENCIES

    @post(
        summary="Order: allocates the stock and opens a Stripe PaymentIntent",
        description=(
            "Confirm the payment with Stripe.js and `client_secret`; the order becomes `paid` "
            "when Stripe's webhook reports it. Prescription-only products need `pet_id`, a pet "
            "of the caller's with an active prescription for their drug (422 otherwise)."
        ),
        responses=problem_responses(400, 401, 404, 409, 422),
    )
    async def create(
        self,
        db: Db,
        state: State,
        stripe_api: Stripe,
        principal: CurrentPrincipal,
        data: JSONBody[NewOrder],
    ) -> OrderCreated:
        order = await orders.create_order(db, principal.user_id, data)
        payment = await payments.start_payment(
            db, stripe_api, order, platform_fee_percent=settings_of(state).platform_fee_percent
        )
        order = await orders.get_order(db, principal.user_id, order.id)
        return OrderCreated(
            order=order,
            payment_intent_id=payment.payment_intent_id,
            client_secret=payment.client_secret,
        )

    @get(
        "/{order_id:uuid}",
        summary="The caller's own order",
        responses=problem_responses(400, 401, 404),
    )
    async def read(self, db: Db, principal: CurrentPrincipal, order_id: FromPath[UUID]) -> Order:
        return await orders.get_order(db, principal.user_id, order_id)

    @post(
        "/{order_id:uuid}/cancel",
        summary="Cancel an order awaiting payment; its stock goes back",
        status_code=200,
        responses=problem_responses(400, 401, 404, 409),
    )
    async def cancel(
        self, db: Db, stripe_api: Stripe, principal: CurrentPrincipal, order_id: FromPath[UUID]
    ) -> Order:
        return await payments.cancel_order(db, stripe_api, principal.user_id, order_id)
