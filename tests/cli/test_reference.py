"""docs/cli.md is what the parsers say (``python -m cli.reference`` regenerates it)."""

from __future__ import annotations

from pathlib import Path

from cli.examples import EXAMPLES
from cli.parsers import build_parser
from cli.reference import reference, subcommands

ROOT = Path(__file__).resolve().parents[2]


def test_docs_cli_is_generated_from_the_parsers():
    written = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert written == reference(), "docs/cli.md is stale: run `python -m cli.reference > docs/cli.md`"


def test_reference_names_every_flag_of_every_command():
    text = reference()
    for name, parser in subcommands(build_parser()).items():
        assert f"## `vmac {name}`" in text, name
        for action in parser._actions:  # noqa: SLF001
            for option in set(action.option_strings) - {"-h", "--help"}:
                assert f"`{option}`" in text, (name, option)
    for lines in EXAMPLES.values():
        assert all(line in text for line in lines)
