"""The README's and docs/commands.md's commands against the parser and `vmac --help`: every `vmac`
line of a code block parses; the README's command table shows one example of every command, taken
from ``cli.examples`` (what --help shows); docs/commands.md shows every --help example; `make bench`
and `vmac bench --help` list every script in benchmarks/; the README stays a front page."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cli.examples import BENCHMARKS, EXAMPLES
from cli.main import build_parser, main
from cli.reference import subcommands

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
COMMANDS_DOC = ROOT / "docs" / "commands.md"


def code_block_commands(path: Path) -> list[str]:
    """Every line of a code block that runs vmac (``torchrun … -m cli.main`` included)."""
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", text, re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines()
            if re.match(r"\s*(vmac\b|torchrun\b.*-m cli\.main\b)", line)]


def table_examples(path: Path) -> dict[str, str]:
    """The README's command table: command name → its example (the third cell)."""
    rows = re.findall(r"^\| `vmac ([a-z-]+)` \| [^|]+ \| `(vmac [^`]+)` \|$", path.read_text(encoding="utf-8"), re.M)
    return dict(rows)


def argv_of(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    return words[words.index("cli.main") + 1:] if words[0] == "torchrun" else words[1:]


def normalised(line: str) -> str:
    return " ".join(line.split())


def without_comment(line: str) -> str:
    return normalised(re.sub(r"\s#.*$", "", line))


@pytest.mark.parametrize("path", [README, COMMANDS_DOC], ids=["README", "commands.md"])
def test_every_documented_command_parses(path, capsys):
    commands = code_block_commands(path) + list(table_examples(path).values())
    assert len(commands) > 5
    parser = build_parser()
    for line in commands:
        if argv_of(line) == ["--version"]:
            with pytest.raises(SystemExit) as done:
                parser.parse_args(["--version"])
            assert done.value.code == 0 and capsys.readouterr().out.startswith("vmac ")
            continue
        try:
            parser.parse_args(argv_of(line))
        except SystemExit:
            pytest.fail(f"{path.name} line does not parse: {line}\n{capsys.readouterr().err}")


def test_readme_table_has_one_help_example_per_command():
    table = table_examples(README)
    assert set(table) == set(subcommands(build_parser())), sorted(table)
    for command, example in table.items():
        assert without_comment(example) in {without_comment(line) for line in EXAMPLES[command]}, example


def test_commands_doc_shows_every_help_example():
    shown = {normalised(line) for line in code_block_commands(COMMANDS_DOC)} - {"vmac --version"}
    in_help = {normalised(line) for lines in EXAMPLES.values() for line in lines}
    assert not in_help - shown, f"--help examples missing from docs/commands.md: {sorted(in_help - shown)}"
    assert not shown - in_help, f"docs/commands.md commands missing from cli/examples.py: {sorted(shown - in_help)}"
    for command, lines in EXAMPLES.items():
        assert all(argv_of(line)[0] == command for line in lines), command


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; reference belongs in docs/"
    for link in re.findall(r"\]\(([^)#]+)\)", "\n".join(lines)):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), f"README links a missing file: {link}"


def test_each_subcommand_help_shows_its_examples(capsys):
    for command, lines in EXAMPLES.items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert "examples:" in shown and all(line in shown for line in lines), command


def test_bench_help_and_make_bench_list_every_benchmark(capsys):
    names = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
    assert {"ingest", "model", "loader", "evaluate", "pretrain"} <= set(names)
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    shown = capsys.readouterr().out
    assert all(re.search(rf"^\s+{name}\s+\S", shown, re.M) for name in names), shown
    # make -n prints the recipe without running it (nor the install it depends on).
    recipe = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert all(f"benchmarks/{name}.py" in recipe for name in names), recipe


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.match(r"vmac \S+( \(git [0-9a-f]{12}\))?\n$", capsys.readouterr().out)


def test_commands_doc_describes_the_presets_as_configured():
    """docs/commands.md's "Presets" list gives each CPU preset's input size (and real-cpu's steps)
    as storage_schemas.config.PRETRAIN_PRESETS sets them."""
    from storage_schemas.config import PRETRAIN_PRESETS

    text = " ".join(COMMANDS_DOC.read_text(encoding="utf-8").split())
    tiny = re.search(r"`tiny-cpu`: ConvNeXt V2-atto at (\d+) px", text)
    real = re.search(r"`real-cpu`: .*? at (\d+) px, (\d+) steps", text)
    assert tiny and real, "docs/commands.md no longer describes the tiny-cpu and real-cpu presets"
    assert int(tiny[1]) == PRETRAIN_PRESETS["tiny-cpu"]["model"]["input_size"]
    assert (int(real[1]), int(real[2])) == (PRETRAIN_PRESETS["real-cpu"]["model"]["input_size"],
                                            PRETRAIN_PRESETS["real-cpu"]["optimiser"]["max_steps"])
