"""Writers never disturb readers, and two writers never lose each other's work, with real processes:

- two ingests started together into one store (a local folder, and a bucket on moto's S3 server)
  over overlapping videos both succeed, and each video is stored once;
- a re-decode committed while a pre-training process trains changes nothing it reads: it ends with
  the metrics a run on the earlier snapshot has (``STORE@SNAPSHOT``, run after the re-decode);
- the issue's own trial, with the ``vmac`` commands a user types: ``vmac ingest --short-side``
  re-decodes the video ``vmac pretrain`` is reading; pre-training finishes on its snapshot, and
  ``vmac audit RUN`` afterwards re-hashes the frames the run read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage_schemas.layout import FRAMES, VIDEOS_GROUP
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.snapshots import list_tags
from tasks.io.sources import expand_sources
from tasks.io.store import open_snapshot
from tasks.io.uris import filesystem, join
from tests.io.test_cloud_store import BUCKET, s3, upload  # noqa: F401 - the s3 fixture

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
VMAC = shutil.which("vmac", path=os.path.dirname(sys.executable))

INGEST = """
import json, sys
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
store, sources = sys.argv[1], sys.argv[2:]
outcomes = [ingest_video(item, store, DecodeParams(short_side=32, shard_frames=4)) for item in expand_sources(sources)]
print(json.dumps({o.video_id: o.action for o in outcomes}))
"""


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def _version_folders(store: str) -> dict[str, list[str]]:
    fs, base = filesystem(join(store, VIDEOS_GROUP))
    found: dict[str, list[str]] = {}
    for path in fs.find(base):
        parts = path[len(base.rstrip("/")) + 1:].split("/")
        if len(parts) >= 3 and parts[2] == "zarr.json":
            found.setdefault(parts[0], []).append(parts[1])
    return found


@pytest.mark.parametrize("where", ["local", "s3"])
def test_two_ingests_into_one_store_both_succeed_and_store_each_video_once(where, tmp_path, make_video, request):
    names = [f"v{k}.mp4" for k in range(6)]
    for seed, name in enumerate(names):
        make_video(name, frames=8, height=32, width=48, seed=seed)
    sources = [str(tmp_path / "videos" / name) for name in names]
    if where == "s3":
        fs = request.getfixturevalue("s3")
        upload(fs, tmp_path / "videos", f"s3://{BUCKET}/videos")
        sources = [f"s3://{BUCKET}/videos/{name}" for name in names]
        store = f"s3://{BUCKET}/frames.zarr"
    else:
        store = str(tmp_path / "s.zarr")
    # Both start with the same videos in the same order, so they race for the same commits and
    # decode the same videos at the same time.
    first, second = _spawn(INGEST, store, *sources[:4]), _spawn(INGEST, store, *sources)
    results = [json.loads(child.communicate(timeout=600)[0].strip().splitlines()[-1]) for child in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0)
    tip = open_snapshot(store)
    assert len(tip.entries) == 6 and all(record["status"] == "complete" for record in
                                         (e.record for e in tip.entries.values()))
    for video_id in tip.entries:
        actions = sorted(result[video_id] for result in results if video_id in result)
        assert actions in (["decoded"], ["decoded", "skipped"]), (video_id, actions)  # decoded by one of them
    # Stored once: one version folder per video, the one the catalog names (a redundant copy is deleted).
    assert {v: sorted(f) for v, f in _version_folders(store).items()} == {
        v: [e.version] for v, e in tip.entries.items()}


TRAIN = """
import sys
from storage_schemas.config import build_pretrain_config, nest_overrides
from tasks.pretrain.train import train
store, out = sys.argv[1], sys.argv[2]
values = {"encoder": "convnextv2_atto", "input_size": 32, "decoder_dim": 32, "batch_size": 4, "loader_workers": 1,
          "warmup_epochs": 0, "base_lr": 1e-3, "checkpoint_every": 1000, "preview_every": 1000, "plot_every": 1000,
          "log_every": 1000, "progress": False, "threads": 1, "max_steps": 24, "stores": [store], "out": out}
train(build_pretrain_config(None, nest_overrides(values)))
"""


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_redecode_during_pretraining_changes_nothing_it_reads(tmp_path, make_video):
    for seed in range(2):
        make_video(f"clip{seed}.mp4", frames=16, height=48, width=64, seed=seed)
    store = str(tmp_path / "s.zarr")
    items = expand_sources([str(tmp_path / "videos")])
    for item in items:
        ingest_video(item, store, DecodeParams(short_side=32, shard_frames=4))
    before = open_snapshot(store)

    training = _spawn(TRAIN, store, str(tmp_path / "during"))
    metrics = tmp_path / "during" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().strip()) and training.poll() is None:
        assert time.monotonic() < deadline, "pre-training never wrote its first step"
        time.sleep(0.05)
    # Mid-run: both videos decoded again at another size, committed while the run reads.
    for item in items:
        assert ingest_video(item, store, DecodeParams(short_side=24, shard_frames=4)).action == "decoded"
    steps_before_end = len(metrics.read_text().splitlines())
    assert training.wait(timeout=600) == 0
    assert steps_before_end < 24, "the re-decode must land while the run still trains"
    tip = open_snapshot(store)
    assert tip.group(min(tip.entries))[FRAMES].shape[1] == 24

    # The same run on the earlier snapshot, started after the re-decode: the same losses, step for step.
    again = _spawn(TRAIN, before.ref, str(tmp_path / "again"))
    assert again.wait(timeout=600) == 0
    assert _losses(tmp_path / "during") == _losses(tmp_path / "again")
    config = json.loads((tmp_path / "during" / "config.json").read_text())
    assert config["stores"] == [before.ref]  # the run names the snapshot it read
    assert {tag.snapshot for tag in list_tags(store)} == {before.id}  # both runs tagged it


def _vmac(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VMAC, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.mark.skipif(VMAC is None, reason="the vmac console script is not installed beside this Python")
def test_vmac_ingest_redecodes_what_vmac_pretrain_reads_and_vmac_audit_finds_the_old_frames(tmp_path, make_video):
    make_video("clip.mp4", frames=16, height=48, width=64)
    videos, store, run = str(tmp_path / "videos"), str(tmp_path / "s.zarr"), tmp_path / "run"
    [item] = expand_sources([videos])
    ingest_video(item, store, DecodeParams(short_side=32))
    before = open_snapshot(store)
    # Long enough for the re-decode below to land mid-run: the command (a Dask cluster's start, the
    # decode) took 38 s at load 5, while the run went from its first step to step 115 of 300.
    steps = 200
    settings = {"model.input_size": 32, "model.decoder_dim": 32, "optimiser.batch_size": 4, "optimiser.max_steps": steps,
                "optimiser.warmup_epochs": 0, "data.loader_workers": 1, "run.threads": 1, "run.progress": "false",
                "run.checkpoint_every": 1000, "run.preview_every": 1000, "run.plot_every": 1000,
                "run.log_every": 1000, "run.tensorboard": "false"}
    training = subprocess.Popen(
        [VMAC, "pretrain", "--store", store, "--out", str(run), "--preset", "tiny-cpu", "--skip-validation-check",
         *[arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (metrics.exists() and metrics.read_text().strip()) and training.poll() is None:
        assert time.monotonic() < deadline, "pre-training never wrote its first step"
        time.sleep(0.1)
    # The same video decoded again at another size into the same store, while the run reads it.
    redo = _vmac("ingest", videos, "--store", store, "--short-side", "24", "--workers", "1", "--no-progress")
    steps_at_commit = len(metrics.read_text().splitlines())
    assert redo.returncode == 0, redo.stderr[-2000:]
    out, err = training.communicate(timeout=600)
    assert training.returncode == 0, err[-3000:]
    assert steps_at_commit < steps, "the re-decode must land while the run still trains"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, steps + 1))

    tip = open_snapshot(store)
    [video] = tip.entries
    assert tip.entries[video].version != before.entries[video].version
    assert tip.group(video)[FRAMES].shape[1] == 24 and before.group(video)[FRAMES].shape[1] == 32
    assert json.loads((run / "config.json").read_text())["stores"] == [before.ref]  # the snapshot it read
    audit = _vmac("audit", str(run), "--json", "--no-progress")
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
    report = json.loads(audit.stdout)
    assert not report["drifts"] and report["checked"]["frames"] == 1  # the 32-px frames, re-hashed
