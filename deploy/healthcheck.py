"""A container health check: `python -m deploy.healthcheck URL` exits 0 when URL answers 2xx.

The slim image has no curl; this needs nothing beyond the standard library.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m deploy.healthcheck URL", file=sys.stderr)
        return 2
    return 0 if healthy(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
