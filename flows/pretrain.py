"""pretrain_flow: VideoMAC pre-training on validated Zarr stores."""

from __future__ import annotations

from prefect import flow

from storage_schemas.config import PretrainConfig
from tasks.pretrain.tasks import (
    check_stores_validated,
    pin_data_snapshots,
    pretrain_videomac,
    publish_pretrain_summary,
)
from tasks.pretrain.train import TrainResult


@flow(name="pretrain_flow")
def pretrain_flow(config: PretrainConfig) -> TrainResult:
    """Pin each store to one snapshot, check its validation, train on it (resuming if asked),
    publish a summary artifact."""
    config = pin_data_snapshots(config)
    check_stores_validated(config)
    result = pretrain_videomac(config)
    publish_pretrain_summary(config, result)
    return result
