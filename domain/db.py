"""What repository functions run their SQL on."""

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A pool for one statement; a connection (plain or from a pool) inside a transaction.
Db: TypeAlias = asyncpg.Connection | asyncpg.Pool | PoolConnectionProxy

# A single connection, for work that needs a transaction.
Conn: TypeAlias = asyncpg.Connection | PoolConnectionProxy
