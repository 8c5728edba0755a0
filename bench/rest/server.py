"""The API as `pawhub api` serves it, plus one plain JSON endpoint as the baseline."""

from __future__ import annotations

import sys

import uvicorn
from litestar import get

from pawhub.settings import Settings
from rest.app import create_app


@get("/bench/plain", opt={"exclude_from_auth": True}, include_in_schema=False)
async def plain() -> dict[str, str]:
    return {"status": "ok", "service": "pawhub"}


def main() -> None:
    app = create_app(Settings())
    app.register(plain)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
