"""Reading a run's ``metrics.jsonl`` (written by ``tasks.pretrain.metrics``; read by pre-training on
resume, by the evaluation's learning curve and by the pipeline report), tolerant of a crash and
strict about damage: the file may come from a shared folder, so a bad line is named, never a defect.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tasks.io.files import check_path


class DamagedMetricsError(ValueError):
    """A ``metrics.jsonl`` line, other than a torn last one, that is not a metrics row."""


def metric_rows(path: Path) -> list[dict]:
    """The rows of a ``metrics.jsonl`` (none if it does not exist). A torn last line (a kill
    mid-append) is left out with a warning; any other line that is not a JSON object with a step
    raises DamagedMetricsError naming the file and the line. The file is read only through no link
    of another user (``check_path``: OutsideError)."""
    if not check_path(path).exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["step"] = int(row["step"])
        except (ValueError, KeyError, TypeError, IndexError):
            if number == len(lines):
                logging.getLogger(__name__).warning("%s: left out its last line, torn by a write that was killed", path)
                break
            raise DamagedMetricsError(f"{path}: line {number} is damaged (not a metrics row); move the file "
                                      f"away or cut the line") from None
        rows.append(row)
    return rows
