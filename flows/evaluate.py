"""evaluate_flow: label propagation with frozen encoders on DAVIS, VIP and JHMDB-style videos.

``vmac evaluate --checkpoint CKPT... [--baseline random-init|pixels] --data STORE_OR_FOLDER --out DIR`` writes::

    DIR/benchmark-<name>.json            one per encoder (storage_schemas.benchmark.BenchmarkReport)
    DIR/comparison.md                    every encoder side by side, random-init floor included;
                                         also the Prefect artifact "evaluation-comparison"
    DIR/overlays/<name>/<seq>.png        a few frames: prediction | ground truth
    DIR/masks/<name>/<seq>/00000.png     with --save-masks: DAVIS results layout (palette PNGs)
    DIR/lineage/*.json                   the run's lineage records (started, completed) and
                                         their OpenLineage events in DIR/lineage/openlineage/
    DIR/data.zarr                        when --data is a folder: its videos, ingested at native size
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow
from prefect.runtime import flow_run

from flows.ingest import ingest_flow
from storage_schemas.benchmark import EvaluateConfig
from tasks.evaluate.plan import ingest_config_for
from tasks.evaluate.tasks import (
    evaluate_encoder,
    plan_evaluation,
    publish_comparison,
    record_evaluation_lineage,
    record_evaluation_started,
)
from tasks.io.lineage import run_id as new_run_id
from tasks.io.store import is_store


@dataclass(frozen=True)
class EvaluationResult:
    out: str
    store: str
    reports: list[str]
    comparison_markdown: str
    lineage: str


@flow(name="evaluate_flow")
def evaluate_flow(config: EvaluateConfig) -> EvaluationResult:
    """Ingest --data if it is a folder, then evaluate every encoder and its random-init floor."""
    store = config.data if is_store(config.data) else ingest_flow(ingest_config_for(config)).store
    plan = plan_evaluation(config, store)
    run_id, parent = new_run_id(), str(flow_run.id) if flow_run.id else None
    record_evaluation_started(config, plan, run_id, parent)
    reports = [evaluate_encoder(spec, plan, config, run_id, parent) for spec in plan.encoders]
    markdown = publish_comparison(reports, config.out)
    record = record_evaluation_lineage(config, plan, reports, run_id, parent)
    return EvaluationResult(config.out, store, reports, markdown, record)
