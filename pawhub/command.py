"""What every `pawhub` command shares: settings checked for production, logging, and start-up
failures told in one line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from deploy.embedded import EmbeddedServerError
from pawhub.logs import configure_logging
from pawhub.resources import DatabaseUnreachable
from pawhub.settings import Settings, SettingsError, get_settings

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    click.echo(f"pawhub: error: {message}", err=True)
    sys.exit(2)


def service_settings(service: str) -> Settings:
    """Settings checked for production, with logging set up for `service`."""
    try:
        settings = get_settings()
        settings.check_production()
    except SettingsError as exc:
        fail(str(exc))
    except ValueError as exc:  # pydantic's ValidationError: a malformed variable
        fail(str(exc).splitlines()[0] + ": " + " ".join(str(exc).splitlines()[1:3]))
    configure_logging(service, production=settings.is_production)
    return settings


def one_line_errors(command: F) -> F:
    """Known start-up failures end with one clear line and a non-zero status, not a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (DatabaseUnreachable, EmbeddedServerError, SettingsError) as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def require(settings: Settings, *names: str) -> None:
    for name in names:
        if not getattr(settings, name):
            fail(f"{name.upper()} must be set (or use `pawhub up`, which starts embedded servers)")
