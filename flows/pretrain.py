"""pretrain_flow: VideoMAC pre-training on validated Zarr stores."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from storage_schemas.config import PretrainConfig
from tasks.train import TrainResult, train


@task(name="check_stores_validated")
def check_stores_validated(config: PretrainConfig) -> None:
    """Refuse stores that have not passed validation (or changed since), unless told to skip."""
    if config.skip_validation_check:
        get_run_logger().warning("validation check skipped (--skip-validation-check)")
        return
    from tasks.validate import require_validated

    for store in config.stores:
        require_validated(store)


@task(name="train_videomac")
def train_videomac(config: PretrainConfig) -> TrainResult:
    logger = get_run_logger()
    return train(config, log=logger.info, flow_run_id=str(flow_run.id) if flow_run.id else None)


@flow(name="pretrain_flow")
def pretrain_flow(config: PretrainConfig) -> TrainResult:
    """Check validation, train (resuming if asked), publish a summary artifact."""
    check_stores_validated(config)
    result = train_videomac(config)
    create_markdown_artifact(
        key="pretrain-summary",
        markdown=(
            f"# Pre-training `{config.preset or config.encoder}`\n\n"
            f"- steps: {result.steps} (resumed from {result.resumed_from})\n"
            f"- final loss: {result.final_loss:.4f}\n"
            f"- run directory: `{result.run_dir}` (loss_curve.png, previews/, metrics.jsonl)\n"
            f"- checkpoint: `{result.checkpoint}`\n- encoder: `{result.encoder}`\n"
        ),
    )
    return result
