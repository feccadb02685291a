"""pipeline_flow: ingest → validate → pretrain → evaluate, reusing finished work."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.evaluate import evaluate_flow
from flows.ingest import ingest_flow
from flows.pretrain import pretrain_flow
from flows.validate import validate_flow
from storage_schemas.config import IngestConfig, PipelineConfig
from storage_schemas.validation import ValidateConfig
from tasks.pipeline import (
    PipelineResult,
    build_evaluation_config,
    check_validation_needed,
    plan_pretraining,
    resolve_sources,
    run_pretrain_deployment,
    write_pipeline_report,
)


@flow(name="pipeline_flow")
def pipeline_flow(config: PipelineConfig) -> PipelineResult:
    """The whole pipeline with one config; each stage also runs alone as its own flow."""
    logger = get_run_logger()
    sources = resolve_sources(config)
    common = {"decode": config.decode, "dask_address": config.dask_address, "dask_workers": config.dask_workers,
              "progress": config.progress}
    train_store, eval_store = config.train_store(), config.evaluation_store()
    ingested = ingest_flow(IngestConfig(sources=sources.train, store=train_store,
                                        **{**common, "decode": config.train_decode()}))
    if sources.evaluation:
        native = config.decode.model_copy(update={"short_side": 0})
        ingest_flow(IngestConfig(sources=sources.evaluation, store=eval_store, **{**common, "decode": native}))
    if check_validation_needed(train_store):
        validate_flow(ValidateConfig(store=train_store))
    plan = plan_pretraining(config, train_store)
    logger.info("pretraining: %s (%s)", plan.action, plan.reason)
    if plan.action != "reuse":
        if config.pretrain_on == "deployment":
            run_pretrain_deployment(config, plan.config)
        else:
            pretrain_flow(plan.config)
    evaluated = None
    if sources.evaluation:
        eval_config, needed = build_evaluation_config(config, plan, eval_store)
        if needed:
            evaluated = evaluate_flow(eval_config)
        else:
            logger.info("evaluation of %s with these settings exists in %s; pass --reevaluate to redo it",
                        plan.run_dir, eval_config.out)
    else:
        logger.warning("no labelled folder to evaluate on (--eval-source): evaluation not run")
    return write_pipeline_report(config, ingested, plan, evaluated, train_store, eval_store)
