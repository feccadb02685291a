"""``vmac history``, ``vmac gc`` and ``vmac migrate`` as a user runs them, and the one-line
answers for a store written before snapshots and for a snapshot given to a command that writes."""

from __future__ import annotations

import json
from pathlib import Path

from cli.main import main
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.snapshots import history
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot
from tests.io.legacy import write_legacy_store


def _store_with_a_redecode(tmp_path: Path, make_video) -> str:
    make_video("a.mp4", frames=6, height=32, width=48)
    store = str(tmp_path / "s.zarr")
    [item] = expand_sources([str(tmp_path / "videos")])
    ingest_video(item, store, DecodeParams(short_side=32))
    ingest_video(item, store, DecodeParams(short_side=24))
    return store


def test_history_lists_commits_and_gc_frees_the_old_decode(tmp_path, make_video, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    store = _store_with_a_redecode(tmp_path, make_video)
    first = [c for c in history(store) if c.seq == 1][0]
    assert main(["history", store]) == 0
    out = capsys.readouterr().out
    assert first.snapshot in out and "+1 a-" in out and "~1 a-" in out and "create" in out
    assert main(["history", store, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["seq"] for c in listed] == [2, 1, 0] and not any(c["expired"] for c in listed)

    assert main(["gc", store, "--older-than", "0", "--dry-run"]) == 0
    assert "would expire 2 snapshot(s)" in capsys.readouterr().out
    assert main(["gc", store, "--older-than", "0"]) == 0
    assert "freed 1 version folder(s)" in capsys.readouterr().out
    assert main(["history", store, "--json"]) == 0
    assert [c["expired"] for c in json.loads(capsys.readouterr().out)] == [False, True, True]
    assert main(["gc", store, "--older-than", "-1"]) == 2
    assert "--older-than -1: a number of days, 0 or more" in capsys.readouterr().err


def test_a_store_before_snapshots_is_refused_in_one_line_then_migrated(tmp_path, capsys):
    store = str(tmp_path / "old.zarr")
    write_legacy_store(store, {"clip": 5})
    assert main(["validate", "--store", store]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"vmac migrate {store}" in err[0] and "Traceback" not in err[0]
    assert main(["pretrain", "--store", store, "--out", str(tmp_path / "run")]) == 2
    assert "vmac migrate" in capsys.readouterr().err
    assert main(["migrate", store]) == 0
    assert "converted" in capsys.readouterr().out and list(open_snapshot(store).entries) == ["clip"]
    assert main(["migrate", store]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_a_snapshot_given_to_a_command_that_writes_is_a_usage_error(tmp_path, make_video, capsys):
    store = _store_with_a_redecode(tmp_path, make_video)
    snapshot = open_snapshot(store).id
    for argv in (["ingest", str(tmp_path / "videos"), "--store", f"{store}@{snapshot}"],
                 ["validate", "--store", f"{store}@{snapshot}"]):
        assert main(argv) == 2
        assert "writes the store's latest snapshot; name the store without @" in capsys.readouterr().err
