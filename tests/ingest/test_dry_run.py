"""`vmac ingest --dry-run`: the plan (to decode, to retry and why, up to date), and nothing written."""

from __future__ import annotations

import os

from cli.main import main
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.io.store import read_catalog
from tests.stores import put_video


def snapshot(root) -> dict[str, tuple[int, int]]:
    """Every file below ``root``: (size, mtime in ns)."""
    return {os.path.join(d, f): (os.stat(os.path.join(d, f)).st_size, os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(root) for f in files}


def test_dry_run_prints_the_plan_and_writes_nothing(make_video, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line
    for seed, name in enumerate(("done.mp4", "stuck.mp4", "new.mp4")):
        make_video(name, frames=6, height=32, width=48, seed=seed)
    store = str(tmp_path / "s.zarr")
    params = DecodeParams()  # what `vmac ingest` uses without options
    items = {os.path.basename(i.uri): i for i in expand_sources([str(tmp_path / "videos")])}
    for name in ("done.mp4", "stuck.mp4"):
        ingest_video(items[name], store, params)
    stuck = items["stuck.mp4"].video_id
    # A record still ``writing``: what a store converted from format 1 holds for a decode a kill interrupted.
    put_video(store, read_catalog(store)[stuck].model_copy(update={"status": Status.writing}))
    before = snapshot(store)

    assert main(["ingest", str(tmp_path / "videos"), "--store", store, "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "to decode" in rows[items["new.mp4"].video_id] and "not in the store" in rows[items["new.mp4"].video_id]
    assert "to retry" in rows[stuck] and "interrupted while writing" in rows[stuck]
    assert "up to date" in rows[items["done.mp4"].video_id]
    assert "1 to decode, 1 to retry, 1 up to date" in out
    assert snapshot(store) == before

    # Against a store that does not exist yet: everything is to decode, and no store is created.
    missing = tmp_path / "none.zarr"
    assert main(["ingest", str(tmp_path / "videos"), "--store", str(missing), "--dry-run"]) == 0
    assert "3 to decode, 0 to retry, 0 up to date" in capsys.readouterr().out
    assert not missing.exists()
