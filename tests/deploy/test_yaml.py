"""yamllint over every YAML file under deploy/, with deploy/.yamllint."""

from __future__ import annotations

from pathlib import Path

from yamllint import linter
from yamllint.config import YamlLintConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = YamlLintConfig(file=str(DEPLOY / ".yamllint"))


def problems(path: Path, text: str | None = None) -> list[str]:
    source = path.read_text() if text is None else text
    return [
        f"{path}:{p.line}:{p.column} {p.message}" for p in linter.run(source, CONFIG, str(path))
    ]


def test_every_deploy_yaml_file_is_clean() -> None:
    files = sorted([*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml"), DEPLOY / ".yamllint"])
    assert len(files) >= 12
    assert [problem for path in files for problem in problems(path)] == []


def test_yamllint_does_flag_a_sloppy_file() -> None:
    sloppy = "services:\n   api:\n     image: x   \n     read_only: yes\n"
    found = problems(DEPLOY / "sloppy.yml", sloppy)
    assert any("wrong indentation" in problem for problem in found)
    assert any("trailing spaces" in problem for problem in found)
    assert any("truthy value" in problem for problem in found)
