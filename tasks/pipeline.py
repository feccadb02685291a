"""Prefect tasks of pipeline_flow: choose sources, decide what is already done, write the report.

Reuse rules:
- ingest is incremental by itself (hashes against the catalog);
- validation runs when the store's catalog changed since its last stamp (or it never passed);
- pre-training is reused when the newest run of the preset completed with the same config on the
  same catalog; an interrupted run is resumed; after new data the next run warm-starts from the
  last checkpoint (``on_new_data: continue``) or starts from scratch (``new-run``);
- evaluation is reused when this run's encoder was evaluated already, unless ``reevaluate``; the
  floors (random-init, raw pixels) of every run share the cache ``{out}/eval/floor-cache``, so a new
  encoder on the same data costs one encoder's evaluation.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from storage_schemas.benchmark import COMPARISON, EvaluateConfig
from storage_schemas.config import RUN_ONLY_FIELDS, PipelineConfig, PretrainConfig
from storage_schemas.layout import LINEAGE_DIR
from storage_schemas.run import ENCODER, LOSS_CURVE, METRICS, PREVIEWS_DIR
from tasks.io import lineage
from tasks.io.files import file_sha256, make_folder, write_atomic
from tasks.io.metrics_file import metric_rows
from tasks.io.snapshots import split_ref
from tasks.io.stamp import ValidationRequiredError, require_validated, validation_status
from tasks.io.store import fingerprint_of, open_snapshot
from tasks.io.uris import normalize
from tasks.pretrain.checkpoints import checkpoint_paths, latest_recorded_checkpoint
from tasks.sample.write import MANIFEST_NAME, write_sample

RUNS_DIR = "runs"
EVAL_DIR = "eval"
REPORT = "report.md"


@dataclass(frozen=True)
class Sources:
    train: list[str]
    evaluation: list[str]


@dataclass(frozen=True)
class PretrainPlan:
    action: str  # reuse, resume, continue, new
    reason: str
    run_dir: str
    config: PretrainConfig


@dataclass(frozen=True)
class PipelineResult:
    report: str
    train_store: str
    eval_store: str | None
    run_dir: str
    pretrain_action: str
    frames_decoded: int
    evaluation: str | None


@task(name="resolve_sources", cache_policy=NO_CACHE)
def resolve_sources(config: PipelineConfig) -> Sources:
    """The user's sources, or the embedded sample (written once to ``{out}/sample``)."""
    if config.sources:
        return Sources(list(config.sources), list(config.eval_sources))
    sample = Path(config.out) / "sample"
    if not (sample / MANIFEST_NAME).exists():
        write_sample(sample, seed=config.sample_seed, small=config.sample_small)
    evaluation = config.eval_sources or [str(sample / name) for name in ("davis", "vip", "jhmdb")]
    return Sources([str(sample / "videos")], evaluation)


@task(name="check_validation_needed", cache_policy=NO_CACHE)
def check_validation_needed(store: str) -> bool:
    try:
        require_validated(store)
    except ValidationRequiredError as reason:
        get_run_logger().info("validating: %s", str(reason).splitlines()[0])
        return True
    return False


def _what_it_computes(values: dict) -> dict:
    """A dumped PretrainConfig without the ``RUN_ONLY_FIELDS``, its stores without the snapshots a
    run pinned them to (``tasks.pretrain.data``; whether the data is the same is the fingerprints')."""
    kept = copy.deepcopy(values)
    kept["stores"] = [normalize(split_ref(store)[0]) for store in kept.get("stores") or []]
    for path in RUN_ONLY_FIELDS:
        *sections, name = path.split(".")
        holder = kept
        for section in sections:
            holder = holder.get(section) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            holder.pop(name, None)
    return kept


def _completed_record(run_dir: Path):
    records = [r for r in lineage.read_records(str(run_dir / LINEAGE_DIR)) if r.kind == "pretrain"]
    done = [r for r in records if r.status == "completed"]
    return done[-1] if done else None


def _fingerprints(stores: list[str]) -> dict[str, str]:
    return {normalize(store): fingerprint_of(open_snapshot(store)) for store in stores}


@task(name="plan_pretraining", cache_policy=NO_CACHE)
def plan_pretraining(config: PipelineConfig, store: str) -> PretrainPlan:
    """Reuse, resume, continue from, or start a run under ``{out}/runs/<preset>-NNN``."""
    runs = Path(config.out) / RUNS_DIR
    existing = sorted(runs.glob(f"{config.preset}-[0-9][0-9][0-9]")) if runs.exists() else []

    def make(run_dir: Path, **run) -> PretrainConfig:
        return config.pretrain_config(store, str(run_dir), **run)

    def next_dir() -> Path:
        number = int(existing[-1].name.rsplit("-", 1)[1]) + 1 if existing else 1
        return runs / f"{config.preset}-{number:03d}"

    if not existing:
        return PretrainPlan("new", "no earlier run", str(next_dir()), make(next_dir()))
    latest = existing[-1]
    wanted = make(latest)
    record = _completed_record(latest)
    if record is None:
        if checkpoint_paths(latest):
            return PretrainPlan("resume", f"{latest.name} was interrupted", str(latest), make(latest, resume=True))
        return PretrainPlan("new", f"{latest.name} left no checkpoint", str(latest), wanted)
    same_config = _what_it_computes(record.parameters) == _what_it_computes(wanted.model_dump(mode="json"))
    recorded = {normalize(i.uri): i.facets.get("catalog_fingerprint") for i in record.inputs if i.kind == "store"}
    same_data = recorded == _fingerprints(wanted.stores)
    if same_config and same_data and (latest / ENCODER).exists():
        return PretrainPlan("reuse", f"{latest.name} finished on the same data and config", str(latest), wanted)
    why = "the store changed" if not same_data else "the config changed"
    init, _ = latest_recorded_checkpoint(latest) if not same_data and config.on_new_data == "continue" else (None, [])
    if init is not None:
        return PretrainPlan("continue", f"{why}; warm start from {init}", str(next_dir()),
                            make(next_dir(), init_from=str(init)))
    return PretrainPlan("new", why, str(next_dir()), make(next_dir()))


@task(name="run_pretrain_deployment", cache_policy=NO_CACHE)
def run_pretrain_deployment(config: PipelineConfig, pretrain: PretrainConfig) -> None:
    """Hand pre-training to its deployment (the ``gpu`` work pool) and wait for it to finish.

    The worker must see the same paths (a shared filesystem or object-store URLs).
    """
    run = run_deployment(config.pretrain_deployment, parameters={"config": pretrain.model_dump(mode="json")},
                         timeout=None)
    if not run.state or not run.state.is_completed():
        raise RuntimeError(f"pre-training deployment run {run.name} ended {run.state.name if run.state else 'unknown'}")


@task(name="build_evaluation_config", cache_policy=NO_CACHE)
def build_evaluation_config(config: PipelineConfig, plan: PretrainPlan, store: str):
    """The EvaluateConfig for this run's encoder, and whether it still needs evaluating."""
    out = Path(config.out) / EVAL_DIR / Path(plan.run_dir).name
    # Every run's evaluation shares one floor cache: the floors are scored once per data and protocol.
    values = {"floor_cache": str(Path(config.out) / EVAL_DIR), **config.evaluate,
              "checkpoints": [str(Path(plan.run_dir) / ENCODER)], "data": store, "out": str(out)}
    eval_config = EvaluateConfig.model_validate(values)
    encoder = Path(plan.run_dir) / ENCODER
    evaluated_encoder, evaluated_settings = _last_evaluation(out)
    needed = (config.reevaluate or not (out / COMPARISON).exists() or evaluated_encoder != file_sha256(str(encoder))
              or _scored_by(evaluated_settings) != _scored_by(eval_config.model_dump(mode="json")))
    return eval_config, needed


# EvaluateConfig fields that change where or how fast an evaluation runs, not what it scores.
_NOT_SCORED_BY = ("threads", "device", "floor_cache", "reuse_floors", "dask_workers")


def _scored_by(settings: dict) -> dict:
    return {key: value for key, value in settings.items() if key not in _NOT_SCORED_BY}


def _last_evaluation(out: Path) -> tuple[str | None, dict]:
    """The encoder's sha256 and the settings of the last evaluation that completed in ``out``: a
    changed encoder or changed settings (``vmac run --set evaluate.…``) evaluate again."""
    for record in reversed(lineage.read_records(str(out / LINEAGE_DIR))):
        if record.kind == "evaluate" and record.status == "completed":
            encoder = next((item.sha256 for item in record.inputs if item.uri.endswith(ENCODER)), None)
            return encoder, record.parameters
    return None, {}


def _figures(run_dir: Path, report_dir: Path) -> list[tuple[str, str]]:
    """(caption, path relative to the report's folder) of the run's loss curve and latest previews:
    relative, so the links hold when the output folder moves or is copied elsewhere."""
    previews = sorted((run_dir / PREVIEWS_DIR).glob("*.png"))
    found = [("loss curve", run_dir / LOSS_CURVE)] + ([("reconstructions", previews[-1])] if previews else [])
    return [(caption, Path(os.path.relpath(path.resolve(), report_dir.resolve())).as_posix())
            for caption, path in found if path.exists()]


def _evaluation_row(evaluated, eval_out: Path) -> str:
    if evaluated:
        return f"| evaluate | evaluated | `{eval_out}` |"
    if (eval_out / COMPARISON).exists():
        return f"| evaluate | reused (same encoder and settings) | `{eval_out}` |"
    return "| evaluate | not run: no labelled folder to evaluate on (--eval-source) | - |"


@task(name="write_pipeline_report", cache_policy=NO_CACHE)
def write_pipeline_report(config: PipelineConfig, ingested, plan: PretrainPlan, evaluated, train_store: str,
                          eval_store: str) -> PipelineResult:
    """``{out}/report.md``: what each stage did and where its outputs are, its figures linked
    relative to it; also the ``pipeline-report`` artifact, which names the figures instead (the
    Prefect UI cannot show files on the machine that ran the flow)."""
    run_dir = Path(plan.run_dir)
    stamp = validation_status(train_store)
    eval_out = Path(config.out) / EVAL_DIR / run_dir.name
    comparison = (eval_out / COMPARISON).read_text() if (eval_out / COMPARISON).exists() else "_(no evaluation)_"
    last = (metric_rows(run_dir / METRICS) or [{}])[-1]
    report = Path(config.out) / REPORT
    make_folder(report.parent)
    figures = _figures(run_dir, report.parent)
    head = [
        "# vmac pipeline report",
        "",
        "| stage | outcome | outputs |",
        "|---|---|---|",
        f"| ingest | {ingested.frames_decoded} frames decoded, {len(ingested.failed)} failed, "
        f"{sum(o.action == 'skipped' for o in ingested.outcomes)} up to date | `{train_store}` |",
        f"| validate | {'passed' if stamp and stamp.passed else 'FAILED'}"
        f"{f', {len(stamp.quarantined)} video(s) quarantined' if stamp and stamp.quarantined else ''} "
        f"| `{stamp.report_path if stamp else '-'}` |",
        f"| pretrain | {plan.action}: {plan.reason}; step {last.get('step', '-')}, loss {last.get('loss', float('nan')):.4f} "
        f"| `{run_dir}` |",
        _evaluation_row(evaluated, eval_out),
        "",
    ]
    tail = ["## Label propagation", "", comparison]
    in_file = [line for caption, rel in figures for line in (f"![{caption}]({rel})", "")]
    named = [f"Figures beside `{report}`: " + ", ".join(f"{c} `{rel}`" for c, rel in figures) + ".", ""] if figures else []
    write_atomic(report, "\n".join(head + in_file + tail) + "\n")
    create_markdown_artifact(key="pipeline-report", markdown="\n".join(head + named + tail), description=str(report))
    return PipelineResult(str(report), train_store, eval_store, str(run_dir), plan.action, ingested.frames_decoded,
                          str(eval_out) if evaluated else None)
