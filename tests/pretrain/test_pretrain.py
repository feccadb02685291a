"""Pre-training on a real store: exact resume after SIGKILL with every mask strategy, DDP on 2 CPU
processes, NaN stop, validation gate, a motion strategy without motion maps refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from storage_schemas.config import build_pretrain_config, nest_overrides
from storage_schemas.records import DecodeParams
from tasks.ingest.video import ingest_video
from tasks.io.sources import expand_sources
from tasks.pretrain.checkpoints import checkpoint_paths

ROOT = Path(__file__).resolve().parents[2]

TINY = {
    "encoder": "convnextv2_atto", "input_size": 64, "decoder_dim": 32, "batch_size": 4, "loader_workers": 0,
    "warmup_epochs": 0, "base_lr": 1e-3, "checkpoint_every": 4, "preview_every": 1000, "plot_every": 1000,
    "log_every": 1000, "progress": False, "skip_validation_check": True,
}


def _ingest_clips(folder: Path, count: int, motion: bool) -> str:
    from tasks.io.ffmpeg import encode_video
    from tests.conftest import moving_frames

    for i in range(count):
        encode_video(moving_frames(24, 72, 96, seed=i), str(folder / f"v{i}.mp4"), 12)
    store = str(folder / "s.zarr")
    for item in expand_sources([str(folder)]):
        assert ingest_video(item, store, DecodeParams(short_side=64, motion=motion)).action == "decoded"
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two clips ingested with --motion, so that every mask strategy can train on them."""
    return _ingest_clips(tmp_path_factory.mktemp("train-videos"), 2, motion=True)


def _config(store, out, **extra):
    return build_pretrain_config(None, nest_overrides({**TINY, "stores": [store], "out": str(out), **extra}))


def _losses(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] + r["loss_sampler"] for r in rows}


_TRAIN = """
import sys, json
from storage_schemas.config import PretrainConfig
from tasks.pretrain.train import train
train(PretrainConfig.model_validate(json.loads(sys.argv[1])), log=lambda m: None)
"""


@pytest.mark.parametrize("strategy", [
    "symmetric",
    # The others take the same path plus their draw; a minute each on a loaded machine.
    pytest.param("independent", marks=pytest.mark.slow),
    pytest.param("motion", marks=pytest.mark.slow),
    pytest.param("adaptive", marks=pytest.mark.slow),
])
def test_resume_after_sigkill_matches_uninterrupted_run(store, tmp_path, strategy):
    from tasks.pretrain.train import train

    reference = train(_config(store, tmp_path / "ref", max_steps=24, mask_strategy=strategy), log=lambda m: None)
    assert reference.steps == 24

    run_dir = tmp_path / "killed"
    config = _config(store, run_dir, max_steps=24, mask_strategy=strategy)
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN, config.model_dump_json()], cwd=ROOT)
    deadline = time.time() + 600  # a loaded machine: the loop stops as soon as checkpoint 8 exists
    while time.time() < deadline and not (run_dir / "checkpoints" / "ckpt-000008.pt").exists():
        if proc.poll() is not None:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").glob("ckpt-*.pt"))
    assert checkpoints and checkpoints[-1] != "ckpt-000024.pt", "the run finished before it could be killed"
    # No temp file is mistaken for a checkpoint, whatever moment the kill hit: an interrupted
    # atomic write leaves only a hidden temporary, which checkpoint_paths never lists.
    assert all(re.fullmatch(r"ckpt-\d{6}\.pt", p.name) for p in checkpoint_paths(run_dir))
    assert all(p.name.startswith((".ckpt-", "ckpt-")) for p in (run_dir / "checkpoints").iterdir())

    resumed = train(_config(store, run_dir, max_steps=24, resume=True, mask_strategy=strategy), log=lambda m: None)
    # The newest checkpoint the run recorded: a kill between a save and its lineage record leaves
    # one unrecorded, which a resume passes over (the one before it is still recorded and kept).
    assert resumed.resumed_from >= 4 and resumed.steps == 24
    want, got = _losses(tmp_path / "ref"), _losses(run_dir)
    assert sorted(got) == list(range(1, 25))  # replayed steps replaced, not duplicated
    for step in range(1, 25):
        assert got[step] == pytest.approx(want[step], rel=1e-5, abs=1e-7), step
    if strategy == "adaptive":
        # The sampler's weights are checkpointed, trained and restored with the rest.
        ckpt = torch.load(run_dir / "checkpoints" / "ckpt-000024.pt", weights_only=True)
        sampler = {k: v for k, v in ckpt["model"].items() if k.startswith("masking.sampler.")}
        assert sampler and sampler["masking.sampler.net.4.weight"].abs().sum() > 0
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert any(r["loss_sampler"] != 0 for r in rows)

    records = sorted(p.name for p in (run_dir / "lineage").glob("*.json"))
    assert [n.split("-pretrain-")[1].split("-")[0] for n in records].count("completed") == 1


def test_every_checkpoint_is_recorded_and_resume_loads_only_recorded_ones(store, tmp_path):
    from tasks.audit.rehash import audit
    from tasks.io.files import file_sha256
    from tasks.io.lineage import read_records
    from tasks.pretrain.train import train

    run_dir = tmp_path / "run"
    train(_config(store, run_dir, max_steps=8), log=lambda m: None)
    ckpt4, ckpt8 = checkpoint_paths(run_dir)
    written = {Path(d.uri).name: d.sha256 for r in read_records(str(run_dir / "lineage")) if r.status == "checkpoint"
               for d in r.outputs}
    assert written == {"ckpt-000004.pt": file_sha256(str(ckpt4)), "ckpt-000008.pt": file_sha256(str(ckpt8))}

    # A planted file named as the newest checkpoint (a real checkpoint, not one this run wrote),
    # and the run's own newest one changed afterwards.
    planted = run_dir / "checkpoints" / "ckpt-000012.pt"
    planted.write_bytes(ckpt8.read_bytes())
    report = audit(str(run_dir))
    assert [(d.what, d.uri, d.detail.split(":")[0]) for d in report.drifts] == [("checkpoint", str(planted), "unknown")]
    ckpt8.write_bytes(ckpt4.read_bytes())
    lines: list[str] = []
    resumed = train(_config(store, run_dir, max_steps=8, resume=True), log=lines.append)
    assert resumed.resumed_from == 4 and resumed.steps == 8
    assert f"not loading {planted}: no lineage record of this run names it" in lines
    assert f"not loading {ckpt8}: its bytes changed since the run recorded it" in lines
    assert planted.exists()  # not the run's to prune


_KILLED_WRITE = """
import sys, time
from tasks.io.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"the first half of a checkpoint")
    print("writing", flush=True)
    time.sleep(120)
"""


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_start_removes(store, tmp_path):
    from tasks.pretrain.train import train

    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITE, str(run_dir / "checkpoints" / "ckpt-000004.pt")],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [leftover] = (run_dir / "checkpoints").iterdir()
    # mkstemp's name: the writer's pid, then 8 random characters (never a name another user could plant first).
    assert re.fullmatch(rf"\.ckpt-000004\.vmac-tmp-{proc.pid}-[a-z0-9_]{{8}}\.pt", leftover.name)
    assert not checkpoint_paths(run_dir)
    lines: list[str] = []
    train(_config(store, run_dir, max_steps=2), log=lines.append)
    assert not leftover.exists()
    assert f"removed {leftover}: the temporary of a write that was killed" in lines


def test_outputs_and_exported_encoder_loads_dense(store, tmp_path):
    from tasks.pretrain.train import train
    from vmac_core.encoders import build_encoder

    result = train(_config(store, tmp_path / "run", max_steps=2, preview_every=2, plot_every=2), log=lambda m: None)
    run_dir = Path(result.run_dir)
    for name in ("config.json", "metrics.jsonl", "loss_curve.png", "encoder.pt", "previews/step-000002.png"):
        assert (run_dir / name).exists(), name
    exported = torch.load(run_dir / "encoder.pt", weights_only=True)
    encoder = build_encoder(exported["encoder"])
    encoder.load_state_dict(exported["state_dict"], strict=True)
    row = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss", "loss_online", "loss_target", "loss_consistency", "lr", "momentum", "pairs_per_s", "data_wait_s"} <= set(row)


def test_milestones_keep_their_checkpoints_and_metrics_record_cpu_time_and_threads(store, tmp_path):
    from tasks.pretrain.checkpoints import checkpoint_step
    from tasks.pretrain.train import seconds_before, train

    run_dir = tmp_path / "curve"
    train(_config(store, run_dir, max_steps=8, checkpoint_every=3, keep_checkpoints=1, threads=1,
                  milestones=[0.5, 0, 0.25]), log=lambda m: None)
    # Step 0 (the untrained weights), 2 and 4 are milestones; 8 is the last; 3 and 6 were pruned.
    assert [checkpoint_step(p) for p in checkpoint_paths(run_dir)] == [0, 2, 4, 8]
    assert torch.load(run_dir / "checkpoints" / "ckpt-000000.pt", weights_only=True)["step"] == 0
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {(r["threads"], r["omp_wait_policy"]) for r in rows} == {(1, os.environ.get("OMP_WAIT_POLICY", "default"))}
    cpu, wall = [r["cpu_s"] for r in rows], [r["wall_s"] for r in rows]
    assert 0 < cpu[0] and cpu == sorted(cpu) and wall == sorted(wall) and wall[-1] >= sum(r["step_s"] for r in rows)
    # A resumed run counts on from the seconds of the step it resumes at.
    assert seconds_before(run_dir, 4) == {"cpu_offset": rows[3]["cpu_s"], "wall_offset": rows[3]["wall_s"]}
    assert seconds_before(run_dir, 0) == {"cpu_offset": 0.0, "wall_offset": 0.0}
    with pytest.raises(ValueError, match="from 0 to 1"):
        _config(store, run_dir, milestones=[1.5])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(store, tmp_path):
    from tasks.pretrain.step import NonFiniteLossError
    from tasks.pretrain.train import train

    run_dir = tmp_path / "nan"
    config = _config(store, run_dir, max_steps=50, checkpoint_every=1, base_lr=1e30 * 256 / 4)
    with pytest.raises(NonFiniteLossError, match="non-finite loss") as err:
        train(config, log=lambda m: None)
    last = sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))[-1]
    assert str(last) in str(err.value)
    ckpt = torch.load(last, weights_only=True)
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())
    assert any("-pretrain-failed-" in p.name for p in (run_dir / "lineage").glob("*.json"))


def test_existing_run_needs_resume(store, tmp_path):
    from tasks.pretrain.train import train

    train(_config(store, tmp_path / "run", max_steps=4), log=lambda m: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(store, tmp_path / "run", max_steps=4), log=lambda m: None)


@pytest.mark.slow
def test_ddp_two_cpu_processes_identical_weights_rank0_writes(store, tmp_path, prefect_harness):
    run_dir = tmp_path / "ddp"
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
            "-m", "cli.main", "pretrain", "--store", store, "--out", str(run_dir), "--preset", "tiny-cpu",
            "--skip-validation-check", "--max-steps", "4"]
    # The adaptive strategy: its sampler is drawn outside DDP's forward, and must still stay in sync.
    for key, value in {**TINY, "check_replicas": True, "batch_size": 8, "mask_strategy": "adaptive"}.items():
        if key not in ("skip_validation_check",):
            args += ["--set", f"{key}={json.dumps(value) if isinstance(value, bool) else value}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # one writer
    assert all("replica_checksum" in r for r in rows)  # rank 0 compared all ranks' weights each step
    assert len(list((run_dir / "lineage").glob("*.json"))) == 3  # started, the checkpoint at step 4, completed


@pytest.mark.slow
def test_pretrain_flow_refuses_unvalidated_store(store, tmp_path, prefect_harness):
    from flows.pretrain import pretrain_flow

    config = _config(store, tmp_path / "r", max_steps=1, skip_validation_check=False)
    with pytest.raises(Exception, match="vmac validate --store"):
        pretrain_flow(config)


def test_motion_masking_on_a_store_without_motion_fails_before_training(tmp_path):
    from tasks.pretrain.train import train

    plain = _ingest_clips(tmp_path, 1, motion=False)
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"mask_strategy=motion .*vmac ingest --motion"):
        train(_config(plain, run_dir, max_steps=2, mask_strategy="motion"), log=lambda m: None)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()


def test_fewer_frame_pairs_than_one_batch_fails_before_training(store, tmp_path):
    """Two 24-frame clips hold 46 pairs: a batch of 64 would never fill, and the loader would look
    for one forever; the run is refused, naming the fix."""
    from tasks.pretrain.train import train

    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=r"46 frame pairs, fewer than one batch of 64 .*optimiser.batch_size"):
        train(_config(store, run_dir, max_steps=2, batch_size=64), log=lambda m: None)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
