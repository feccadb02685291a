"""Prefect tasks of the evaluate stage, for ``flows.evaluate``: thin wrappers of the plain
functions in this package, which tests and benchmarks call directly."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import EvaluateConfig
from tasks.evaluate import evaluation
from tasks.evaluate.comparison import write_comparison
from tasks.evaluate.plan import EvaluationPlan, lineage_record, make_plan, started_record
from tasks.evaluate.weights import EncoderSpec
from tasks.io import lineage


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:  # outside a Prefect run (tests, benchmarks): a plain logger
        return logging.getLogger("vmac.evaluate")


# Every task here writes files, or reads files whose bytes may change: never served from a cache.


@task(name="plan_evaluation", cache_policy=NO_CACHE)
def plan_evaluation(config: EvaluateConfig, store: str) -> EvaluationPlan:
    """The encoders (checkpoints, then each architecture's random-init floor) and labelled videos."""
    result = make_plan(config, store)
    counts = ", ".join(f"{b} {sum(v.benchmark == b for v in result.videos)}" for b in bm.BENCHMARKS)
    _logger().info("evaluating %s on %d videos (%s); %d skipped", ", ".join(e.name for e in result.encoders),
                   len(result.videos), counts, len(result.skipped))
    for note in result.notes:
        _logger().warning("%s", note)
    return result


@task(name="evaluate_encoder", cache_policy=NO_CACHE)
def evaluate_encoder(spec: EncoderSpec, plan: EvaluationPlan, config: EvaluateConfig, run_id: str,
                     flow_run_id: str | None = None) -> str:
    """Evaluate one encoder on every planned video; the path of its benchmark JSON."""
    return evaluation.evaluate_encoder(spec, plan, config, run_id, flow_run_id, log=_logger())


@task(name="publish_comparison", cache_policy=NO_CACHE)
def publish_comparison(report_paths: list[str], out: str) -> str:
    """comparison.md, also as the Prefect markdown artifact ``evaluation-comparison``, and its
    main table as the table artifact ``evaluation-comparison-table`` (scores in %)."""
    path, markdown, table = write_comparison(report_paths, out)
    create_markdown_artifact(key=bm.COMPARISON_ARTIFACT_KEY, markdown=markdown,
                             description=f"label propagation, {len(report_paths)} encoders ({path})")
    create_table_artifact(table, key=bm.COMPARISON_TABLE_ARTIFACT_KEY,
                          description=f"label propagation, {len(report_paths)} encoders: scores in %, "
                                      "random-init rows are the floor")
    return markdown


@task(name="record_evaluation_started", cache_policy=NO_CACHE)
def record_evaluation_started(config: EvaluateConfig, plan: EvaluationPlan, run_id: str,
                              flow_run_id: str | None = None) -> str:
    """Append the run's ``started`` record to OUT/lineage/ before any encoder runs. Its path."""
    return lineage.write_record(str(Path(config.out) / bm.LINEAGE_DIR), started_record(config, plan, run_id, flow_run_id))


@task(name="record_evaluation_lineage", cache_policy=NO_CACHE)
def record_evaluation_lineage(config: EvaluateConfig, plan: EvaluationPlan, report_paths: list[str],
                              run_id: str, flow_run_id: str | None = None) -> str:
    """Append a lineage record to OUT/lineage/: weights and videos in; reports out. Its path."""
    record = lineage_record(config, plan, report_paths, run_id, flow_run_id)
    return lineage.write_record(str(Path(config.out) / bm.LINEAGE_DIR), record)
