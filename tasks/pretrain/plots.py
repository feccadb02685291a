"""The run directory's pictures: the loss curve, and reconstruction previews of a fixed batch.

matplotlib is imported inside the plotting functions: it costs a second or more to import, and
ranks other than 0, ``vmac --help`` and the pipeline's planning never draw anything.
"""

from __future__ import annotations

from pathlib import Path

import torch

from storage_schemas.config import PretrainConfig
from tasks.io.files import atomic_path
from tasks.pretrain.index import gap_of, views_of
from tasks.pretrain.loader import make_pair_loader
from tasks.pretrain.plan import motion_grid
from vmac_core.augment import IMAGENET_MEAN, IMAGENET_STD
from vmac_core.videomac import VideoMAC

PREVIEW_PAIRS = 4
PREVIEW_SEED_OFFSET = 7919  # previews draw pairs and masks apart from the training stream


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curve(rows: list[dict], path: Path) -> None:
    """Three panels: the online and target reconstruction losses (linear), the consistency loss
    (log: it starts near 0 and stays orders of magnitude smaller), and the lr/EMA schedules."""
    plt = _pyplot()
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def preview_batch(config: PretrainConfig, device: torch.device) -> tuple[dict[str, torch.Tensor], int]:
    """(batch, mask seed) of a fixed set of pairs: the frames and what the mask strategy reads,
    on ``device``; the same at every preview and across resumes."""
    seed = config.run.seed + PREVIEW_SEED_OFFSET
    loader, _ = make_pair_loader(config.stores, input_size=config.model.input_size, batch_size=PREVIEW_PAIRS,
                                 loader_workers=0, seed=seed, gap=gap_of(config.data), motion_grid=motion_grid(config.model),
                                 views=views_of(config.data))
    batch = next(iter(loader))
    return {key: value.to(device) for key, value in batch.items() if value.is_floating_point()}, seed


def plot_previews(model: VideoMAC, preview: tuple[dict[str, torch.Tensor], int], step: int, path: Path) -> None:
    """Rows of (frame 1, frame 2, mask, online reconstruction, target reconstruction). The masks
    are the model's strategy drawn from the preview's fixed seed: fixed for every strategy but
    adaptive, whose masks show what its sampler has learnt by ``step``."""
    plt = _pyplot()
    batch, seed = preview
    frame1_bchw, frame2_bchw = batch["frame1_bchw"], batch["frame2_bchw"]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        draw = model.masking.draw(batch, torch.Generator().manual_seed(seed))
    recon = model.reconstruct(frame1_bchw, frame2_bchw, draw.mask1_bl, draw.mask2_bl)
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
