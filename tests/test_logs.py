import json
import logging

import pytest

from pawhub.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_production_logs_are_json_lines_tagged_with_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("hub", production=True)
    logging.getLogger("pawhub.test").warning("replica %s is %s", "a", "up")
    line = json.loads(capsys.readouterr().err.strip())
    assert (line["service"], line["level"], line["logger"], line["msg"]) == (
        "hub",
        "warning",
        "pawhub.test",
        "replica a is up",
    )
    assert line["ts"].endswith("+00:00")


def test_development_logs_are_readable_lines_tagged_with_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("api", production=False)
    logging.getLogger("pawhub.test").info("hello")
    line = capsys.readouterr().err.strip()
    assert " api " in line and "INFO" in line and line.endswith("pawhub.test: hello")
