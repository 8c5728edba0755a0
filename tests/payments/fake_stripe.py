"""A local endpoint speaking just enough of Stripe's protocol to record what we send: each
request's method, path, Idempotency-Key and form. For the calls localstripe cannot check
(Idempotency-Key, Connect's transfer_data and application_fee_amount)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from aiohttp import web

from deploy.embedded import free_port


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    idempotency_key: str | None
    form: dict[str, str]


@dataclass
class FakeStripe:
    sent: list[Sent] = field(default_factory=list)
    # When set, creating a PaymentIntent answers this card error (HTTP 402).
    decline: str | None = None

    def to(self, path: str) -> list[Sent]:
        return [request for request in self.sent if request.path == path]

    async def _record(self, request: web.Request) -> dict[str, str]:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.sent.append(
            Sent(request.method, request.path, request.headers.get("Idempotency-Key"), form)
        )
        return form

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/customers", self.customer),
            web.post("/v1/payment_intents", self.payment_intent),
        ]

    async def customer(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"id": f"cus_{uuid4().hex}", "object": "customer"})

    async def payment_intent(self, request: web.Request) -> web.Response:
        form = await self._record(request)
        if self.decline:
            error = {"type": "card_error", "code": "card_declined", "message": self.decline}
            return web.json_response({"error": error}, status=402)
        number = uuid4().hex
        intent: dict[str, Any] = {
            "id": f"pi_{number}",
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": form["currency"],
            "client_secret": f"pi_{number}_secret_x",
            "status": "requires_payment_method",
        }
        return web.json_response(intent)


@contextlib.asynccontextmanager
async def serve_local(*routes: web.RouteDef) -> AsyncIterator[str]:
    """An aiohttp app of `routes` on a loopback port while the block runs; its base URL."""
    app = web.Application()
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    async with serve_local(*fake.routes()) as url:
        yield fake, url
