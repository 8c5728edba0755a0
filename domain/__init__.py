"""The domain: entities and rules as pydantic models and plain functions (roles and permissions,
consent state machine, booking rules, order states), the asyncpg repositories and the SQL
migrations. Imports no transport (aiohttp, socketio, litestar)."""
