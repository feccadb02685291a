"""docs/cli.md, the flag reference, generated from the parsers so that it cannot drift.

``python -m cli.reference > docs/cli.md`` writes it; ``tests/cli/test_reference.py`` fails when the
file differs from what the parsers say. Each command gets its one-line purpose, a table of its
arguments (name, value, help with argparse's ``%(default)s`` expanded) and its examples
(``cli.examples``, the lines ``--help`` shows).
"""

from __future__ import annotations

import argparse
import os
import sys
from unittest import mock

from cli.examples import EXAMPLES
from cli.parsers import build_parser

HEADER = """# `vmac` command reference

Generated from the parsers by `python -m cli.reference > docs/cli.md`; `tests/cli/test_reference.py`
fails when it is stale, so edit the parsers (`cli/parsers.py`), not this file. What each command
does, in prose, is in [commands.md](commands.md).
"""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A parser's subcommands by name, in the order they were added (aliases left out)."""
    for action in parser._actions:  # noqa: SLF001 - argparse exposes subparsers nowhere else
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return {name: sub for name, sub in action.choices.items() if sub.prog.endswith(f" {name}")}
    return {}


def purposes(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as ``vmac --help`` lists it."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return {choice.dest: choice.help or "" for choice in action._choices_actions}  # noqa: SLF001
    return {}


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def value_of(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    if isinstance(metavar, tuple):
        return " ".join(metavar)
    if action.nargs in ("+", "*"):
        return f"{metavar} ..."
    if isinstance(action.nargs, int) and action.nargs > 1:
        return " ".join([metavar] * action.nargs)
    return metavar


def help_of(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    if not action.help:
        return ""
    return cell(parser._get_formatter()._expand_help(action))  # noqa: SLF001 - argparse's own %(default)s


def arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | value | meaning |", "|---|---|---|"]
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):  # noqa: SLF001
            continue
        value = value_of(action)
        name = ", ".join(f"`{o}`" for o in action.option_strings)
        if not action.option_strings:  # a positional: its metavar is its name
            name, value = f"`{value}`", ""
        rows.append(f"| {name} | {f'`{value}`' if value else ''} | {help_of(action, parser)} |")
    return rows if len(rows) > 2 else []


def command_section(name: str, purpose: str, parser: argparse.ArgumentParser, level: int = 2) -> list[str]:
    lines = [f"{'#' * level} `{parser.prog}`", "", cell(purpose), "", f"```\n{parser.format_usage().strip()}\n```", ""]
    table = arguments_table(parser)
    if table:
        lines += [*table, ""]
    for sub_name, sub in subcommands(parser).items():
        lines += command_section(sub_name, purposes(parser).get(sub_name, ""), sub, level + 1)
    if name in EXAMPLES:
        lines += ["Examples:", "", "```sh", *EXAMPLES[name], "```", ""]
    return lines


def reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole of docs/cli.md as text: the header, then one section per ``vmac`` subcommand."""
    # Usage lines wrap at the terminal's width (argparse reads COLUMNS): fixed, so that the file does
    # not depend on who generated it.
    with mock.patch.dict(os.environ, {"COLUMNS": "100"}):
        return _reference(parser or build_parser())


def _reference(parser: argparse.ArgumentParser) -> str:
    lines = [HEADER, f"```\n{parser.format_usage().strip()}\n```", ""]
    lines += arguments_table(parser) + [""]
    for name, sub in subcommands(parser).items():
        lines += command_section(name, purposes(parser).get(name, ""), sub)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference())
