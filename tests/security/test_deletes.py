"""Findings 5 and 7 (records): vmac deletes only what it created, and a damaged lineage record
is named in one line.

- ``vmac pretrain --out DIR`` removes the temporaries its own killed writes left, nothing else:
  not a user's ``.name.tmp-<digits>`` files, not a temporary of a name it does not write, not
  another user's.
- ``vmac evaluate`` removes a stale ``learning_curve.png`` only when an earlier evaluation's
  lineage names it with its bytes; a user's file of that name stays.
"""

from __future__ import annotations

import json
import os

from cli.main import main
from tests.pretrain.test_pretrain import _config, store  # noqa: F401 - the module's store fixture

DEAD_PID = 4_000_000  # above the kernel's pid_max: no process has it


def test_pretrain_removes_only_the_temporaries_it_left(tmp_path, store):  # noqa: F811
    from tasks.pretrain.train import train

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    theirs = {  # a user's files of every shape a temporary could have, and another user's vmac temporary
        run_dir / f".thesis.tmp-{DEAD_PID}.tex": None, run_dir / f".data.tmp-{DEAD_PID}": None,
        run_dir / "checkpoints" / f".ckpt-000004.tmp-{DEAD_PID}.pt": None,
        run_dir / f".notes.vmac-tmp-{DEAD_PID}.txt": None,
        run_dir / f".encoder.vmac-tmp-{DEAD_PID}.pt": 65534,
    }
    for path, owner in theirs.items():
        path.write_bytes(b"not vmac's to delete")
        if owner is not None:
            os.chown(path, owner, owner)
    ours = run_dir / "checkpoints" / f".ckpt-000002.vmac-tmp-{DEAD_PID}.pt"
    ours.write_bytes(b"half a checkpoint")
    lines: list[str] = []
    train(_config(store, run_dir, max_steps=1), log=lines.append)
    assert [p for p in theirs if not p.exists()] == [], "vmac pretrain deleted files it did not write"
    assert not ours.exists() and f"removed {ours}: the temporary of a write that was killed" in lines


def test_evaluate_leaves_a_learning_curve_it_did_not_write(tmp_path):
    from storage_schemas.layout import LINEAGE_DIR
    from tasks.evaluate.comparison import write_comparison
    from tasks.io import lineage
    from tasks.io.files import file_sha256

    out = tmp_path / "out"
    out.mkdir()
    curve = out / "learning_curve.png"
    curve.write_bytes(b"the user's own plot")
    write_comparison([], str(out))  # no reports: nothing drawn
    assert curve.read_bytes() == b"the user's own plot"
    # An earlier evaluation wrote it (its lineage names these bytes): now stale, so removed.
    made = lineage.make_record("evaluate", "completed", lineage.run_id(), [], [
        lineage.Dataset(uri=str(curve.resolve()), kind="report", sha256=file_sha256(str(curve)))], {"out": str(out)})
    lineage.write_record(str(out / LINEAGE_DIR), made)
    write_comparison([], str(out))
    assert not curve.exists()


def test_a_damaged_lineage_record_is_named_in_one_line(tmp_path, capsys):
    from storage_schemas.layout import LINEAGE_DIR
    from tasks.io import lineage

    run = tmp_path / "run"
    good = lineage.make_record("pretrain", "started", lineage.run_id(), [], [], {"out": str(run)})
    lineage.write_record(str(run / LINEAGE_DIR), good)
    for damage in ("{ not json", json.dumps({"kind": "pretrain"}), ""):
        bad = run / LINEAGE_DIR / "20990101T000000000-pretrain-completed-000000000000.json"
        bad.write_text(damage)
        for command in ("lineage", "audit"):
            assert main([command, str(run)]) == 1
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and str(bad) in err[0] and "damaged" in err[0] and "defect" not in err[0], err
