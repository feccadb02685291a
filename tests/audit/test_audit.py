"""vmac lineage and vmac audit on real stores, a real tiny pre-training run and a real evaluation.

The issue's test: one edited source and one edited stored chunk are both reported, a clean
store reports nothing, lineage reaches the source hashes from a benchmark, records stay
append-only, and failed or interrupted runs say so.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from storage_schemas.layout import FRAMES, LINEAGE_DIR
from tasks.audit.rehash import audit
from tasks.audit.tree import lineage_tree
from tasks.io.files import file_sha256
from tasks.io.sources import expand_sources, hash_source
from tasks.io.store import open_snapshot, read_catalog
from tests.audit.conftest import ingest, train_tiny, write_videos
from tests.stores import writable_group


def _lineage_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (folder / LINEAGE_DIR).glob("*.json") if p.name != "zarr.json"}


def _walk(node: dict):
    yield node
    for child in node["children"]:
        yield from _walk(child)


def _drifts(report) -> set[tuple[str, str | None, str]]:
    return {(d.what, d.video_id, d.detail.split(":")[0]) for d in report.drifts}


def _ids(store: str) -> dict[str, str]:
    """source file name → video_id."""
    return {Path(r.source_uri).name: vid for vid, r in read_catalog(store).items()}


# --- store audit -------------------------------------------------------------------------------


def test_edited_source_and_edited_chunk_are_both_reported(tmp_path):
    clips = write_videos(tmp_path / "videos", 3)
    store = ingest([tmp_path / "videos"], tmp_path / "s.zarr")
    ids = _ids(store)
    before = _lineage_files(Path(store))

    clean = audit(store)
    assert not clean.drifted and clean.checked == {"sources": 3, "frames": 3}

    # One source edited, one stored chunk given different pixels, one source deleted and its
    # shard file overwritten in place.
    with open(clips[0], "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00" * 16)
    frames = writable_group(store, ids["clip1.mp4"])[FRAMES]  # edits vmac never makes: what audit is for
    frames[3] = 255 - frames[3]
    clips[2].unlink()
    shard = Path(store) / open_snapshot(store).path(ids["clip2.mp4"]) / FRAMES / "c" / "1" / "0" / "0" / "0"
    raw = bytearray(shard.read_bytes())
    raw[10:60] = b"\xff" * 50
    shard.write_bytes(bytes(raw))

    report = audit(store)
    assert _drifts(report) == {
        ("source", ids["clip0.mp4"], "changed"),
        ("frames", ids["clip1.mp4"], "changed"),
        ("source", ids["clip2.mp4"], "missing"),
        ("frames", ids["clip2.mp4"], "unreadable"),  # Blosc refuses the overwritten chunk
    }
    edited = next(d for d in report.drifts if d.what == "source" and d.detail == "changed")
    assert edited.uri == str(clips[0]) and edited.found == file_sha256(str(clips[0]))
    assert edited.recorded == read_catalog(store)[ids["clip0.mp4"]].sha256
    chunk = next(d for d in report.drifts if d.what == "frames" and d.video_id == ids["clip1.mp4"])
    assert chunk.uri.endswith(f"{open_snapshot(store).path(ids['clip1.mp4'])}/{FRAMES}") and chunk.found
    assert chunk.recorded

    # Append-only: each audit added one record and rewrote none.
    after = _lineage_files(Path(store))
    assert {k: v for k, v in after.items() if k in before} == before
    new = sorted(set(after) - set(before))
    assert len(new) == 2 and "-audit-completed-" in new[0] and "-audit-drift_found-" in new[1]
    assert report.record_path.endswith(new[1])
    record = json.loads(after[new[1]])
    assert record["kind"] == "audit" and record["status"] == "drift_found"
    assert {i["facets"].get("video_id") for i in record["inputs"][1:]} == {ids[f"clip{i}.mp4"] for i in range(3)}

    # The same audit with each video re-hashed on a LocalCluster of worker processes finds the same.
    on_dask = audit(store, dask_workers=2)
    assert (on_dask.drifts, on_dask.checked, on_dask.notes) == (report.drifts, report.checked, report.notes)


def test_frame_folder_source_hash_covers_its_masks(tmp_path):
    from tests.evaluate.conftest import write_davis

    write_davis(tmp_path / "davis", {"blobs": 1}, frames=3, size=(32, 40))
    store = ingest([tmp_path / "davis"], tmp_path / "d.zarr", short_side=0)
    clean = audit(store)
    assert not clean.drifted and clean.checked["sources"] == 1
    assert not any("not re-hashed" in note for note in clean.notes)

    mask = tmp_path / "davis" / "Annotations" / "480p" / "blobs" / "00001.png"
    mask.write_bytes(mask.read_bytes() + b"\0")
    [drift] = audit(store).drifts
    assert (drift.what, drift.detail) == ("source", "changed")
    [item] = expand_sources([str(tmp_path / "davis")])
    assert drift.found == hash_source(item)[0]


# --- run audit ---------------------------------------------------------------------------------


def test_run_audit_rehashes_outputs_and_the_frames_it_trained_on(pipeline, tmp_path, restore_after):
    assert not audit(str(pipeline.run_dir)).drifted

    # A moved run directory still audits: recorded paths below it move with it.
    moved = tmp_path / "moved-run"
    shutil.copytree(pipeline.run_dir, moved)
    clean = audit(str(moved))
    assert not clean.drifted and clean.checked == {"files": 2, "frames": 2}
    (moved / "encoder.pt").write_bytes((moved / "encoder.pt").read_bytes() + b"\0")

    video_id = min(read_catalog(pipeline.store))
    group = Path(pipeline.store) / open_snapshot(pipeline.store).path(video_id)
    restore_after(group)
    frames = writable_group(pipeline.store, video_id)[FRAMES]
    frames[0] = np.zeros(frames.shape[1:], np.uint8)

    report = audit(str(moved))
    assert _drifts(report) == {("encoder", None, "changed"), ("frames", video_id, "changed")}
    on_dask = audit(str(moved), dask_workers=2)  # the frames re-hashed on a LocalCluster
    assert (on_dask.drifts, on_dask.checked) == (report.drifts, report.checked)
    encoder = next(d for d in report.drifts if d.what == "encoder")
    assert encoder.uri == str(moved / "encoder.pt") and encoder.recorded == file_sha256(str(pipeline.encoder))


def test_audit_refuses_what_it_cannot_audit(pipeline):
    with pytest.raises(ValueError, match="neither a vmac store nor a run directory"):
        audit(str(pipeline.eval_out))


# --- lineage -----------------------------------------------------------------------------------


def test_lineage_from_a_benchmark_reaches_the_source_hashes(pipeline):
    tree = lineage_tree(str(pipeline.benchmark))
    assert tree["kind"] == "benchmark" and tree["record"]["kind"] == "evaluate"
    assert tree["sha256"] == file_sha256(str(pipeline.benchmark))
    [encoder] = [c for c in tree["children"] if c["kind"] == "encoder"]
    assert encoder["uri"] == str(pipeline.encoder) and encoder["sha256"] == file_sha256(str(pipeline.encoder))
    assert encoder["record"]["kind"] == "pretrain" and encoder["record"]["status"] == "completed"
    [store] = encoder["children"]
    assert store["kind"] == "store" and store["uri"] == pipeline.store
    assert store["validation"]["passed"] and store["validation"]["matches_recorded_catalog"]
    videos = store["children"]
    assert len(videos) == 2 and all(v["record"]["kind"] == "ingest" for v in videos)
    catalog = read_catalog(pipeline.store)
    for video in videos:
        row = catalog[video["video_id"]]
        assert video["sha256"] == row.frames_sha256
        [source] = video["children"]
        assert source["kind"] == "source" and source["uri"] == row.source_uri
        assert source["sha256"] == file_sha256(source["uri"])

    # The evaluation's data store: the DAVIS frame folder, hashed with its masks.
    [davis] = [c for c in tree["children"] if c["kind"] == "store"]
    [item] = expand_sources([str(Path(pipeline.davis_store).parent / "davis")])
    [source] = [n for n in _walk(davis) if n["kind"] == "source"]
    assert source["sha256"] == hash_source(item)[0]


@pytest.mark.parametrize("start", ["encoder", "checkpoint", "run_dir", "video", "store", "eval_out"])
def test_lineage_from_any_artifact(pipeline, start):
    video = Path(pipeline.store) / open_snapshot(pipeline.store).path(min(read_catalog(pipeline.store)))
    path = {"encoder": pipeline.encoder, "checkpoint": pipeline.checkpoint, "run_dir": pipeline.run_dir,
            "video": video / FRAMES, "store": pipeline.store, "eval_out": pipeline.eval_out}[start]
    tree = lineage_tree(str(path))
    expected_kind = {"encoder": "encoder", "checkpoint": "checkpoint", "run_dir": "run", "video": "video",
                     "store": "store", "eval_out": "evaluation"}[start]
    assert tree["kind"] == expected_kind
    sources = [n for n in _walk(tree) if n["kind"] == "source"]
    assert sources and all(len(n["sha256"]) == 64 for n in sources)
    if start == "run_dir":
        statuses = [r["status"] for r in tree["records"]]
        # The 2-step run checkpointed once, at its last step.
        assert statuses[:3] == ["started", "checkpoint", "completed"] and tree["record"]["status"] == "completed"


def test_failed_and_interrupted_runs_say_so(pipeline, tmp_path):
    from tasks.pretrain.step import NonFiniteLossError

    failed = tmp_path / "failed"
    with pytest.raises(NonFiniteLossError):
        train_tiny(pipeline.store, failed, base_lr=1e30, max_steps=20, checkpoint_every=1)
    tree = lineage_tree(str(failed))
    assert tree["kind"] == "run" and tree["record"]["status"] == "failed"
    assert "non-finite loss" in tree["record"]["error"] and tree["record"]["finished"]
    assert [n["kind"] for n in tree["children"]] == ["store"]  # still traced to what it read
    # A checkpoint of the failed run is named by its checkpoint record, which the failure closed.
    ckpt = max((failed / "checkpoints").glob("*.pt"))
    node = lineage_tree(str(ckpt))
    assert node["record"]["status"] == "checkpoint" and node["record"]["finished"]
    assert node["sha256"] == file_sha256(str(ckpt)) and [n["kind"] for n in node["children"]] == ["store"]

    def die(message: str) -> None:  # the process dies right after its "started" record
        raise KeyboardInterrupt

    interrupted = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train_tiny(pipeline.store, interrupted, log=die)
    tree = lineage_tree(str(interrupted))
    assert tree["record"]["status"] == "started" and tree["record"]["finished"] is False
    report = audit(str(interrupted))
    assert not report.drifted and any("no completed record" in note for note in report.notes)

    from rich.console import Console

    from cli.render import render_tree

    console = Console(record=True, width=200)
    console.print(render_tree(lineage_tree(str(interrupted))))
    assert "never finished (interrupted?)" in console.export_text()


# --- CLI ---------------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    from cli.main import build_parser

    return build_parser().parse_args(argv)


def test_vmac_lineage_prints_json_and_a_tree(pipeline, capsys):
    args = _parse(["lineage", str(pipeline.encoder), "--json"])
    assert args.func(args) == 0
    tree = json.loads(capsys.readouterr().out)
    assert tree["kind"] == "encoder" and tree["children"][0]["kind"] == "store"

    args = _parse(["lineage", str(pipeline.benchmark)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "evaluate completed" in out and "pretrain completed" in out and "validation passed" in out

    from cli.main import main

    assert main(["lineage", str(pipeline.run_dir / "nothing-here")]) == 2
    assert capsys.readouterr().err.strip() == f"vmac lineage: PATH {pipeline.run_dir / 'nothing-here'}: no such file or folder"


@pytest.mark.slow
def test_vmac_audit_through_prefect(prefect_harness, tmp_path, capsys):
    from prefect.client.orchestration import get_client

    from flows.audit import audit_flow, lineage_flow

    clips = write_videos(tmp_path / "videos", 2)
    store = ingest([tmp_path / "videos"], tmp_path / "s.zarr")
    assert lineage_flow(store)["kind"] == "store"
    args = _parse(["audit", store, "--json", "--no-progress"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["drifts"] == []

    clips[1].write_bytes(clips[1].read_bytes()[:-10])
    args = _parse(["audit", store, "--json", "--no-progress"])
    assert args.func(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(d["what"], d["detail"]) for d in report["drifts"]] == [("source", "changed")]
    assert "-audit-drift_found-" in report["record_path"]

    import asyncio

    async def artifact_markdown() -> str:
        async with get_client() as client:
            [artifact] = await client.read_artifacts(limit=1, sort="CREATED_DESC")
            return artifact.data

    assert "1 drift(s) found" in asyncio.run(artifact_markdown())
    assert audit_flow(store, progress=False).drifted


def test_run_audit_rehashes_the_snapshot_it_trained_on_after_a_redecode(tmp_path):
    """A run's frames are re-decoded at another size after it trained: the audit reads the snapshot
    the run recorded (tagged by the run, so ``vmac gc`` keeps it) and finds no drift."""
    from datetime import timedelta

    from tasks.io.gc import collect_garbage
    from tasks.io.snapshots import list_tags

    write_videos(tmp_path / "videos", 2)
    store = ingest([tmp_path / "videos"], tmp_path / "s.zarr")
    trained = open_snapshot(store)
    train_tiny(store, tmp_path / "run")
    ingest([tmp_path / "videos"], tmp_path / "s.zarr", short_side=24)  # both videos decoded again
    tip = open_snapshot(store)
    assert all(tip.entries[v].version != trained.entries[v].version for v in tip.entries)
    [tag] = list_tags(store)
    assert tag.name.startswith("run-") and tag.snapshot == trained.id
    collect_garbage(store, timedelta(days=0))  # expires every untagged snapshot but the tip
    report = audit(str(tmp_path / "run"))
    assert not report.drifted and report.checked == {"files": 2, "frames": 2}  # checkpoint and encoder
    assert open_snapshot(f"{store}@{tag.name}").group(min(tip.entries))[FRAMES].shape[1] == 32
    assert tip.group(min(tip.entries))[FRAMES].shape[1] == 24

    # Without the tag, gc frees the frames the run read, and the audit says so.
    (Path(store) / "refs" / "tags" / f"{tag.name}.json").unlink()
    collect_garbage(store, timedelta(days=0))
    drifts = audit(str(tmp_path / "run")).drifts
    assert [(d.what, d.detail.split(":")[0]) for d in drifts] == [("store", "snapshot missing")]
