"""The layout's rules (README, Architecture): data flows one way, from the transports through the
domain to storage, the socket core knows nothing of what stands on it, the process layer
(pawhub/), which composes everything, is imported by nothing below it, and no module grows past
what a newcomer reads in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = {"aiohttp", "socketio", "engineio", "litestar", "uvicorn"}
PACKAGES = {
    "pawhub", "domain", "realtime", "signaling", "media", "moderation", "recordings", "rest",
    "integrations", "deploy", "bench",
}  # fmt: skip
# package -> the top-level packages it must never import
FORBIDDEN = {
    "domain": TRANSPORTS | PACKAGES - {"domain"},
    "integrations": PACKAGES - {"integrations"},
    "realtime": {"signaling", "moderation", "media", "rest", "recordings", "bench"},
    "signaling": {"rest", "moderation", "bench"},
    "media": {"rest", "realtime", "signaling", "moderation", "bench"},
    "moderation": {"rest", "signaling", "media", "bench"},
    "rest": {"realtime", "signaling", "media", "moderation", "bench"},
}


# pawhub/ is the process layer (settings, connections, the CLI, both services' composition
# roots): it stands above every other package, and only the load testers and the tests use it.
BELOW_THE_PROCESS_LAYER = sorted(PACKAGES - {"pawhub", "bench"})
MAX_MODULE_LINES = 300  # tests and the load testers aside


def imported_packages(source: Path) -> set[str]:
    """The top-level package of every module `source` imports (relative imports excluded)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_stands_below_it(package: str) -> None:
    breaches = [
        f"{source.relative_to(ROOT)} imports {name}"
        for source in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_packages(source) & FORBIDDEN[package])
    ]
    assert not breaches, "\n".join(breaches)


@pytest.mark.parametrize("package", BELOW_THE_PROCESS_LAYER)
def test_nothing_below_the_process_layer_imports_it(package: str) -> None:
    sources = sorted((ROOT / package).rglob("*.py"))
    importers = [
        str(source.relative_to(ROOT)) for source in sources if "pawhub" in imported_packages(source)
    ]
    assert importers == [], "below pawhub/: pass values in from the composition root"


def test_the_rules_see_a_breach(tmp_path: Path) -> None:
    source = tmp_path / "breach.py"
    source.write_text(
        "import aiohttp\nfrom realtime.chat import ChatNamespace\nfrom . import x\n"
        "def later():\n    import media.sfu\n"
    )
    assert imported_packages(source) == {"aiohttp", "realtime", "media"}


@pytest.mark.parametrize("package", sorted(PACKAGES - {"bench"}))
def test_no_module_is_longer_than_a_sitting(package: str) -> None:
    long = [
        f"{source.relative_to(ROOT)}: {lines} lines"
        for source in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(source.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not long, f"split these (at most {MAX_MODULE_LINES} lines):\n" + "\n".join(long)
