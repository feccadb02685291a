"""The suites as data: well-formed, parameterised by the config, and loadable by GE."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from storage_schemas.validation import (
    Severity,
    ValidateConfig,
    ValidationThresholds,
    load_suites,
)


def test_suites_load_with_rules_severities_and_descriptions():
    suites = load_suites()
    assert [s.name for s in suites] == ["vmac_catalog", "vmac_frame_stats"]
    rules = {e.meta.rule: e.severity for s in suites for e in s.expectations}
    assert len(rules) == sum(len(s.expectations) for s in suites), "rule names are unique across suites"
    assert rules["videos_not_complete"] is Severity.warning
    # Content of one video marks it (heuristics, and a frame rate out of range); everything else
    # is the store's integrity.
    heuristics = {"no_black_frames", "no_constant_frames", "no_long_frozen_runs", "fps_in_range"}
    assert {rule for rule, sev in rules.items() if sev is Severity.quarantine} == heuristics
    assert all(sev is Severity.critical for rule, sev in rules.items() if rule not in heuristics | {"videos_not_complete"})
    for suite in suites:
        assert suite.meta.version >= 1 and len(suite.sha256) == 64
        assert all(e.description.strip() for e in suite.expectations)


def test_every_suite_parameter_is_a_threshold():
    used = set().union(*(s.parameters() for s in load_suites()))
    assert used and used <= set(ValidationThresholds.model_fields)
    assert {"fps_min", "fps_max", "max_frozen_run", "frame_count_tolerance"} <= used


def test_config_rejects_windows_too_short_for_k_and_unknown_fields():
    with pytest.raises(ValidationError, match="frozen run"):
        ValidateConfig(store="s.zarr", sample_frames_per_video=16, sample_windows=4)
    with pytest.raises(ValidationError):
        ValidateConfig(store="s.zarr", sample_frames=3)
    with pytest.raises(ValidationError, match="fps_min"):
        ValidationThresholds(fps_min=30, fps_max=10)


def test_suites_build_as_great_expectations_suites():
    import great_expectations as gx

    for suite in load_suites():
        built = gx.ExpectationSuite(**suite.ge_suite_dict())
        assert len(built.expectations) == len(suite.expectations)
        assert {e.severity.value for e in built.expectations} <= {"critical", "warning"}  # quarantine goes as warning
