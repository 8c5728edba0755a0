"""The API as `pawhub api` serves it, plus one plain JSON endpoint as the baseline, in one or
more uvicorn worker processes (both endpoints always get the same workers).

    python -m bench.rest.server PORT [WORKERS]
"""

from __future__ import annotations

import sys

import uvicorn
from litestar import Litestar, get

from pawhub.api import create_app
from pawhub.heap import settle_after_startup
from pawhub.settings import Settings


@get("/bench/plain", opt={"exclude_from_auth": True}, include_in_schema=False)
async def plain() -> dict[str, str]:
    return {"status": "ok", "service": "pawhub"}


def app() -> Litestar:
    """Each worker process builds its own app (and its own database pool)."""
    application = create_app(Settings())
    application.register(plain)
    application.on_startup.append(settle_after_startup)  # as `pawhub api` does
    return application


def main() -> None:
    uvicorn.run(
        "bench.rest.server:app",
        factory=True,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=int(sys.argv[2]) if len(sys.argv) > 2 else 1,
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
