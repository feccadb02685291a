"""Prefect tasks of the validation stage: tables from the store, GE suites on them, a stamp.

Two tables, both small (one row per video), are what Great Expectations sees:

- the *catalog*: every video group's record (complete, failed, writing or unreadable) plus the
  shapes of the arrays actually stored, and the shapes the record implies;
- the *frame statistics*: per complete video, statistics of a sample of its frames and the label
  ids of its masks.

Frame sampling: ``sample_windows`` contiguous windows of ``sample_frames_per_video //
sample_windows`` frames, evenly spread so the first starts at frame 0 and the last ends at the
last frame (the whole video when it has at most ``sample_frames_per_video`` frames). Contiguous
windows, not a stride, because a frozen run is a property of *consecutive* frames; spreading them
still covers the opening and closing frames, where fades to black and frozen tails sit. A frozen
run is measured within one window, so runs longer than a window are reported as the window
length (still > K, which ``ValidateConfig`` guarantees a window can show). Masks are read whole,
in blocks: label ids are discrete, one stray id in one frame matters to label propagation, and
masks compress far better than frames.

The suites come from ``storage_schemas/suites`` and run in an ephemeral GE context with analytics
and progress bars off; nothing is written to a GE project folder.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import fsspec
import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from storage_schemas.layout import FRAMES, KEYPOINTS, MASKS, NOT_ANNOTATED, VIDEOS_GROUP
from storage_schemas.records import Status, VideoRecord
from storage_schemas.validation import (
    CATALOG_TABLE,
    VALIDATION_ATTR,
    VALIDATION_DIR,
    FailedVideo,
    RuleOutcome,
    Severity,
    SuiteDefinition,
    SuiteVersion,
    ValidateConfig,
    ValidationCounts,
    ValidationStamp,
    ValidationSummary,
    ValidationThresholds,
    load_suites,
)
from tasks.io.files import file_sha256
from tasks.io.lineage import code_version
from tasks.io.store import UNREADABLE, fingerprint_of, open_store, read_catalog
from tasks.io.uris import local_path

MASK_BLOCK_FRAMES = 256  # masks are read whole, this many frames per read
LISTED_FRAMES = 8  # at most this many frame indices are listed per video in a stats column


class ValidationFailedError(RuntimeError):
    """Critical expectations failed; ``summary`` says which rules and which videos."""

    def __init__(self, summary: ValidationSummary):
        self.summary = summary
        stamp = summary.stamp
        super().__init__(
            f"validation of {stamp.store} failed: {len(summary.critical_failures)} critical rule(s)\n"
            f"{summary.failure_text()}\nreport: {stamp.report_path}"
        )

    def __reduce__(self):
        # Exceptions pickle as cls(*args); ours is built from the summary, not the message.
        return (ValidationFailedError, (self.summary,))


@dataclass(frozen=True)
class ValidationTables:
    """What the suites run on, and the fingerprint of the catalog the tables were built from."""

    catalog: pd.DataFrame
    frame_stats: pd.DataFrame
    fingerprint: str

    def table(self, name: str) -> pd.DataFrame:
        return self.catalog if name == CATALOG_TABLE else self.frame_stats


# ---------------------------------------------------------------- catalog and fingerprint


def _shape(group, name: str) -> str | None:
    try:
        return str(tuple(int(n) for n in group[name].shape)) if name in group else None
    except (KeyError, ValueError, OSError):
        return None


def _expected_frame_count(record: VideoRecord) -> float | None:
    """Frames the probe promises at the stored rate: the probed count, or duration × fps when resampled."""
    if record.probe_frame_count is None:
        return None
    if record.decode_params.fps is None:
        return float(record.probe_frame_count)
    if record.duration:
        return record.duration * record.decode_params.fps
    if record.source_fps:
        return record.probe_frame_count * record.decode_params.fps / record.source_fps
    return None


CATALOG_COLUMNS = [
    "video_id", "status", "reason", "source_uri", "sha256", "decode_key", "source_kind", "layout",
    "fps", "height", "width", "frame_count", "probe_frame_count", "expected_frame_count",
    "frame_count_error", "has_masks", "object_ids", "has_keypoints", "num_joints",
    "frames_shape", "expected_frames_shape", "masks_shape", "expected_masks_shape",
    "keypoints_shape", "expected_keypoints_shape",
]


def catalog_rows(root, catalog: dict[str, VideoRecord | None]) -> pd.DataFrame:
    """One row per video group: record fields, stored array shapes, and the shapes the record implies.

    Shapes are strings such as ``"(24, 64, 96, 3)"`` so a mismatch reads plainly in the report.
    ``frame_count_error`` is ``max(0, |frame_count - expected| - 1) / expected``: one frame of
    rounding is always allowed, since resampling by duration × fps rounds either way.
    """
    rows = []
    for video_id, record in catalog.items():
        group = root[f"{VIDEOS_GROUP}/{video_id}"]
        row: dict = {
            "video_id": video_id,
            "status": record.status.value if record else UNREADABLE,
            "reason": record.reason if record else "video record missing or unreadable",
            "source_uri": record.source_uri if record else None,
            "sha256": record.sha256 if record else None,
            "decode_key": record.decode_key if record else None,
            "frames_shape": _shape(group, FRAMES),
            "masks_shape": _shape(group, MASKS),
            "keypoints_shape": _shape(group, KEYPOINTS),
        }
        if record is not None:
            t, h, w = record.frame_count, record.height, record.width
            complete = record.status is Status.complete and None not in (t, h, w)
            expected = _expected_frame_count(record)
            error = None
            if expected is not None and t is not None:
                error = max(0.0, abs(t - expected) - 1.0) / max(expected, 1.0)
            row.update(
                source_kind=record.source_kind.value,
                layout=record.layout,
                fps=record.fps,
                height=h,
                width=w,
                frame_count=t,
                probe_frame_count=record.probe_frame_count,
                expected_frame_count=expected,
                frame_count_error=error,
                has_masks=record.has_masks,
                object_ids=", ".join(str(i) for i in record.object_ids),
                has_keypoints=record.has_keypoints,
                num_joints=record.num_joints,
                expected_frames_shape=str((t, h, w, 3)) if complete else None,
                expected_masks_shape=str((t, h, w)) if complete and record.has_masks else None,
                expected_keypoints_shape=(
                    str((t, record.num_joints, 3)) if complete and record.has_keypoints else None
                ),
            )
        rows.append(row)
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)


# ---------------------------------------------------------------- sampled frame statistics


def sample_windows(frame_count: int, config: ValidateConfig) -> list[tuple[int, int]]:
    """[start, stop) windows of frames to read: the whole video, or evenly spread windows."""
    if frame_count <= config.sample_frames_per_video:
        return [(0, frame_count)] if frame_count else []
    length = config.window_frames
    starts = np.linspace(0, frame_count - length, config.sample_windows).round().astype(int)
    return [(int(s), int(s) + length) for s in starts]


def frame_statistics(windows: list[tuple[int, np.ndarray]], thresholds: ValidationThresholds) -> dict:
    """Statistics of sampled frames; ``windows`` holds (first frame index, frames (t, H, W, 3) uint8).

    A frame is black when its mean is at most ``black_mean_max``; constant when it is not black
    and its std is at most ``constant_std_max``. Consecutive frames are identical when their mean
    absolute difference is at most ``frozen_mean_abs_diff_max``; a frozen run is a maximal stretch
    of identical consecutive frames, counted in frames (1 = no freeze).
    """
    means, stds, indices = [], [], []
    longest, longest_at = 0, None
    for start, block_thwc in windows:
        flat_tn = block_thwc.reshape(len(block_thwc), -1)
        means.append(flat_tn.mean(axis=1, dtype=np.float64))
        stds.append(flat_tn.std(axis=1, dtype=np.float64))
        indices.append(np.arange(start, start + len(block_thwc)))
        run = 1
        for t in range(len(block_thwc)):
            if t:
                diff = np.abs(flat_tn[t].astype(np.int16) - flat_tn[t - 1]).mean()
                run = run + 1 if diff <= thresholds.frozen_mean_abs_diff_max else 1
            if run > longest:
                longest, longest_at = run, start + t - run + 1
    if not means:
        return {}
    mean_t, std_t, index_t = np.concatenate(means), np.concatenate(stds), np.concatenate(indices)
    black_t = mean_t <= thresholds.black_mean_max
    constant_t = ~black_t & (std_t <= thresholds.constant_std_max)
    return {
        "sampled_frames": int(len(mean_t)),
        "sample_mean": float(mean_t.mean()),
        "sample_std": float(std_t.mean()),
        "black_frame_fraction": float(black_t.mean()),
        "black_frames": _frame_list(index_t[black_t]),
        "constant_frame_fraction": float(constant_t.mean()),
        "constant_frames": _frame_list(index_t[constant_t]),
        "longest_frozen_run": int(longest),
        "frozen_run_frames": f"{longest_at}-{longest_at + longest - 1}" if longest > 1 else None,
    }


def _frame_list(indices: np.ndarray) -> str | None:
    if not len(indices):
        return None
    shown = ", ".join(str(int(i)) for i in indices[:LISTED_FRAMES])
    return shown + (f", … ({len(indices)} in all)" if len(indices) > LISTED_FRAMES else "")


def mask_ids(masks) -> set[int]:
    """Label ids present anywhere in a masks array, without 0 (background) and 255 (not annotated)."""
    seen = np.zeros(256, bool)
    for start in range(0, masks.shape[0], MASK_BLOCK_FRAMES):
        seen |= np.bincount(np.asarray(masks[start : start + MASK_BLOCK_FRAMES]).ravel(), minlength=256) > 0
    return set(np.flatnonzero(seen).tolist()) - {0, NOT_ANNOTATED}


def video_stats(group, video_id: str, object_ids: list[int], config: ValidateConfig) -> dict:
    """The frame-statistics row of one complete video; a read failure becomes ``read_error``."""
    row: dict = {"video_id": video_id}
    try:
        if FRAMES in group:
            frames = group[FRAMES]
            windows = sample_windows(frames.shape[0], config)
            row["sampled_windows"] = ", ".join(f"{a}-{b - 1}" for a, b in windows)
            row.update(frame_statistics([(a, frames[a:b]) for a, b in windows], config.thresholds))
        if MASKS in group:
            present = mask_ids(group[MASKS])
            undeclared = sorted(present - set(object_ids))
            row["mask_ids"] = ", ".join(map(str, sorted(present)))
            row["undeclared_mask_ids"] = ", ".join(map(str, undeclared)) if undeclared else None
    except Exception as exc:  # noqa: BLE001 - any unreadable chunk is a finding about the store, not a crash
        row["read_error"] = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300]
    return row


FRAME_STATS_COLUMNS = [
    "video_id", "object_ids", "sampled_windows", "sampled_frames", "sample_mean", "sample_std",
    "black_frame_fraction", "black_frames", "constant_frame_fraction", "constant_frames",
    "longest_frozen_run", "frozen_run_frames", "mask_ids", "undeclared_mask_ids", "read_error",
]


def frame_stats_rows(root, catalog: dict[str, VideoRecord | None], config: ValidateConfig) -> pd.DataFrame:
    rows = []
    for video_id, record in catalog.items():
        if record is None or record.status is not Status.complete:
            continue
        row = video_stats(root[f"{VIDEOS_GROUP}/{video_id}"], video_id, record.object_ids, config)
        row["object_ids"] = ", ".join(str(i) for i in record.object_ids)
        rows.append(row)
    return pd.DataFrame(rows, columns=FRAME_STATS_COLUMNS)


@task(name="build_validation_tables", cache_policy=NO_CACHE)
def build_validation_tables(config: ValidateConfig) -> ValidationTables:
    """Read the catalog and sample every complete video (never cached: the store changes under us)."""
    root = open_store(config.store, mode="r")
    catalog = read_catalog(root)
    return ValidationTables(
        catalog=catalog_rows(root, catalog),
        frame_stats=frame_stats_rows(root, catalog, config),
        fingerprint=fingerprint_of(catalog),
    )


# ---------------------------------------------------------------- Great Expectations


def run_suites(tables: ValidationTables, thresholds: ValidationThresholds,
               suites: list[SuiteDefinition] | None = None) -> dict[str, dict]:
    """Run every suite on its table in an ephemeral GE context; suite name → GE result JSON."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    source = context.data_sources.add_pandas("vmac_store")
    values = thresholds.model_dump()
    # COMPLETE lists every offending row, keyed by video_id, so the report can name them all.
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": ["video_id"]}
    results = {}
    for suite in suites or load_suites():
        batch = (
            source.add_dataframe_asset(suite.name)
            .add_batch_definition_whole_dataframe("whole_table")
            .get_batch(batch_parameters={"dataframe": tables.table(suite.meta.table)})
        )
        result = batch.validate(
            gx.ExpectationSuite(**suite.ge_suite_dict()),
            result_format=result_format,
            expectation_parameters={name: values[name] for name in suite.parameters()},
        )
        results[suite.name] = _json_safe(result.to_json_dict())
    return results


def _json_safe(value):
    """NaN and infinities become None, so the result is strict JSON."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


@task(name="run_expectation_suites", cache_policy=NO_CACHE)
def run_expectation_suites(tables: ValidationTables, thresholds: ValidationThresholds) -> dict[str, dict]:
    logger = get_run_logger()
    results = run_suites(tables, thresholds)
    for name, result in results.items():
        stats = result.get("statistics", {})
        logger.info("%s: %s of %s expectations met", name, stats.get("successful_expectations"),
                    stats.get("evaluated_expectations"))
    return results


def rule_outcomes(results: dict[str, dict], tables: ValidationTables, suites: list[SuiteDefinition]) -> list[RuleOutcome]:
    """Every expectation's outcome with the offending videos, in suite order."""
    outcomes = []
    for suite in suites:
        table = tables.table(suite.meta.table).set_index("video_id", drop=False)
        definitions = {e.meta.rule: e for e in suite.expectations}
        for item in results[suite.name]["results"]:
            config = item["expectation_config"]
            definition = definitions[config["meta"]["rule"]]
            result = item.get("result") or {}
            exception = (item.get("exception_info") or {})
            videos = [entry["video_id"] for entry in result.get("unexpected_index_list") or []]
            if exception.get("raised_exception"):
                details = [f"GE raised: {exception.get('exception_message')}"]
            elif videos:
                details = [_detail(table, video, definition.meta.detail_columns) for video in videos]
            elif not item["success"]:
                details = [f"observed {result.get('observed_value')!r}"]
            else:
                details = []
            outcomes.append(RuleOutcome(
                suite=suite.name,
                rule=definition.meta.rule,
                expectation_type=definition.type,
                severity=definition.severity,
                description=definition.description,
                success=bool(item["success"]),
                videos=videos,
                details=details,
            ))
    return outcomes


def _detail(table: pd.DataFrame, video_id: str, columns: list[str]) -> str:
    if video_id not in table.index or not columns:
        return video_id
    row = table.loc[video_id]
    shown = ", ".join(f"{c}={_cell(row[c])}" for c in columns if c in row.index)
    return f"{video_id} ({shown})"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "…"


# ---------------------------------------------------------------- stamp, result files, report


def _result_location(store: str, name: str) -> tuple[fsspec.AbstractFileSystem, str, str]:
    """(filesystem, path on it, path or URL to show a person) of ``<store>/validation/<name>``."""
    path = local_path(store)
    if path is not None:
        full = os.path.join(path, VALIDATION_DIR, name)
        return fsspec.filesystem("file"), full, full
    fs, root = fsspec.core.url_to_fs(store)
    return fs, f"{root.rstrip('/')}/{VALIDATION_DIR}/{name}", f"{store.rstrip('/')}/{VALIDATION_DIR}/{name}"


def _write_new(store: str, name: str, text: str) -> str:
    """Write a new file under ``<store>/validation``; never replaces one (append-only)."""
    fs, path, shown = _result_location(store, name)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    if fs.exists(path):
        raise FileExistsError(f"{shown} exists; validation results are append-only")
    with fs.open(path, "wb") as handle:
        handle.write(text.encode("utf-8"))
    return shown


def record_summary(config: ValidateConfig, tables: ValidationTables, results: dict[str, dict],
                   flow_run_id: str | None = None) -> ValidationSummary:
    """Write the GE result JSON and the markdown report into the store, then stamp its root.

    The stamp goes last, so it only ever points at files that exist.
    """
    suites = load_suites()
    now = datetime.now(timezone.utc)
    validation_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    rules = rule_outcomes(results, tables, suites)
    catalog = tables.catalog
    status = catalog["status"]
    critical = sum(not r.success and r.severity is Severity.critical for r in rules)
    counts = ValidationCounts(
        videos=len(catalog),
        complete=int((status == Status.complete.value).sum()),
        failed=int((status == Status.failed.value).sum()),
        other=int((~status.isin([Status.complete.value, Status.failed.value])).sum()),
        expectations=len(rules),
        critical_failures=critical,
        warnings=sum(not r.success and r.severity is Severity.warning for r in rules),
    )
    _, _, result_shown = _result_location(config.store, f"{validation_id}.json")
    _, _, report_shown = _result_location(config.store, f"{validation_id}.md")
    stamp = ValidationStamp(
        passed=critical == 0,
        validation_id=validation_id,
        validated_at=now.isoformat(timespec="seconds"),
        store=config.store,
        suites=[SuiteVersion(name=s.name, version=s.meta.version, sha256=s.sha256) for s in suites],
        catalog_fingerprint=tables.fingerprint,
        counts=counts,
        result_path=result_shown,
        report_path=report_shown,
        config=config,
        code_version=code_version(),
        flow_run_id=flow_run_id,
    )
    not_complete = [
        FailedVideo(video_id=row.video_id, status=row.status, reason=row.reason, source_uri=row.source_uri)
        for row in catalog[status != Status.complete.value].itertuples()
    ]
    markdown = report_markdown(stamp, rules, not_complete, tables)
    document = {"stamp": stamp.model_dump(mode="json"), "results": results}
    _write_new(config.store, f"{validation_id}.json", json.dumps(document, indent=1, allow_nan=False, default=str))
    _write_new(config.store, f"{validation_id}.md", markdown)
    root = open_store(config.store, mode="a")
    root.attrs[VALIDATION_ATTR] = stamp.model_dump(mode="json")
    _record_lineage(config, stamp, flow_run_id)
    return ValidationSummary(stamp=stamp, rules=rules, not_complete=not_complete, report_markdown=markdown)


def _record_lineage(config: ValidateConfig, stamp: ValidationStamp, flow_run_id: str | None) -> None:
    """Append a ``validate`` lineage record: the store's catalog in, the result and report out."""
    from storage_schemas.layout import LINEAGE_DIR
    from storage_schemas.lineage import Dataset
    from tasks.io import lineage

    inputs = [Dataset(uri=config.store, kind="store", facets={"catalog_fingerprint": stamp.catalog_fingerprint})]
    outputs = [Dataset(uri=stamp.result_path, kind="validation", sha256=file_sha256(stamp.result_path),
                       facets={"passed": stamp.passed, "validation_id": stamp.validation_id}),
               Dataset(uri=stamp.report_path, kind="report", sha256=file_sha256(stamp.report_path))]
    record = lineage.make_record("validate", "completed" if stamp.passed else "failed", stamp.validation_id,
                                 inputs, outputs, config.model_dump(mode="json"), flow_run_id)
    lineage.write_record(f"{config.store.rstrip('/')}/{LINEAGE_DIR}", record)


@task(name="record_validation", cache_policy=NO_CACHE)
def record_validation(config: ValidateConfig, tables: ValidationTables, results: dict[str, dict],
                      flow_run_id: str | None = None) -> ValidationSummary:
    summary = record_summary(config, tables, results, flow_run_id)
    logger = get_run_logger()
    logger.info("validation %s of %s: %s; report %s", summary.stamp.validation_id, config.store,
                "passed" if summary.passed else "FAILED", summary.stamp.report_path)
    for rule in summary.critical_failures + summary.warnings:
        log = logger.error if rule.severity is Severity.critical else logger.warning
        log("[%s] %s: %s", rule.severity.value, rule.rule, "; ".join(rule.details))
    return summary


@task(name="publish_validation_report", cache_policy=NO_CACHE)
def publish_validation_report(summary: ValidationSummary) -> None:
    verdict = "passed" if summary.passed else "FAILED"
    create_markdown_artifact(
        key="validation-report",
        markdown=summary.report_markdown,
        description=f"validation of {summary.stamp.store}: {verdict}",
    )


def _md(value, limit: bool = True) -> str:
    text = _cell(value) if limit else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(stamp: ValidationStamp, rules: list[RuleOutcome], not_complete: list[FailedVideo],
                    tables: ValidationTables) -> str:
    """The report a person opens: verdict, failing rules with their videos, then every video."""
    counts = stamp.counts
    t = stamp.config.thresholds
    verdict = (
        f"**PASSED**: all critical expectations met, {counts.warnings} warning(s)."
        if stamp.passed
        else f"**FAILED**: {counts.critical_failures} critical rule(s) failed, {counts.warnings} warning(s)."
    )
    suites = ", ".join(f"{s.name} v{s.version} (`{s.sha256[:12]}`)" for s in stamp.suites)
    lines = [
        f"# Validation of `{stamp.store}`",
        "",
        verdict,
        "",
        "| | |",
        "|---|---|",
        f"| validated at | {stamp.validated_at} |",
        f"| validation id | `{stamp.validation_id}` |",
        f"| videos | {counts.videos}: {counts.complete} complete, {counts.failed} failed, {counts.other} other |",
        f"| catalog fingerprint | `{stamp.catalog_fingerprint[:16]}` |",
        f"| suites | {suites} |",
        f"| full GE result | `{stamp.result_path}` |",
        f"| thresholds | fps {t.fps_min:g}–{t.fps_max:g}; height {t.height_min}–{t.height_max}; "
        f"width {t.width_min}–{t.width_max}; frame-count tolerance {t.frame_count_tolerance:g}; "
        f"frozen run ≤ {t.max_frozen_run}; black ≤ {t.max_black_frame_fraction:g}, "
        f"constant ≤ {t.max_constant_frame_fraction:g} of sampled frames |",
        f"| sampling | {stamp.config.sample_windows} window(s) of {stamp.config.window_frames} frames "
        f"(whole video up to {stamp.config.sample_frames_per_video} frames) |",
        "",
        "## Rules",
        "",
        "| result | severity | rule | what it checks | offending videos |",
        "|---|---|---|---|---|",
    ]
    order = sorted(rules, key=lambda r: (r.success, r.severity is not Severity.critical))
    for rule in order:
        result = "pass" if rule.success else ("**FAIL**" if rule.severity is Severity.critical else "warn")
        shown = "<br>".join(_md(d, limit=False) for d in rule.details[:20])
        if len(rule.details) > 20:
            shown += f"<br>… {len(rule.details) - 20} more"
        lines.append(f"| {result} | {rule.severity.value} | `{rule.rule}` | {_md(rule.description, limit=False)} | {shown} |")
    if not_complete:
        lines += ["", "## Videos that are not complete", "", "| video_id | status | reason | source |", "|---|---|---|---|"]
        for video in not_complete:
            lines.append(f"| {_md(video.video_id)} | {video.status} | {_md(video.reason, limit=False)} | {_md(video.source_uri)} |")
    stats = tables.frame_stats.set_index("video_id", drop=False)
    lines += [
        "",
        "## Complete videos",
        "",
        "| video_id | frames | fps | height×width | sampled | mean | std | black | constant | longest frozen run | mask ids |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in tables.catalog[tables.catalog["status"] == Status.complete.value].itertuples():
        s = stats.loc[row.video_id] if row.video_id in stats.index else None
        get = (lambda c: s[c] if s is not None else None)
        lines.append(
            f"| {_md(row.video_id)} | {_md(row.frame_count)} | {_md(row.fps)} | {_md(row.height)}×{_md(row.width)} "
            f"| {_md(get('sampled_windows'))} | {_md(get('sample_mean'))} | {_md(get('sample_std'))} "
            f"| {_md(get('black_frame_fraction'))} | {_md(get('constant_frame_fraction'))} "
            f"| {_md(get('longest_frozen_run'))} | {_md(get('mask_ids'))} |"
        )
    return "\n".join(lines) + "\n"
