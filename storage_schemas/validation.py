"""Validation contracts: the flow's config, the expectation suites' shape, the stamp in the store.

The suites themselves are data (``storage_schemas/suites/*.json``, Great Expectations' own suite
format plus a ``rule`` name per expectation); this module only describes and loads them, so it
imports no Great Expectations. Numbers a user may tune live in ``ValidationThresholds``; a suite
names them as GE suite parameters (``{"$PARAMETER": "fps_max"}``) and gets their values at
validation time, so one config drives every threshold and is embedded in the stamp.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from enum import Enum
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storage_schemas.config import StoreURI

# Root attribute of the store that holds the latest ValidationStamp.
VALIDATION_ATTR = "vmac_validation"
# Folder inside the store (beside the Zarr hierarchy) with one GE result JSON and one markdown
# report per validation run, named ``<timestamp>-<id>``; append-only.
VALIDATION_DIR = "validation"
SUITES_FOLDER = "suites"

# The catalog table the catalog suite runs on (``tasks/validate/tables.py`` builds it and the frame statistics table).
CATALOG_TABLE = "catalog"


class Severity(str, Enum):
    """What a failed expectation does: ``critical`` fails validation (integrity: shapes, hashes,
    readability; the store cannot be trusted), ``quarantine`` marks the offending videos, which
    pre-training skips and names, while the store passes (content heuristics about one video must
    not stop a dataset), ``warning`` is reported."""

    critical = "critical"
    quarantine = "quarantine"
    warning = "warning"


class ValidationThresholds(BaseModel):
    """Every tunable number of the suites and of the frame statistics behind them.

    The first group is passed to Great Expectations as suite parameters; the last group defines
    what counts as a constant, black or frozen frame when the statistics are computed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fps_min: float = Field(1.0, gt=0, description="lowest stored frame rate accepted")
    fps_max: float = Field(240.0, gt=0, description="highest stored frame rate accepted")
    height_min: int = Field(16, ge=1, description="smallest stored frame height (px)")
    height_max: int = Field(4320, ge=1, description="largest stored frame height (px)")
    width_min: int = Field(16, ge=1, description="smallest stored frame width (px)")
    width_max: int = Field(7680, ge=1, description="largest stored frame width (px)")
    frame_count_tolerance: float = Field(
        0.05, ge=0, description="allowed |stored - probed| / probed frames, beyond one frame of rounding"
    )
    # The content heuristics below were set from the distribution measured on the 20 real dev clips
    # and generated slow scenes (docs/validation.md, "Thresholds"); a video that breaks one is
    # marked (quarantined), not the store failed.
    max_frozen_run: int = Field(8, ge=1, description="K: longest run of frames showing the same picture allowed")
    max_constant_frame_fraction: float = Field(
        0.5, ge=0, le=1, description="share of sampled frames that may be one flat colour (a fade to white, a plain "
        "card): more marks the video")
    max_black_frame_fraction: float = Field(
        0.5, ge=0, le=1, description="share of sampled frames that may be black (fades to and from black): more "
        "marks the video")
    # Definitions used by the frame statistics (0–255 grey levels, over all pixels and channels).
    black_mean_max: float = Field(4.0, ge=0, description="a frame is black when its mean is at most this")
    constant_std_max: float = Field(2.0, ge=0, description="a non-black frame is constant when its std is at most this")
    frozen_level_max: float = Field(
        8.0,
        ge=0,
        description=(
            "frames show the same picture when no sample (pixel and channel) differs from the run's first "
            "frame by more than this many levels: a stopped camera's decoded frames differ by at most 3 (the "
            "codec refining a still picture), while any moving subject, pan, fade or keystroke moves some "
            "samples by more within a few frames; a mean difference cannot tell a frozen picture from a "
            "static shot with a small subject or a slow fade"
        ),
    )

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> ValidationThresholds:
        for low, high in (("fps_min", "fps_max"), ("height_min", "height_max"), ("width_min", "width_max")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) is above {high} ({getattr(self, high)})")
        return self


class ValidateConfig(BaseModel):
    """Parameters of ``validate_flow``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: StoreURI = Field(description="store path or fsspec URL, e.g. data/sample.zarr or memory://s.zarr")
    thresholds: ValidationThresholds = ValidationThresholds()
    sample_frames_per_video: int = Field(
        64, ge=2, description="frames read per complete video for the frame statistics (all, if fewer)"
    )
    sample_windows: int = Field(
        4, ge=1, description="the sample is this many contiguous windows spread from first to last frame"
    )
    dask_address: str | None = Field(
        None, description="read the videos on this Dask scheduler's workers (as ingest's --dask-address)")
    dask_workers: int | None = Field(
        None, ge=1, description="read the videos on a LocalCluster of this many workers; without it and without "
        "dask_address they are read in this process")
    full: bool = Field(
        False, description="re-read and re-hash every complete video, even one the last validation read at the "
        "same version folder and record with the same sampling (docs/validation.md, \"What is reused\")"
    )

    @model_validator(mode="after")
    def _windows_can_see_a_long_run(self) -> ValidateConfig:
        # A frozen run is measured inside one window, so a window must hold K + 1 frames.
        window = self.sample_frames_per_video // self.sample_windows
        if window < self.thresholds.max_frozen_run + 1:
            raise ValueError(
                f"sample windows of {window} frames cannot show a frozen run longer than "
                f"max_frozen_run={self.thresholds.max_frozen_run}; raise sample_frames_per_video "
                "or lower sample_windows"
            )
        return self

    @property
    def window_frames(self) -> int:
        return self.sample_frames_per_video // self.sample_windows


class ExpectationMeta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="short stable name shown in reports")
    detail_columns: list[str] = Field(
        default_factory=list, description="table columns shown beside each offending video"
    )


class SuiteMeta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=1, description="bump on any change of an expectation")
    table: Literal["catalog", "frame_stats"]
    notes: str = ""


class ExpectationDefinition(BaseModel):
    """One expectation of a suite file, in Great Expectations' serialised form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(description="GE expectation type, e.g. expect_column_values_to_be_between")
    kwargs: dict[str, Any]
    severity: Severity
    description: str = Field(min_length=1, description="one sentence a person reads in the report")
    meta: ExpectationMeta


class SuiteDefinition(BaseModel):
    """A suite file: GE's ``ExpectationSuite`` JSON, with vmac's version and table in ``meta``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    meta: SuiteMeta
    expectations: list[ExpectationDefinition] = Field(min_length=1)
    sha256: str = Field("", description="hash of the file's bytes (filled in by load_suites)")

    @model_validator(mode="after")
    def _rules_unique(self) -> SuiteDefinition:
        rules = [e.meta.rule for e in self.expectations]
        duplicates = sorted({r for r in rules if rules.count(r) > 1})
        if duplicates:
            raise ValueError(f"suite {self.name}: rule names repeat: {duplicates}")
        return self

    def ge_suite_dict(self) -> dict:
        """Keyword arguments for ``great_expectations.ExpectationSuite``. GE knows critical, warning
        and info: a quarantine rule goes to GE as a warning, and vmac reads its own severity from
        the suite file (``rule_outcomes``)."""
        expectations = []
        for e in self.expectations:
            dumped = e.model_dump(mode="json")
            if e.severity is Severity.quarantine:
                dumped["severity"] = Severity.warning.value
            expectations.append(dumped)
        return {"name": self.name, "meta": self.meta.model_dump(mode="json"), "expectations": expectations}

    def parameters(self) -> set[str]:
        """Names of the suite parameters (``{"$PARAMETER": name}``) its kwargs use."""
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                if set(value) == {"$PARAMETER"}:
                    found.add(value["$PARAMETER"])
                for inner in value.values():
                    walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)

        for expectation in self.expectations:
            walk(expectation.kwargs)
        return found


def load_suites() -> list[SuiteDefinition]:
    """Every ``suites/*.json`` shipped with storage_schemas, sorted by name, checked."""
    folder = resources.files("storage_schemas").joinpath(SUITES_FOLDER)
    suites = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        raw = entry.read_bytes()
        data = json.loads(raw)
        data["sha256"] = hashlib.sha256(raw).hexdigest()
        suites.append(SuiteDefinition.model_validate(data))
    if not suites:
        raise FileNotFoundError(f"no expectation suites in {folder}")
    return suites


def catalog_fingerprint(rows: Iterable[tuple]) -> str:
    """sha256 over the sorted (video_id, decode_key, status, version folder) of every video in the store.

    Any added, removed or re-decoded video, or a change of status, changes it.
    """
    blob = json.dumps(sorted([list(row) for row in rows], key=lambda r: r[0]), separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class SuiteVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    sha256: str


class ValidationCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    videos: int
    complete: int
    failed: int
    other: int = Field(description="writing (interrupted) or unreadable records")
    expectations: int
    critical_failures: int
    warnings: int
    quarantined: int = Field(0, description="complete videos a quarantine rule marked (pre-training skips them)")
    videos_read: int = Field(0, description="complete videos whose frames this validation read and re-hashed")
    videos_reused: int = Field(0, description="complete videos whose frame statistics came from the last "
                               "validation (same version folder, record and sampling), not re-read")


class ValidationStamp(BaseModel):
    """The latest validation of a store, committed into its catalog (``SnapshotData.validation``).

    Pretraining compares ``catalog_fingerprint`` with the catalog of the snapshot it reads, so a
    stamp stops vouching as soon as a video is added, removed or re-decoded. The fingerprint
    covers each video's version folder, and version folders are never rewritten, so an equal
    fingerprint means the frames validation read. Validation re-hashes every complete video's
    frames against the record, or, for a video an earlier validation read at the same version
    folder, record and sampling, reuses that clean result (``tasks.validate.reuse``; ``full``
    re-reads all), so a stamp that passed vouches for every stored frame byte as it was read.
    """

    model_config = ConfigDict(frozen=True)

    passed: bool
    validation_id: str
    validated_at: str = Field(description="UTC, ISO 8601")
    store: str
    suites: list[SuiteVersion]
    catalog_fingerprint: str
    snapshot: str | None = Field(
        None, description="the snapshot validated (storage_schemas.snapshots); None in stamps of a vmac before "
        "snapshots, which pre-training asks to validate again")
    counts: ValidationCounts
    quarantined: dict[str, list[str]] = Field(
        default_factory=dict, description="video_id → the quarantine rules it broke, with what was measured: "
        "pre-training skips these videos and names them; the store passes")
    result_path: str = Field(description="the full GE result JSON, inside the store")
    report_path: str = Field(description="the markdown report, inside the store")
    frame_stats_sha256: str | None = Field(
        None, description="sha256 of ``<validation_id>.frame-stats.json`` beside the report: the rows the next "
        "validation may reuse, read only while they still hash to this")
    config: ValidateConfig
    code_version: str
    flow_run_id: str | None = None


class RuleOutcome(BaseModel):
    """One expectation's result, as the summary and the report show it."""

    model_config = ConfigDict(frozen=True)

    suite: str
    rule: str
    expectation_type: str
    severity: Severity
    description: str
    success: bool
    videos: list[str] = Field(default_factory=list, description="offending video_ids, in table order")
    details: list[str] = Field(default_factory=list, description="one line per offending video, or the observed value")


class FailedVideo(BaseModel):
    model_config = ConfigDict(frozen=True)

    video_id: str
    status: str
    reason: str | None
    source_uri: str | None


class ValidationSummary(BaseModel):
    """What one validation found: the stamp it wrote, every rule's outcome, and the report."""

    model_config = ConfigDict(frozen=True)

    stamp: ValidationStamp
    rules: list[RuleOutcome]
    not_complete: list[FailedVideo]
    report_markdown: str

    @property
    def passed(self) -> bool:
        return self.stamp.passed

    @property
    def critical_failures(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.success and r.severity is Severity.critical]

    @property
    def warnings(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.success and r.severity is Severity.warning]

    @property
    def quarantines(self) -> list[RuleOutcome]:
        return [r for r in self.rules if not r.success and r.severity is Severity.quarantine]

    def failure_text(self) -> str:
        """Which rules failed for which videos, one line per rule (critical first)."""
        lines = []
        for rule in self.critical_failures + self.quarantines + self.warnings:
            shown = "; ".join(rule.details[:10]) + (f"; … {len(rule.details) - 10} more" if len(rule.details) > 10 else "")
            lines.append(f"[{rule.severity.value}] {rule.rule}: {rule.description} — {shown or 'failed'}")
        return "\n".join(lines)
