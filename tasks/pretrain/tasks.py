"""Prefect tasks of the pre-training stage."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from storage_schemas.config import PretrainConfig
from tasks.io.stamp import require_validated
from tasks.pretrain.data import pin_stores
from tasks.pretrain.train import TrainResult, train
from tasks.progress import ProgressArtifact

PROGRESS_ARTIFACT_KEY = "pretrain-progress"


@task(name="pin_data_snapshots")
def pin_data_snapshots(config: PretrainConfig) -> PretrainConfig:
    """The config with every store pinned to the snapshot the run will read (``tasks.pretrain.data``)."""
    pinned = pin_stores(config)
    get_run_logger().info("reading %s", ", ".join(pinned.stores))
    return pinned


@task(name="check_stores_validated")
def check_stores_validated(config: PretrainConfig) -> None:
    """Refuse stores whose snapshot (pinned, ``pin_data_snapshots``) has not passed validation,
    unless told to skip."""
    if config.run.skip_validation_check:
        get_run_logger().warning("validation check skipped (--skip-validation-check)")
        return
    for store in config.stores:
        require_validated(store)


@task(name="pretrain_videomac")
def pretrain_videomac(config: PretrainConfig) -> TrainResult:
    """Train (``tasks.pretrain.train``), with the ``pretrain-progress`` artifact updated as steps go:
    a run on a remote pool shows its progress in the UI before it ends. Under torchrun this task
    runs on rank 0 only; the other ranks train without Prefect."""
    logger = get_run_logger()
    progress = ProgressArtifact(PROGRESS_ARTIFACT_KEY, f"pre-training {config.preset or config.model.encoder} "
                                                       f"into {config.out}")

    def report(step: int, total: int, row: dict) -> None:
        progress(step, total, f"loss {row['loss']:.4f}")

    return train(config, log=logger.info, flow_run_id=str(flow_run.id) if flow_run.id else None, on_progress=report)


@task(name="publish_pretrain_summary")
def publish_pretrain_summary(config: PretrainConfig, result: TrainResult) -> str:
    """The ``pretrain-summary`` markdown artifact: steps, loss and where the outputs are."""
    markdown = (
        f"# Pre-training `{config.preset or config.model.encoder}`\n\n"
        f"- steps: {result.steps} (resumed from {result.resumed_from})\n"
        f"- final loss: {result.final_loss:.4f}\n"
        f"- run directory: `{result.run_dir}` (loss_curve.png, previews/, metrics.jsonl)\n"
        f"- checkpoint: `{result.checkpoint}`\n- encoder: `{result.encoder}`\n"
    )
    create_markdown_artifact(key="pretrain-summary", markdown=markdown)
    return markdown
