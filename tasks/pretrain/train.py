"""VideoMAC pre-training: resumable, single- or multi-process (DDP), writing a run directory.

``train`` is a short sequence: build, restore, then per step ``optimiser_step``
(``tasks.pretrain.step``) and ``after_step`` (metrics, TensorBoard, plots, previews, checkpoint),
then finish (the exported encoder and the lineage record). Plain functions; ``flows.pretrain`` wraps them in
Prefect. Under ``torchrun`` every rank runs ``train``; only rank 0 writes. The run directory's
layout is ``storage_schemas.run``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from storage_schemas.config import PretrainConfig
from storage_schemas.layout import LINEAGE_DIR
from storage_schemas.lineage import Dataset
from storage_schemas.records import Status
from storage_schemas.run import (
    CHECKPOINT_NAMES,
    CHECKPOINTS_DIR,
    CONFIG,
    LOSS_CURVE,
    METRICS,
    PREVIEWS_DIR,
    RUN_FILE_NAMES,
    preview_name,
)
from tasks.io import lineage
from tasks.io.files import file_sha256, remove_stale_temporaries, write_atomic
from tasks.io.store import fingerprint_of, open_snapshot
from tasks.pretrain.checkpoints import (
    checkpoint_path,
    checkpoint_paths,
    latest_recorded_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    save_encoder,
)
from tasks.pretrain.data import pin_stores, tag_snapshots
from tasks.pretrain.index import describe_quarantined, gap_of, views_of
from tasks.pretrain.loader import BatchStream, make_pair_loader
from tasks.pretrain.metrics import append_metrics, describe, read_metrics, truncate_metrics
from tasks.pretrain.plan import batch_geometry, milestone_steps, motion_grid, step_schedule
from tasks.pretrain.plots import plot_loss_curve, plot_previews, preview_batch
from tasks.pretrain.step import Training, optimiser_step
from tasks.pretrain.tensorboard import TensorBoardLog, open_tensorboard
from tasks.pretrain.world import (
    RunClock,
    World,
    amp_dtype,
    check_replicas,
    close_world,
    omp_wait_policy,
    set_cpu_threads,
    setup_world,
)
from tasks.progress import progress_bar
from vmac_core.checkpoint import check_config
from vmac_core.videomac import VideoMAC

Log = Callable[[str], None]
Progress = Callable[[int, int, dict], None]  # (step, total steps, the step's metrics row), rank 0 only


@dataclass(frozen=True)
class TrainResult:
    run_dir: str
    steps: int
    final_loss: float
    checkpoint: str | None
    encoder: str | None
    resumed_from: int


def remove_leftovers(run_dir: Path, log: Log) -> None:
    """Remove the temporaries of this run directory's writes that a kill interrupted (only vmac's
    own, of the names a run writes, whose writer is gone), saying which."""
    for leftover in (remove_stale_temporaries(run_dir / CHECKPOINTS_DIR, CHECKPOINT_NAMES)
                     + remove_stale_temporaries(run_dir, RUN_FILE_NAMES)):
        log(f"removed {leftover}: the temporary of a write that was killed")


def train(config: PretrainConfig, log: Log = print, flow_run_id: str | None = None,
          on_progress: Progress | None = None) -> TrainResult:
    """Pre-train VideoMAC per ``config``; resume from the run directory's last checkpoint if asked.
    Rank 0 calls ``on_progress`` after every step (the Prefect task publishes it; plain calls,
    benchmarks and other ranks pass none).

    Raises FileExistsError for a run directory with checkpoints and no ``resume``,
    NonFiniteLossError on a NaN/inf loss, ConfigMismatchError when a checkpoint to resume or
    initialise from was made with another ModelConfig.
    """
    world = setup_world(config.run.device)
    config = pin_stores(config, world)
    threads = set_cpu_threads(world, config.run.threads, config.data.loader_workers)
    torch.manual_seed(config.run.seed)
    run_dir = Path(config.out)
    if world.is_main:
        remove_leftovers(run_dir, log)
    training = build(config, world)
    restore(training, config, log)
    wrap(training, config, world)
    record = Recorder(config, run_dir, flow_run_id) if world.is_main else None
    if record:
        start_run_directory(config, run_dir, training.step, record, log)
    board = open_tensorboard(config, run_dir, training.step) if world.is_main else None
    s = training.schedule
    if skipped := describe_quarantined(training.batches.loader.dataset.index.quarantined):
        log(skipped)
    log(f"pretrain: {s.pairs} pairs/epoch, {s.steps_per_epoch} steps/epoch, {s.total_steps} steps, "
        f"batch {config.optimiser.batch_size} = {training.geometry.micro_batch} x {training.geometry.accumulation} "
        f"accumulation x {world.size} processes, lr {s.lr:.2e}, device {world.device}, {threads} torch threads "
        f"(OMP_WAIT_POLICY {omp_wait_policy()})")
    last_loss = float("nan")
    clock = RunClock(**seconds_before(run_dir, training.step))
    constants = {"threads": threads, "omp_wait_policy": omp_wait_policy()}
    try:
        # Inside the try: a failure here too leaves a "failed" lineage record, not a lone "started".
        preview = preview_batch(config, world.device) if world.is_main else None
        enabled = config.run.progress and world.is_main
        save_milestone_zero(training, config, record)
        with progress_bar("pretrain", s.total_steps, "steps", enabled, completed=training.step) as advance:
            while training.step < s.total_steps:
                row = {**optimiser_step(training, config, world), **clock.seconds(), **constants}
                after_step(training, config, world, row, preview, log, board, record)
                advance(1, f"loss {row['loss']:.4f}")
                last_loss = row["loss"]
                if on_progress and world.is_main:
                    on_progress(training.step, s.total_steps, row)
    except BaseException as exc:
        if record:
            record("failed", error=f"{exc.__class__.__name__}: {exc}"[:500])
        raise
    finally:
        close_world(world)
        if board:
            board.close()
    encoder = finish(training, config, record) if record else None
    checkpoint = training.last_checkpoint
    return TrainResult(str(run_dir), training.step, last_loss, str(checkpoint) if checkpoint else None,
                       str(encoder) if encoder else None, training.resumed_from)


def build(config: PretrainConfig, world: World) -> Training:
    """The loader (this rank's shard), the model, AdamW and the grad scaler; nothing restored.

    Raises ValueError before anything trains when the stores lack what the mask strategy reads
    (a motion map for ``mask_strategy=motion``) or hold fewer frame pairs than one batch."""
    geometry = batch_geometry(config.optimiser, world.size)
    loader, sampler = make_pair_loader(
        config.stores, input_size=config.model.input_size, batch_size=geometry.micro_batch,
        loader_workers=config.data.loader_workers, seed=config.run.seed, gap=gap_of(config.data), rank=world.rank,
        world_size=world.size, motion_grid=motion_grid(config.model), views=views_of(config.data),
    )
    if len(sampler) == 0:  # no batch in an epoch: the loader would look for one forever
        raise ValueError(
            f"the stores hold {len(loader.dataset)} frame pairs, fewer than one batch of {geometry.micro_batch} per "
            f"process ({world.size} process(es)); lower optimiser.batch_size (--set optimiser.batch_size=N) or "
            "pre-train on more frames")
    schedule = step_schedule(config.optimiser, len(loader.dataset))
    model = VideoMAC(config.model).to(world.device)
    opt = config.optimiser
    # fused: one kernel over all parameters instead of a Python loop per tensor (CPU and CUDA).
    optimizer = torch.optim.AdamW(model.param_groups(opt.weight_decay), lr=schedule.lr, betas=opt.betas, fused=True)
    amp = amp_dtype(config.run.amp, world.device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp is torch.float16)
    return Training(model, model, model, optimizer, scaler, amp, BatchStream(loader, sampler), geometry, schedule)


def restore(training: Training, config: PretrainConfig, log: Log) -> None:
    """Continue from the run directory's last recorded checkpoint (``resume``), or start from
    another run's weights (``init_from``, a new schedule); refuse a run directory with checkpoints
    otherwise. A checkpoint file the run's lineage does not name, or whose bytes changed since,
    is never loaded: it is logged and passed over."""
    existing = checkpoint_paths(Path(config.out))
    if existing and not config.run.resume:
        raise FileExistsError(f"{config.out} already holds checkpoints; pass --resume to continue it or choose a new --out")
    latest = None
    if existing:
        latest, passed_over = latest_recorded_checkpoint(Path(config.out))
        for line in passed_over:
            log(line)
    if latest is not None:
        ckpt = load_checkpoint(latest)
        check_config(ckpt, config.model)
        training.model.load_state_dict(ckpt["model"])
        training.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            training.scaler.load_state_dict(ckpt["scaler"])
        training.batches.load_state(ckpt["sampler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        training.step = training.resumed_from = int(ckpt["step"])
        training.last_checkpoint = latest
        log(f"resumed from step {training.step} ({latest.name})")
    elif config.run.init_from:
        init = load_checkpoint(Path(config.run.init_from))
        check_config(init, config.model)
        training.model.load_state_dict(init["model"])
        log(f"initialised from {config.run.init_from} (step {init['step']}); "
            f"new schedule of {training.schedule.total_steps} steps")


def wrap(training: Training, config: PretrainConfig, world: World) -> None:
    """DistributedDataParallel over several ranks, then torch.compile when asked; training mode."""
    if world.size > 1:
        device_ids = [world.device.index] if world.device.type == "cuda" else None
        training.online = torch.nn.parallel.DistributedDataParallel(training.model, device_ids=device_ids)
    training.forward = torch.compile(training.online) if config.run.compile else training.online
    training.model.train()


def seconds_before(run_dir: Path, step: int) -> dict[str, float]:
    """The CPU and wall seconds a resumed run had used up to ``step`` (its metrics row), as
    ``RunClock`` offsets; zeros for a new run or rows without them."""
    rows = read_metrics(run_dir / METRICS, up_to_step=step) if step else []
    last = rows[-1] if rows else {}
    return {"cpu_offset": float(last.get("cpu_s", 0.0)), "wall_offset": float(last.get("wall_s", 0.0))}


def save_milestone_zero(training: Training, config: PretrainConfig, record: Recorder | None) -> None:
    """On rank 0 (``record`` given): the recorded checkpoint of the untrained weights (step 0)
    when the milestones ask for it."""
    if record and training.step == 0 and 0 in milestone_steps(config.run.milestones, training.schedule.total_steps):
        record.checkpoint(save_checkpoint(Path(config.out), config, training.model, training.optimizer,
                                          training.scaler, training.batches.state(), 0))


def start_run_directory(config: PretrainConfig, run_dir: Path, step: int, record: Recorder, log: Log) -> None:
    """Write config.json (its stores pinned to their snapshots); drop metric rows past ``step`` (a
    resumed run replays those steps); write the ``started`` record; tag the snapshots read so that
    ``vmac gc`` keeps them (``tasks.pretrain.data``)."""
    write_atomic(run_dir / CONFIG, json.dumps(config.model_dump(mode="json"), indent=2))
    truncate_metrics(run_dir / METRICS, step)
    record("started")
    for line in tag_snapshots(config.stores, record.run_id):
        log(line)


def after_step(training: Training, config: PretrainConfig, world: World, row: dict, preview, log: Log,
               board: TensorBoardLog | None = None, record: Recorder | None = None) -> None:
    """Compare replicas (all ranks); on rank 0 append the metrics row (and its TensorBoard
    scalars), log, plot and preview at their intervals; checkpoint at its interval and at the last
    step, record it in the lineage, then prune old ones (in that order, so a kill never leaves only
    unrecorded checkpoints)."""
    step, total, run = training.step, training.schedule.total_steps, config.run
    run_dir = Path(config.out)

    def due(every: int) -> bool:
        return step % every == 0 or step == total

    if run.check_replicas and world.size > 1:
        row["replica_checksum"] = check_replicas(training.model, world)
    if world.is_main:
        append_metrics(run_dir / METRICS, row)
        if board:
            board.scalars(row)
        if due(run.log_every):
            log(describe(row, total))
        if due(run.plot_every):
            plot_loss_curve(read_metrics(run_dir / METRICS), run_dir / LOSS_CURVE)
        if due(run.preview_every):
            plot_previews(training.model, preview, step, run_dir / PREVIEWS_DIR / preview_name(step))
            if board:
                board.image(run_dir / PREVIEWS_DIR / preview_name(step), step)
    milestones = milestone_steps(run.milestones, total)
    if due(run.checkpoint_every) or step in milestones:
        if world.is_main:
            path = save_checkpoint(run_dir, config, training.model, training.optimizer, training.scaler,
                                   training.batches.state(), step)
            record.checkpoint(path)
            prune_checkpoints(run_dir, run.keep_checkpoints, milestones)
        training.last_checkpoint = checkpoint_path(run_dir, step)


def finish(training: Training, config: PretrainConfig, record: Recorder) -> Path:
    """Export the encoder and write the "completed" lineage record with the outputs' hashes."""
    encoder = save_encoder(Path(config.out), config, training.model, training.step)
    outputs = [Dataset(uri=str(p), kind="checkpoint", sha256=file_sha256(str(p))) for p in [training.last_checkpoint] if p]
    outputs.append(Dataset(uri=str(encoder), kind="encoder", sha256=file_sha256(str(encoder))))
    record("completed", outputs=outputs)
    return encoder


class Recorder:
    """Lineage records of one run (started, then failed or completed), all with the same run id,
    inputs and parameters."""

    def __init__(self, config: PretrainConfig, run_dir: Path, flow_run_id: str | None):
        self.folder = str(run_dir / LINEAGE_DIR)
        self.run_id = lineage.run_id()
        self.inputs = store_inputs(config.stores)
        self.parameters = config.model_dump(mode="json")
        self.flow_run_id = flow_run_id

    def __call__(self, status: str, outputs: list[Dataset] | None = None, error: str | None = None) -> None:
        lineage.write_record(self.folder, lineage.make_record(
            "pretrain", status, self.run_id, self.inputs, outputs or [], self.parameters, self.flow_run_id, error=error))

    def checkpoint(self, path: Path) -> None:
        """A ``checkpoint`` record naming ``path`` and its sha256. Its inputs are the stores
        without the per-video list (the run's other records carry it), so a long run's lineage
        does not repeat the whole catalog at every checkpoint."""
        stores = [item.model_copy(update={"facets": {k: v for k, v in item.facets.items() if k != "videos"}})
                  for item in self.inputs]
        output = Dataset(uri=str(path), kind="checkpoint", sha256=file_sha256(str(path)))
        lineage.write_record(self.folder, lineage.make_record(
            "pretrain", "checkpoint", self.run_id, stores, [output], self.parameters, self.flow_run_id))


def store_inputs(stores: list[str]) -> list[Dataset]:
    """Lineage inputs: each store at the snapshot the run reads (``STORE@SNAPSHOT``: the store's
    location as ``uri``, the snapshot id as a facet) and every complete video in it with its version
    folder, source and array hashes (frames, and the motion map where there is one)."""
    inputs = []
    for store in stores:
        snapshot = open_snapshot(store)
        videos = {vid: {"sha256": r.sha256, "frames_sha256": r.frames_sha256, "source_uri": r.source_uri,
                        "version": snapshot.entries[vid].version,
                        **({"motion_sha256": r.motion_sha256} if r.has_motion else {})}
                  for vid, r in snapshot.records().items() if r is not None and r.status is Status.complete}
        inputs.append(Dataset(uri=snapshot.store, kind="store",
                              facets={"catalog_fingerprint": fingerprint_of(snapshot), "snapshot": snapshot.id,
                                      "videos": videos}))
    return inputs
