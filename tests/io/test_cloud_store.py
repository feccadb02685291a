"""Stores on S3: ingest → validate → pre-training loader → evaluate against an S3-compatible server.

The server is moto's (``moto.server.ThreadedMotoServer``, installed by the dev extra), on loopback,
started and stopped by the ``s3`` fixture. vmac reaches it the way a user reaches MinIO or any
S3-compatible store: ``AWS_ENDPOINT_URL`` plus credentials in the environment, which the Dask worker
processes inherit. Sources are read from S3 too, as in the README's
``vmac ingest s3://bucket/videos --store s3://bucket/frames.zarr``.
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path

import numpy as np
import pytest

BUCKET = "vmac-test"


@pytest.fixture
def s3(monkeypatch):
    """An S3 endpoint on 127.0.0.1 with one empty bucket; yields the fsspec filesystem."""
    s3fs = pytest.importorskip("s3fs", reason="the s3 extra (vmac[s3]) is not installed")
    server_module = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}.items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()  # instances made before read another endpoint
        # moto keeps its buckets in the process, across servers: start each test from none.
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))
        fs = s3fs.S3FileSystem()
        fs.mkdir(BUCKET)
        yield fs
    finally:
        server.stop()
        s3fs.S3FileSystem.clear_instance_cache()


def upload(fs, local: Path, url: str) -> None:
    fs.put(str(local), url.removeprefix("s3://"), recursive=local.is_dir())


@pytest.mark.slow
def test_ingest_validate_load_and_evaluate_on_s3(s3, prefect_harness, make_video, tmp_path):
    from flows.evaluate import evaluate_flow
    from flows.ingest import ingest_flow
    from flows.validate import validate_flow
    from storage_schemas.benchmark import BenchmarkReport, EvaluateConfig
    from storage_schemas.config import IngestConfig
    from storage_schemas.layout import FRAMES
    from storage_schemas.validation import ValidateConfig
    from tasks.audit.tree import lineage_tree
    from tasks.io.lineage import read_records
    from tasks.io.stamp import validation_status
    from tasks.io.store import open_snapshot, read_catalog
    from tasks.pretrain.index import PairIndex
    from tasks.pretrain.loader import FramePairDataset, make_pair_loader
    from tests.evaluate.conftest import write_davis

    # Sources on S3: two clips and a DAVIS folder.
    for seed, name in enumerate(("a.mp4", "b.mp4")):
        make_video(name, frames=10, height=64, width=96, seed=seed)
    upload(s3, tmp_path / "videos", f"s3://{BUCKET}/videos")
    write_davis(tmp_path / "davis", {"blobs": 2}, frames=4)
    upload(s3, tmp_path / "davis", f"s3://{BUCKET}/davis")

    # Ingest on a LocalCluster of worker processes (they inherit the endpoint from the environment).
    store = f"s3://{BUCKET}/frames.zarr"
    config = IngestConfig(sources=[f"s3://{BUCKET}/videos"], store=store, dask_workers=1, progress=False)
    result = ingest_flow(config)
    assert [o.action for o in result.outcomes] == ["decoded", "decoded"] and result.frames_decoded == 20
    assert [o.action for o in ingest_flow(config).outcomes] == ["skipped", "skipped"]  # incremental on S3 too
    catalog = read_catalog(store)
    assert sorted(r.source_uri for r in catalog.values()) == [f"s3://{BUCKET}/videos/a.mp4", f"s3://{BUCKET}/videos/b.mp4"]
    assert all(r.status.value == "complete" and r.frames_sha256 for r in catalog.values())

    # Validation writes its result files into the store on S3 and stamps it.
    summary = validate_flow(ValidateConfig(store=store))
    assert summary.passed and validation_status(store) == summary.stamp
    assert summary.stamp.result_path.startswith(f"{store}/validation/")
    assert s3.exists(summary.stamp.result_path) and s3.exists(summary.stamp.report_path)
    # Two ingest runs and one validation, each a started record and its final one.
    assert [(r.kind, r.status) for r in read_records(f"{store}/lineage")] == [
        ("ingest", "started"), ("ingest", "completed"), ("ingest", "started"), ("ingest", "completed"),
        ("validate", "started"), ("validate", "completed")]

    # The pre-training loader reads the shards straight from S3 (one cat_ranges call per batch).
    dataset = FramePairDataset(PairIndex([store]), 32)
    assert all(dataset._handle(v)[1] is not None for v in range(len(dataset.index.videos)))
    starts = np.array([v.frames - 2 for v in dataset.index.videos])
    pairs = dataset.read_pairs(np.arange(len(starts)), starts, np.ones(len(starts), int))
    snapshot = open_snapshot(store)
    for video, t, pair in zip(dataset.index.videos, starts, pairs):
        assert np.array_equal(pair, snapshot.group(video.video_id)[FRAMES][t:t + 2])
    loader, _ = make_pair_loader([store], 32, batch_size=4, loader_workers=0, seed=0)
    assert next(iter(loader))["frame1_bchw"].shape == (4, 3, 32, 32)

    # Evaluation reads a labelled store on S3 (ingested from S3) and writes its report locally.
    eval_store = f"s3://{BUCKET}/eval.zarr"
    ingest_flow(IngestConfig(sources=[f"s3://{BUCKET}/davis"], store=eval_store, dask_workers=1, progress=False,
                             decode={"short_side": 0}))
    out = tmp_path / "eval"
    evaluation = evaluate_flow(EvaluateConfig(checkpoints=[], random_init=True, encoder="resnet18", data=eval_store,
                                              out=str(out), device="cpu", threads=1))
    assert evaluation.store == eval_store
    # The random-init floor and the raw-pixel floor beside it, both read from S3.
    reports = [BenchmarkReport.model_validate_json(Path(p).read_text()) for p in evaluation.reports]
    assert sorted(r.checkpoint.kind if not r.random_init else "random-init" for r in reports) == ["pixels", "random-init"]
    for report in reports:
        assert report.data.store == eval_store and [s.sequence for s in report.sequences] == ["blobs"]
        assert 0 <= report.sequences[0].metrics["J-Mean"] <= 1

    # Lineage leads from the local benchmark back to the store on S3 and its source hashes there.
    tree = lineage_tree(evaluation.reports[0])
    stores = [node for node in _walk(tree) if node["kind"] == "store"]
    assert [node["uri"] for node in stores] == [eval_store]
    sources = [node for node in _walk(tree) if node["kind"] == "source"]
    assert sources and all(node["uri"].startswith(f"s3://{BUCKET}/davis") and node["sha256"] for node in sources)


def _walk(node: dict):
    yield node
    for child in node["children"]:
        yield from _walk(child)


class _Requests(logging.Handler):
    """The HTTP requests moto's server answers (werkzeug logs one line per request), as
    ``"METHOD /path"``."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        message = record.getMessage()
        if '"' in message:
            self.lines.append(" ".join(message.split('"')[1].split()[:2]))


def _count_requests(fs, action) -> list[str]:
    """The requests ``action()`` makes, from cold: no snapshot or listing kept from before."""
    from tasks.io.snapshots import forget_snapshots

    forget_snapshots()
    fs.invalidate_cache()
    counter, server_log = _Requests(), logging.getLogger("werkzeug")
    server_log.setLevel(logging.INFO)
    server_log.addHandler(counter)
    try:
        action()
    finally:
        server_log.removeHandler(counter)
        server_log.setLevel(logging.ERROR)
    return counter.lines


def test_no_op_plans_and_catalog_reads_take_the_same_requests_whatever_the_video_count(s3, tmp_path):
    """Issue 23: a no-op ingest's plan (listing, stat fingerprints, catalog) and a catalog read
    make as many requests for 10 videos as for 2, and for a catalog of 1,000 as for one of 2:
    no request per video."""
    from storage_schemas.config import IngestConfig
    from storage_schemas.records import DecodeParams
    from tasks.ingest.plan import plan_sources
    from tasks.ingest.video import ingest_video
    from tasks.io.snapshots import commit
    from tasks.io.store import read_catalog
    from tests.audit.conftest import write_videos

    clips = write_videos(tmp_path / "clips", 10, frames=4)
    plans = {}
    for count in (2, 10):
        for clip in clips[:count]:
            upload(s3, clip, f"s3://{BUCKET}/videos-{count}/{clip.name}")
        config = IngestConfig(sources=[f"s3://{BUCKET}/videos-{count}"], store=f"s3://{BUCKET}/s{count}.zarr",
                              decode=DecodeParams(short_side=32), progress=False)
        plan = plan_sources(config)
        assert [ingest_video(item, config.store, plan.decode).action for item in plan.todo] == ["decoded"] * count
        plans[count] = _count_requests(s3, lambda config=config: plans.setdefault(f"plan{count}", plan_sources(config)))
        assert not plans[f"plan{count}"].todo and len(plans[f"plan{count}"].up_to_date) == count
    assert len(plans[2]) == len(plans[10]), (plans[2], plans[10])
    assert not any(line.startswith("GET") and "/videos-" in line and "list-type" not in line for line in plans[10]), \
        "a no-op plan read a source's bytes"

    store = f"s3://{BUCKET}/s2.zarr"
    small = _count_requests(s3, lambda: read_catalog(store))
    [(video_id, entry)] = list(commit(store, lambda v, s: (v, s), "test")[1].videos.items())[:1]

    def thousand(videos, stamp):  # the same entry under 1,000 ids: a catalog of 1,000 videos
        return {**videos, **{f"{video_id}-{k:04d}": entry for k in range(998)}}, stamp

    commit(store, thousand, "test")
    catalog: dict = {}
    large = _count_requests(s3, lambda: catalog.update(read_catalog(store)))
    assert len(catalog) == 1000 and len(large) == len(small), (small, large)
