"""A no-op ingest costs what changed: sources whose stat fingerprint is unchanged are not read
again, inputs that failed for good are not retried, and a source that changes while it is read
leaves nothing recorded (docs/scale.md)."""

from __future__ import annotations

import os

from storage_schemas.config import IngestConfig
from storage_schemas.records import DecodeParams, Status
from tasks.ingest.plan import plan_sources
from tasks.ingest.video import ingest_video
from tasks.io import sources
from tasks.io.store import read_catalog
from tests.conftest import write_bad_inputs


def _ingest_plan(config: IngestConfig) -> None:
    plan = plan_sources(config)
    for item in plan.todo:
        ingest_video(item, config.store, plan.decode, retry_failed=config.retry_failed)


def test_unchanged_sources_are_not_read_again_and_rehash_reads_them(tmp_path, make_video, monkeypatch):
    for k in range(3):
        make_video(f"c{k}.mp4", frames=6, seed=k)
    config = IngestConfig(sources=[str(tmp_path / "videos")], store=str(tmp_path / "s.zarr"),
                          decode=DecodeParams(short_side=32))
    _ingest_plan(config)
    assert all(r.source_fingerprint for r in read_catalog(config.store).values())
    reads: list[str] = []
    real = sources.hash_file
    monkeypatch.setattr(sources, "hash_file", lambda uri, *a: reads.append(uri) or real(uri, *a))
    plan = plan_sources(config)
    assert not plan.todo and len(plan.up_to_date) == 3 and reads == []
    plan = plan_sources(config.model_copy(update={"rehash": True}))
    assert not plan.todo and len(reads) == 3
    # An edit that keeps size and modification time still moves the change time: read, and decoded again.
    target = tmp_path / "videos" / "c1.mp4"
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    reads.clear()
    plan = plan_sources(config)
    assert [item.uri for item in plan.todo] == [str(target)] and reads == [str(target)]


def test_inputs_that_failed_for_good_are_not_retried_unless_asked(tmp_path):
    write_bad_inputs(tmp_path / "bad")
    config = IngestConfig(sources=[str(tmp_path / "bad")], store=str(tmp_path / "s.zarr"))
    _ingest_plan(config)
    catalog = read_catalog(config.store)
    assert len(catalog) == 5 and all(r.status is Status.failed and r.decode_key for r in catalog.values())
    plan = plan_sources(config)
    assert not plan.todo and {o.action for o in plan.up_to_date} == {"failed"}  # the empty file too
    retried = plan_sources(config.model_copy(update={"retry_failed": True}))
    assert len(retried.todo) == 5
    outcome = ingest_video(retried.todo[0], config.store, retried.decode, retry_failed=True)
    assert outcome.action == "failed"  # decoded again, failed again: the same bytes


def test_a_source_that_changes_while_it_is_read_leaves_nothing_recorded(tmp_path, make_video):
    path = make_video("moving.mp4", frames=24)
    config = IngestConfig(sources=[str(path)], store=str(tmp_path / "s.zarr"), decode=DecodeParams(shard_frames=8))
    [item] = plan_sources(config).todo

    def touch(frames: int) -> None:
        with open(path, "ab") as handle:  # a download still being written, a sync tool replacing it
            handle.write(b"\0")

    outcome = ingest_video(item, config.store, DecodeParams(shard_frames=8), on_frames=touch)
    assert outcome.action == "retry" and "changed while vmac read it" in outcome.reason
    assert item.video_id not in read_catalog(config.store)
