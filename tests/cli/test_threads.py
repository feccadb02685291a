"""The vmac command sets OpenMP's wait policy before anything loads torch (docs/learning.md, "Threads")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_command_loads_no_torch():
    # GNU OpenMP reads OMP_WAIT_POLICY once, when torch loads it: main() must run before that.
    out = subprocess.run([sys.executable, "-c", "import sys, cli.main; print('torch' in sys.modules)"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_main_sets_a_passive_wait_policy_unless_one_is_given(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        main(["--help"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
