"""Every ``--set FIELD=VALUE`` the README and docs/ show names a field of the config of the command
it is given to (a prose mention: of some command's config), so no document teaches a path the
parser refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli.args import ConfigError, parse_overrides, pipeline_overrides
from storage_schemas.benchmark import EvaluateConfig
from storage_schemas.config import IngestConfig, PretrainConfig
from storage_schemas.validation import ValidateConfig

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MODELS = {"pretrain": PretrainConfig, "evaluate": EvaluateConfig, "validate": ValidateConfig, "ingest": IngestConfig}
SET = re.compile(r"--set[ =]['\"]?([A-Za-z_][\w.-]*)=")


def documented_sets() -> list[tuple[str, int, str | None, str]]:
    """(document, line, command or None, FIELD path) for every --set shown: the command a command
    line runs, else the command whose section (a ``## `vmac X`…`` heading) the line is in."""
    found = []
    for path in DOCUMENTS:
        section = None
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if heading := re.match(r"#+ `vmac ([a-z][a-z-]*)", line):
                section = heading.group(1)
            elif line.startswith("#"):
                section = None
            for match in SET.finditer(line):
                if match.group(1).split(".")[-1] in ("FIELD", "field"):
                    continue  # the syntax itself, not a path
                named = re.findall(r"vmac ([a-z][a-z-]*)", line[:match.start()])
                found.append((path.name, number, named[-1] if named else section, match.group(1)))
    return found


def resolves(command: str | None, field: str) -> bool:
    item = f"{field}=1"
    try:
        if command == "run":
            pipeline_overrides([item])
        elif command in MODELS:
            parse_overrides([item], MODELS[command])
        else:
            return any(resolves(name, field) for name in (*MODELS, "run"))
    except ConfigError:
        return False
    return True


def test_the_documents_show_set_paths():
    assert len(documented_sets()) > 10


@pytest.mark.parametrize("document,line,command,field", documented_sets())
def test_every_documented_set_path_is_a_config_field(document, line, command, field):
    assert resolves(command, field), f"{document}:{line}: --set {field} is no field of {command or 'any'} config"
