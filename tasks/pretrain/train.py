"""VideoMAC pre-training loop: resumable, single- or multi-process (DDP), with run-directory outputs.

Plain functions; ``flows.pretrain`` wraps them in Prefect. Under ``torchrun`` every rank runs
``train``; only rank 0 writes (checkpoints, metrics, plots, previews, encoder, lineage).

Run directory:
    config.json                 the resolved PretrainConfig
    checkpoints/ckpt-000100.pt  atomic (temp file + rename), the last ``keep_checkpoints`` kept
    metrics.jsonl               one line per logged step
    loss_curve.png              updated during training
    previews/step-000100.png    frame 1 | frame 2 | mask | online recon | target recon
    encoder.pt                  the online encoder as a dense state_dict, with its config
    lineage/*.json              append-only lineage records
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from storage_schemas.config import PretrainConfig
from storage_schemas.lineage import Dataset
from tasks.io import lineage
from tasks.io.files import file_sha256
from vmac_core.checkpoint import check_config, export_dense_encoder, make_checkpoint
from vmac_core.masking import random_patch_mask
from vmac_core.model_config import ModelConfig
from vmac_core.schedules import ema_momentum_at, lr_at, scaled_lr
from vmac_core.videomac import VideoMAC

CHECKPOINTS = "checkpoints"
METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
PREVIEWS = "previews"
ENCODER = "encoder.pt"
LINEAGE = "lineage"


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN/inf loss; the last good checkpoint is untouched."""


@dataclass(frozen=True)
class StepPlan:
    """Derived schedule quantities (pure function of the config, the data and the world size)."""

    pairs: int
    micro_batch: int
    accumulation: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    lr: float


def model_config(cfg: PretrainConfig) -> ModelConfig:
    return ModelConfig(
        encoder=cfg.encoder, backend=cfg.backend, input_size=cfg.input_size, patch_size=cfg.patch_size,
        mask_ratio=cfg.mask_ratio, decoder_dim=cfg.decoder_dim, decoder_depth=cfg.decoder_depth,
        consistency_weight=cfg.consistency_weight, norm_pix_loss=cfg.norm_pix_loss,
        ema_momentum_base=cfg.ema_momentum_base,
    )


def plan_steps(cfg: PretrainConfig, pairs: int, world_size: int) -> StepPlan:
    """Micro-batch, accumulation and step counts for ``pairs`` training pairs per epoch.

    The effective batch is ``batch_size`` = micro_batch × accumulation × world_size; the
    learning rate follows the linear scaling rule on that effective batch.
    """
    per_process = max(1, cfg.batch_size // world_size)
    micro = min(cfg.micro_batch_size or per_process, per_process)
    accumulation = max(1, math.ceil(per_process / micro))
    steps_per_epoch = max(1, pairs // cfg.batch_size)
    total = cfg.max_steps or max(1, int(round(cfg.epochs * steps_per_epoch)))
    warmup = min(int(round(cfg.warmup_epochs * steps_per_epoch)), max(total - 1, 0))
    return StepPlan(pairs, micro, accumulation, steps_per_epoch, total, warmup, scaled_lr(cfg.base_lr, cfg.batch_size))


# --- distributed -----------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_world(cfg: PretrainConfig) -> World:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on CPU)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda was asked for, but CUDA is not available")
    device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local_rank, device)


def amp_dtype(cfg: PretrainConfig, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 where supported on CUDA, fp16 otherwise; no autocast on CPU."""
    if device.type != "cuda" or cfg.amp == "off":
        return None
    if cfg.amp == "fp16":
        return torch.float16
    if cfg.amp == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoints in step order (names sort by zero-padded step)."""
    return sorted((run_dir / CHECKPOINTS).glob("ckpt-*.pt"))


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


# --- plots -----------------------------------------------------------------------------------


def plot_loss_curve(rows: list[dict], path: Path) -> None:
    """Three panels: the online and target reconstruction losses (linear), the consistency loss
    (log: it starts near 0 and stays orders of magnitude smaller), and the lr/EMA schedules."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, (ax, ax_c, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    for key, label in (("loss_online", "online (frame 1)"), ("loss_target", "target (frame 2, EMA)")):
        ax.plot(steps, [r[key] for r in rows], label=label, linewidth=1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("MSE on masked patches (per-patch normalised)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("reconstruction losses")
    ax_c.plot(steps, [r["loss_consistency"] for r in rows], color="tab:red", linewidth=1.0)
    ax_c.set_yscale("log")
    ax_c.set_xlabel("step")
    ax_c.set_title("consistency loss (online vs target)")
    ax_c.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in rows], color="tab:gray")
    ax_lr.set_xlabel("step")
    ax_lr.set_ylabel("learning rate")
    ax_m = ax_lr.twinx()
    ax_m.plot(steps, [r["momentum"] for r in rows], color="tab:purple")
    ax_m.set_ylabel("EMA momentum", color="tab:purple")
    ax_lr.set_title("schedules")
    fig.suptitle(f"VideoMAC pre-training, {steps[-1] if steps else 0} steps; total loss "
                 f"{rows[-1]['loss']:.3f}" if rows else "VideoMAC pre-training")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def plot_previews(model: VideoMAC, frame1_bchw, frame2_bchw, mask_bl, step: int, path: Path) -> None:
    """Rows of (frame 1, frame 2, mask, online reconstruction, target reconstruction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD

    was_training = model.training
    model.eval()
    recon = model.reconstruct(frame1_bchw, frame2_bchw, mask_bl)
    model.train(was_training)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def show(x_bchw):
        return (x_bchw.float().cpu() * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()

    frame1, frame2 = show(frame1_bchw), show(frame2_bchw)
    masked = frame1 * (1 - recon.mask_b1hw.cpu().permute(0, 2, 3, 1).numpy() * 0.75)
    columns = [("frame 1", frame1), ("frame 2", frame2), ("mask on frame 1", masked),
               ("online recon (frame 1)", show(recon.online_pasted_bchw)),
               ("target recon (frame 2)", show(recon.target_pasted_bchw))]
    rows = frame1.shape[0]
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.2 * len(columns), 2.2 * rows), squeeze=False)
    for r in range(rows):
        for c, (title, images) in enumerate(columns):
            axes[r, c].imshow(images[r])
            axes[r, c].axis("off")
            if r == 0:
                axes[r, c].set_title(title, fontsize=8)
    fig.suptitle(f"VideoMAC reconstructions at step {step}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- the loop --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainResult:
    run_dir: str
    steps: int
    final_loss: float
    checkpoint: str | None
    encoder: str | None
    resumed_from: int


def _mask_generator(seed: int, step: int, micro: int, rank: int) -> torch.Generator:
    """A generator for one micro-batch's mask: a pure function of (seed, step, micro, rank), so a
    resumed run draws exactly the masks the uninterrupted run would have drawn."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 1_009 + micro) * 101 + rank)


def _read_metrics(path: Path, up_to_step: int | None = None) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if up_to_step is None or r["step"] <= up_to_step]


def store_inputs(stores: list[str]) -> list[Dataset]:
    """Lineage inputs: each store and every complete video in it with its source and array hashes."""
    from tasks.io.store import fingerprint_of, read_catalog

    inputs = []
    for store in stores:
        catalog = read_catalog(store)
        videos = {vid: {"sha256": r.sha256, "frames_sha256": r.frames_sha256, "source_uri": r.source_uri}
                  for vid, r in catalog.items() if r is not None and r.status.value == "complete"}
        inputs.append(Dataset(uri=store, kind="store",
                              facets={"catalog_fingerprint": fingerprint_of(catalog), "videos": videos}))
    return inputs


def train(cfg: PretrainConfig, log: Callable[[str], None] = print, flow_run_id: str | None = None) -> TrainResult:
    """Pre-train VideoMAC per ``cfg``; resume from the run directory's last checkpoint if asked."""
    from tasks.pretrain.pairs import make_pair_loader

    world = setup_world(cfg)
    if world.device.type == "cpu":
        # Loader workers and every DDP rank on this host take cores too; OpenMP threads beyond
        # the free cores spin against them and can make a step many times slower.
        free = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world.size))) - cfg.workers
        torch.set_num_threads(cfg.threads or max(1, free))
    run_dir = Path(cfg.out)
    mcfg = model_config(cfg)
    torch.manual_seed(cfg.seed)

    micro_batch = plan_steps(cfg, cfg.batch_size, world.size).micro_batch
    loader, sampler = make_pair_loader(
        cfg.stores, input_size=cfg.input_size, batch_size=micro_batch, workers=cfg.workers,
        seed=cfg.seed, gap=_gap(cfg), rank=world.rank, world_size=world.size,
    )
    plan = plan_steps(cfg, len(loader.dataset), world.size)

    model = VideoMAC(mcfg).to(world.device)
    # fused: one kernel over all parameters instead of a Python loop per tensor (CPU and CUDA).
    optimizer = torch.optim.AdamW(model.param_groups(cfg.weight_decay), lr=plan.lr, betas=tuple(cfg.betas), fused=True)
    dtype = amp_dtype(cfg, world.device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
    start_step = 0
    resumed_from = 0
    if cfg.resume and checkpoint_paths(run_dir):
        ckpt = load_checkpoint(checkpoint_paths(run_dir)[-1])
        check_config(ckpt, mcfg)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        resume_stream_state = ckpt["sampler"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        start_step = resumed_from = int(ckpt["step"])
        log(f"resumed from step {start_step} ({checkpoint_paths(run_dir)[-1].name})")
    elif checkpoint_paths(run_dir) and not cfg.resume:
        raise FileExistsError(f"{run_dir} already holds checkpoints; pass --resume to continue it or choose a new --out")
    elif cfg.init_from:
        init = load_checkpoint(Path(cfg.init_from))
        check_config(init, mcfg)
        model.load_state_dict(init["model"])
        log(f"initialised from {cfg.init_from} (step {init['step']}); new schedule of {plan.total_steps} steps")

    online = model
    if world.size > 1:
        online = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[world.device.index] if world.device.type == "cuda" else None
        )
    train_step = online
    if cfg.compile:
        train_step = torch.compile(online)

    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(cfg.model_dump(mode="json"), indent=2))
        rows = _read_metrics(run_dir / METRICS, up_to_step=start_step if resumed_from else -1)
        _rewrite_metrics(run_dir / METRICS, rows)
        run_id = lineage.run_id()
        inputs = store_inputs(cfg.stores)
        lineage.write_record(str(run_dir / LINEAGE), lineage.make_record(
            "pretrain", "started", run_id, inputs, [], cfg.model_dump(mode="json"), flow_run_id))

    log(f"pretrain: {plan.pairs} pairs/epoch, {plan.steps_per_epoch} steps/epoch, {plan.total_steps} steps, "
        f"batch {cfg.batch_size} = {plan.micro_batch} x {plan.accumulation} accumulation x {world.size} processes, "
        f"lr {plan.lr:.2e}, device {world.device}")

    step = start_step
    last_loss = float("nan")
    last_ckpt: Path | None = checkpoint_paths(run_dir)[-1] if resumed_from else None
    batches = BatchStream(loader, sampler)
    if resumed_from:
        batches.load_state(resume_stream_state)
    model.train()
    progress = _progress(cfg.progress and world.is_main, plan.total_steps, start_step)
    try:
        # Inside the try: a failure here too leaves a "failed" lineage record, not a lone "started".
        preview = _preview_batch(cfg, world) if world.is_main else None
        with progress as advance:
            while step < plan.total_steps:
                step_started = time.perf_counter()
                lr = lr_at(step, plan.total_steps, plan.warmup_steps, plan.lr, cfg.min_lr)
                momentum = ema_momentum_at(step, plan.total_steps, cfg.ema_momentum_base)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                totals = {"loss": 0.0, "loss_online": 0.0, "loss_target": 0.0, "loss_consistency": 0.0}
                data_wait = 0.0
                pairs = 0
                for micro in range(plan.accumulation):
                    wait_started = time.perf_counter()
                    batch = next(batches)
                    data_wait += time.perf_counter() - wait_started
                    frame1 = batch["frame1_bchw"].to(world.device, non_blocking=True)
                    frame2 = batch["frame2_bchw"].to(world.device, non_blocking=True)
                    grid = cfg.input_size // cfg.patch_size
                    mask = random_patch_mask(frame1.shape[0], grid, grid, cfg.mask_ratio,
                                             _mask_generator(cfg.seed, step, micro, world.rank)).to(world.device)
                    sync = micro == plan.accumulation - 1
                    context = online.no_sync() if (world.size > 1 and not sync) else contextlib.nullcontext()
                    with context, torch.autocast(world.device.type, dtype=dtype, enabled=dtype is not None):
                        out = train_step(frame1, frame2, mask)
                        loss = out.loss / plan.accumulation
                    if not torch.isfinite(out.loss):
                        raise NonFiniteLossError(
                            f"non-finite loss {out.loss.item()} at step {step}; last good checkpoint: "
                            f"{last_ckpt or 'none'} (left untouched). Lower base_lr, enable clip_grad or check the data."
                        )
                    scaler.scale(loss).backward()
                    for key in totals:
                        totals[key] += float(getattr(out, key).detach()) / plan.accumulation
                    pairs += frame1.shape[0]
                if cfg.clip_grad:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.online.parameters(), cfg.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                model.update_target(momentum)
                step += 1
                checksum = _check_replicas(model, world) if cfg.check_replicas and world.size > 1 else None
                last_loss = totals["loss"]
                seconds = time.perf_counter() - step_started
                if world.is_main:
                    row = {"step": step, "epoch": step / plan.steps_per_epoch, **totals, "lr": lr, "momentum": momentum,
                           "pairs_per_s": pairs * world.size / seconds, "data_wait_s": data_wait, "step_s": seconds}
                    if checksum is not None:
                        row["replica_checksum"] = checksum
                    with open(run_dir / METRICS, "a") as handle:
                        handle.write(json.dumps(row) + "\n")
                    advance(1, totals["loss"])
                    if step % cfg.log_every == 0 or step == plan.total_steps:
                        log(f"step {step}/{plan.total_steps} loss {totals['loss']:.4f} (online {totals['loss_online']:.4f}, "
                            f"target {totals['loss_target']:.4f}, consistency {totals['loss_consistency']:.4f}) "
                            f"lr {lr:.2e} m {momentum:.5f} {row['pairs_per_s']:.1f} pairs/s wait {data_wait:.2f}s")
                    if step % cfg.plot_every == 0 or step == plan.total_steps:
                        plot_loss_curve(_read_metrics(run_dir / METRICS), run_dir / LOSS_CURVE)
                    if step % cfg.preview_every == 0 or step == plan.total_steps:
                        plot_previews(model, *preview, step, run_dir / PREVIEWS / f"step-{step:06d}.png")
                if step % cfg.checkpoint_every == 0 or step == plan.total_steps:
                    last_ckpt = _checkpoint(world, run_dir, cfg, mcfg, model, optimizer, scaler, batches, step)
    except BaseException as exc:
        if world.is_main:
            lineage.write_record(str(run_dir / LINEAGE), lineage.make_record(
                "pretrain", "failed", run_id, inputs, [], cfg.model_dump(mode="json"), flow_run_id,
                error=f"{exc.__class__.__name__}: {exc}"[:500]))
        raise
    finally:
        if world.size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    encoder_path = None
    if world.is_main:
        encoder_path = run_dir / ENCODER
        save_atomic({"config": mcfg.to_dict(), "encoder": mcfg.encoder, "state_dict": export_dense_encoder(model),
                     "step": step}, encoder_path)
        outputs = [Dataset(uri=str(p), kind="checkpoint", sha256=file_sha256(str(p))) for p in [last_ckpt] if p]
        outputs.append(Dataset(uri=str(encoder_path), kind="encoder", sha256=file_sha256(str(encoder_path))))
        lineage.write_record(str(run_dir / LINEAGE), lineage.make_record(
            "pretrain", "completed", run_id, inputs, outputs, cfg.model_dump(mode="json"), flow_run_id))
    return TrainResult(str(run_dir), step, last_loss, str(last_ckpt) if last_ckpt else None,
                       str(encoder_path) if encoder_path else None, resumed_from)


class BatchStream:
    """Endless batches over epochs from a PairLoader and its resumable PairSampler.

    The sampler counts the batches that reached this loop (not those workers prefetched), so its
    ``state_dict()`` in a checkpoint lets a resumed run continue with exactly the next batch.
    """

    def __init__(self, loader, sampler):
        self.loader, self.sampler = loader, sampler
        self._iter = None

    def state(self) -> dict:
        return self.sampler.state_dict()

    def load_state(self, state: dict) -> None:
        self.sampler.load_state_dict(state)
        self._iter = None

    def __next__(self) -> dict:
        while True:
            if self._iter is None:
                self._iter = iter(self.loader)
            try:
                return next(self._iter)
            except StopIteration:
                self.sampler.set_epoch(self.sampler.epoch + 1)
                self._iter = None


def _check_replicas(model: VideoMAC, world: World) -> float:
    """All ranks must hold the same online and target weights after a step; raise if they do not."""
    with torch.no_grad():
        checksum = torch.stack([p.double().sum() for p in model.parameters()]).sum().reshape(1).to(world.device)
    gathered = [torch.zeros_like(checksum) for _ in range(world.size)]
    dist.all_gather(gathered, checksum)
    values = [float(g) for g in gathered]
    if any(v != values[0] for v in values):
        raise RuntimeError(f"DDP replicas diverged: weight checksums by rank {values}")
    return values[0]


def _gap(cfg: PretrainConfig) -> int | tuple[int, int]:
    return (cfg.gap, cfg.gap_max) if cfg.gap_max else cfg.gap


def _rewrite_metrics(path: Path, rows: list[dict]) -> None:
    """Keep only the rows up to the resumed step: steps after the checkpoint are replayed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def _checkpoint(world: World, run_dir: Path, cfg: PretrainConfig, mcfg: ModelConfig, model: VideoMAC,
                optimizer, scaler, stream: BatchStream, step: int) -> Path:
    path = run_dir / CHECKPOINTS / f"ckpt-{step:06d}.pt"
    if world.is_main:
        ckpt = make_checkpoint(
            mcfg, model.state_dict(), step=step, optimizer_state=optimizer.state_dict(),
            scaler_state=scaler.state_dict() if scaler.is_enabled() else None, sampler_state=stream.state(),
            rng_state={"torch": torch.get_rng_state()}, extra={"pretrain_config": cfg.model_dump(mode="json")},
        )
        save_atomic(ckpt, path)
        for old in checkpoint_paths(run_dir)[: -cfg.keep_checkpoints]:
            old.unlink()
    return path


def _preview_batch(cfg: PretrainConfig, world: World):
    """A fixed set of pairs and one fixed mask, the same at every preview and across resumes."""
    from tasks.pretrain.pairs import make_pair_loader

    loader, sampler = make_pair_loader(cfg.stores, input_size=cfg.input_size, batch_size=4, workers=0,
                                       seed=cfg.seed + 7919, gap=_gap(cfg))
    batch = next(iter(loader))
    grid = cfg.input_size // cfg.patch_size
    mask = random_patch_mask(batch["frame1_bchw"].shape[0], grid, grid, cfg.mask_ratio,
                             torch.Generator().manual_seed(cfg.seed + 7919))
    return batch["frame1_bchw"].to(world.device), batch["frame2_bchw"].to(world.device), mask.to(world.device)


@contextlib.contextmanager
def _progress(enabled: bool, total: int, start: int):
    """A terminal progress bar with ETA; yields advance(steps, loss)."""
    if not enabled:
        yield lambda n, loss: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns) as progress:
        bar = progress.add_task("pretrain", total=total, completed=start, loss="-")
        yield lambda n, loss: progress.update(bar, advance=n, loss=f"{loss:.4f}")
