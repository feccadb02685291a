"""The README's commands and `vmac --help`: every `vmac` line of a README code block parses with the
real parser and is shown in its command's --help; every --help example is in the README; `make
bench` and `vmac bench --help` list every script in benchmarks/."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from cli.examples import BENCHMARKS, EXAMPLES
from cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    """Every line of a README code block that runs vmac (``torchrun … -m cli.main`` included)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", text, re.S | re.M)
    return [line.strip() for block in blocks for line in block.splitlines()
            if re.match(r"\s*(vmac\b|torchrun\b.*-m cli\.main\b)", line)]


def argv_of(line: str) -> list[str]:
    words = shlex.split(line, comments=True)
    return words[words.index("cli.main") + 1:] if words[0] == "torchrun" else words[1:]


def normalised(line: str) -> str:
    return " ".join(line.split())


def test_every_readme_command_parses(capsys):
    commands = readme_commands()
    assert len(commands) > 30
    parser = build_parser()
    for line in commands:
        argv = argv_of(line)
        if argv == ["--version"]:
            with pytest.raises(SystemExit) as done:
                parser.parse_args(argv)
            assert done.value.code == 0 and capsys.readouterr().out.startswith("vmac ")
            continue
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"README line does not parse: {line}\n{capsys.readouterr().err}")


def test_help_examples_are_the_readme_commands():
    in_readme = {normalised(line) for line in readme_commands()}
    in_help = {normalised(line) for lines in EXAMPLES.values() for line in lines}
    assert not in_help - in_readme, f"--help examples missing from the README: {sorted(in_help - in_readme)}"
    shown = in_readme - {"vmac --version"}
    assert not shown - in_help, f"README commands missing from cli/examples.py: {sorted(shown - in_help)}"
    for command, lines in EXAMPLES.items():
        assert all(argv_of(line)[0] == command for line in lines), command


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
