"""The command line and table shared by the Redis micro-benchmarks (`bench.chat.reaping`,
`bench.chat.channels`): a --rooms sweep against the REDIS_URL of the settings."""

from __future__ import annotations

import argparse

from rich.table import Table

from pawhub.settings import get_settings


def rooms_and_redis_url(doc: str, default_rooms: list[int]) -> tuple[list[int], str]:
    """The room counts asked for on the command line, and REDIS_URL (else a usage error)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rooms", type=int, nargs="+", default=default_rooms)
    options = parser.parse_args()
    redis_url = get_settings().redis_url
    if not redis_url:
        parser.error("REDIS_URL is not set")
    return options.rooms, redis_url


def figures_table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right")
    return table
