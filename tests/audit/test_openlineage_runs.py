"""The OpenLineage events a real ingest → validate → pretrain → evaluate leaves on disk, and a
pre-training process killed mid-way: its START has no COMPLETE, and `vmac lineage` says the run
never finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_schemas.layout import LINEAGE_DIR
from tasks.io import lineage
from tasks.io.openlineage import read_events
from tests.lineage_events import check_event

ROOT = Path(__file__).resolve().parents[2]


def _events_and_records(owner: str) -> tuple[list[dict], dict]:
    folder = f"{owner.rstrip('/')}/{LINEAGE_DIR}"
    return read_events(folder), {r.id: r for r in lineage.read_records(folder)}


def test_every_event_of_a_real_pipeline_passes_and_runs_pair_up(pipeline):
    owners = [pipeline.store, pipeline.davis_store, str(pipeline.run_dir), str(pipeline.eval_out)]
    for owner in owners:
        events, records = _events_and_records(owner)
        assert len(events) == len(records) > 0, owner
        for event in events:
            check_event(event, records[event["run"]["facets"]["vmac_run"]["record_id"]])
    events = [e for e in _events_and_records(str(pipeline.run_dir))[0] if e["job"]["name"] == "pretrain"]
    # START, a RUNNING event per checkpoint written, COMPLETE; audits of the run add their own.
    types = [e["eventType"] for e in events]
    assert types[0] == "START" and types[-1] == "COMPLETE" and set(types[1:-1]) == {"RUNNING"}, types
    assert len({e["run"]["runId"] for e in events}) == 1
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    encoder = next(d for d in events[-1]["outputs"] if d["name"].endswith("encoder.pt"))
    assert (encoder["namespace"], encoder["name"]) == ("file", str(pipeline.encoder))
    store = next(d for d in events[-1]["inputs"] if d["facets"]["vmac_artifact"]["kind"] == "store")
    videos = store["facets"]["vmac_artifact"]["details"]["videos"]
    assert videos and all(len(v["frames_sha256"]) == 64 for v in videos.values())


_TRAIN = """
import sys
from pathlib import Path
from tests.audit.conftest import train_tiny
train_tiny(sys.argv[1], Path(sys.argv[2]), max_steps=100000, checkpoint_every=100000, log_every=1)
"""


@pytest.mark.slow
def test_a_killed_run_leaves_a_start_without_complete_and_lineage_says_so(pipeline, tmp_path, capsys):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN, pipeline.store, str(run_dir)], cwd=ROOT, env=env)
    try:
        deadline = time.time() + 300
        while not ((run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").read_text().strip()):
            assert proc.poll() is None and time.time() < deadline, "training never reached its first step"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)  # no handler runs: the run cannot close its own record
        proc.wait(timeout=60)
    events, _ = _events_and_records(str(run_dir))
    assert [e["eventType"] for e in events] == ["START"]
    assert not [r for r in lineage.read_records(str(run_dir / LINEAGE_DIR)) if r.status != "started"]

    from cli.main import build_parser

    args = build_parser().parse_args(["lineage", str(run_dir)])
    assert args.func(args) == 0
    assert "never finished (interrupted?)" in capsys.readouterr().out
