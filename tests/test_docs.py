"""The README stays true to the code: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from web.cli import parser
from web.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_setting() -> None:
    documented = {
        line.split("`")[1] for line in README.splitlines() if line.startswith("| `SUIMEET_")
    }
    assert documented == {f"SUIMEET_{name.upper()}" for name in Settings.model_fields}


def test_readme_documents_every_command() -> None:
    sub = next(a for a in parser()._actions if a.dest == "command")
    for command in sub.choices:  # type: ignore[union-attr]
        assert f"`suimeet {command}" in README, command


def test_quick_start_is_two_commands() -> None:
    blocks = README.split("## Quick start")[1].split("##")[0].split("```sh\n")[1:]
    commands = [b.split("```")[0].strip() for b in blocks]
    assert "pip install -e . && suimeet serve --demo" in commands
    assert "bash scripts/test.sh" in commands
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
