"""The README stays true to the code: every setting and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

from web.cli import parser
from web.settings import Settings

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_setting() -> None:
    rows = {
        line.split("`")[1]: line.rsplit("|", 2)[1].strip()
        for line in README.splitlines()
        if line.startswith("| `SUIMEET_")
    }
    fields = {f"SUIMEET_{name.upper()}": f for name, f in Settings.model_fields.items()}
    assert set(rows) == set(fields)
    for name, description in rows.items():
        assert description == fields[name].description, name


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
