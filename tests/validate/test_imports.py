"""Great Expectations (2–5 s to import) loads only when suites run, not with the stage's tasks."""

from __future__ import annotations

import subprocess
import sys


def test_validation_tasks_import_without_great_expectations():
    code = ("import sys, flows.validate, tasks.validate.tasks\n"
            "print('great_expectations' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
