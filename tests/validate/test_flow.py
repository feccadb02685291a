"""validate_flow and `vmac validate` through real Prefect: artifact, failing state, exit codes."""

from __future__ import annotations

import pytest

from storage_schemas.validation import ValidateConfig
from tests.validate.conftest import clip, encode, ingest


@pytest.mark.slow
def test_flow_publishes_report_stamps_quarantines_and_fails_on_critical_rules(prefect_harness, store, tmp_path, capsys):
    from prefect.artifacts import Artifact

    from cli.main import build_parser
    from flows.validate import ValidationFailedError, validate_flow
    from storage_schemas.layout import FRAMES
    from tasks.io.stamp import validation_status
    from tests.stores import writable_group

    passed = validate_flow(ValidateConfig(store=store))
    assert passed.passed and validation_status(store) == passed.stamp

    # A mostly black video is quarantined: the flow completes, the store passes, the video is named.
    frames = clip(seed=21)
    frames[:15] = 0
    [black] = ingest([encode(tmp_path / "in", "black.mp4", frames)], store)
    marked = validate_flow(ValidateConfig(store=store))
    assert marked.passed and black in marked.stamp.quarantined
    artifact = Artifact.get("validation-report")
    assert "## Quarantined videos" in artifact.data and black in artifact.data

    # A stored frame changed after ingest breaks the store's integrity: a full validation (which
    # re-reads the videos the last one read unchanged) fails the flow.
    stored = writable_group(store, black)[FRAMES]
    stored[20] = stored[20] // 2
    state = validate_flow(ValidateConfig(store=store, full=True), return_state=True)
    assert state.is_failed()
    with pytest.raises(ValidationFailedError, match="frames_match_record") as failure:
        state.result()
    assert black in str(failure.value) and "report:" in str(failure.value)

    # The stamp and the artifact were written before the flow failed.
    stamp = validation_status(store)
    assert stamp.passed is False and stamp.flow_run_id == str(state.state_details.flow_run_id)
    artifact = Artifact.get("validation-report")
    assert artifact.flow_run_id == state.state_details.flow_run_id
    assert "**FAILED**" in artifact.data and "`frames_match_record`" in artifact.data and black in artifact.data

    # The CLI handler prints the summary and exits non-zero on critical failures: a finding is never
    # handed on, so the damaged video is read again without --full.
    parser = build_parser()
    args = parser.parse_args(["validate", "--store", store, "--max-frozen-run", "10"])
    assert args.func(args) == 1
    out = capsys.readouterr().out
    assert "frames_match_record" in out and black in out and "FAILED" in out
    from cli.main import main

    assert main(["validate", "--store", str(tmp_path / "nowhere.zarr")]) == 2
