"""Admins manage the catalog: products, their variants and stock. Anyone else: 403."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, post, put
from litestar.params import FromPath, JSONBody

from domain.commerce import catalog, stock
from domain.commerce.catalog import NewProduct, NewVariant, Product
from domain.commerce.stock import AdjustStock, SetStock, StockLevel
from rest.auth import SECURED, Db
from rest.guards import role_allows
from rest.problems import problem_responses


class CatalogAdminController(Controller):
    path = "/v1/admin"
    tags = ["marketplace"]
    security = SECURED
    guards = [role_allows(catalog.may_manage_catalog, "manage the catalog")]

    @post(
        "/products",
        summary="Create a product with its variants and opening stock (admins only)",
        description="`vet_id` makes it a vet's product: its orders pay that vet through Connect.",
        responses=problem_responses(400, 401, 403, 409, 422),
    )
    async def create_product(self, db: Db, data: JSONBody[NewProduct]) -> Product:
        return await catalog.create_product(db, data)

    @post(
        "/products/{product_id:uuid}/variants",
        summary="Add a variant to a product (admins only)",
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def add_variant(
        self, db: Db, product_id: FromPath[UUID], data: JSONBody[NewVariant]
    ) -> Product:
        return await catalog.add_variant(db, product_id, data)

    @put(
        "/variants/{variant_id:uuid}/stock",
        summary="Set a variant's stock to a counted quantity (admins only)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def set_stock(
        self, db: Db, variant_id: FromPath[UUID], data: JSONBody[SetStock]
    ) -> StockLevel:
        return await stock.set_stock(db, variant_id, data.quantity)

    @post(
        "/variants/{variant_id:uuid}/stock/adjustments",
        status_code=200,
        summary="Add or take away units (admins only); 409 below zero",
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def adjust_stock(
        self, db: Db, variant_id: FromPath[UUID], data: JSONBody[AdjustStock]
    ) -> StockLevel:
        return await stock.adjust_stock(db, variant_id, data.delta)
