"""The video conformance matrix: every generated case against ffmpeg's own decode (conformance.py).

All inputs are generated once for the module, two ffmpeg processes at a time; each case then
ingests its input into its own store and compares what vmac stored with the case's expectation.
A case whose input could not be generated fails with ffmpeg's message (it is never skipped).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from storage_schemas.records import Status
from tests.ingest import conformance as matrix

CASES = matrix.cases()
# Seconds an ingest may take before it counts as hanging (a FIFO blocks its reader forever).
INGEST_TIMEOUT = {"mp4-fifo": 5.0}
DEFAULT_INGEST_TIMEOUT = 120.0


def test_matrix_covers_the_issue():
    """At least 120 cases with unique ids; every container and codec of the issue is in it."""
    ids = [case.id for case in CASES]
    assert len(ids) >= 120 and len(set(ids)) == len(ids)
    containers = {case.source.file.rsplit(".", 1)[1] for case in CASES}
    assert {"mp4", "mov", "mkv", "webm", "avi", "ts", "m2ts", "mpg", "3gp", "flv", "gif"} <= containers
    codecs = {case.id.split("-")[1] for case in CASES}
    assert {"h264", "hevc", "vp8", "vp9", "mpeg2", "mpeg4", "mjpeg", "ffv1", "av1"} <= codecs
    assert {type(case.expect) for case in CASES} == {matrix.Oracle, matrix.Fails, matrix.Property}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, dict[str, Exception]]:
    """(folder, errors): every case's input generated under folder, two at a time; ``errors``
    maps a source that ffmpeg could not make to the error."""
    root = tmp_path_factory.mktemp("conformance")
    sources = list({case.source.key: case.source for case in CASES}.values())
    errors: dict[str, Exception] = {}

    def make(source: matrix.Source) -> None:
        try:
            source.make(root)
        except Exception as exc:  # noqa: BLE001 - reported by each case that needs the input
            errors[source.key] = exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(make, sources))
    return root, errors


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_conformance(case: matrix.Case, inputs, tmp_path):
    root, errors = inputs
    if case.source.key in errors:
        raise AssertionError(f"input not generated: {errors[case.source.key]}")
    path = case.source.path(root)
    stored = matrix.ingest(path, str(tmp_path / "store.zarr"), case.params,
                           INGEST_TIMEOUT.get(case.id, DEFAULT_INGEST_TIMEOUT))
    record = stored.record
    if isinstance(case.expect, matrix.Fails):
        assert record.status is Status.failed and case.expect.fragment in (record.reason or ""), (
            f"expected a failed record whose reason contains {case.expect.fragment!r}, got {record.status.value}"
            + (f": {record.reason}" if record.reason else f" ({record.frame_count} frames)"))
        return
    assert record.status is Status.complete, f"vmac: {record.status.value}: {record.reason}"
    problems: list[str] = []

    def check(step, *args) -> None:
        try:
            step(*args)
        except AssertionError as exc:
            problems.append(str(exc))

    if isinstance(case.expect, matrix.Oracle):
        reference = matrix.reference_decode(path, case.params.short_side, case.expect)
        if record.stream_index != reference.stream_index:
            problems.append(f"vmac decoded stream {record.stream_index}, ffmpeg's default choice is stream "
                            f"{reference.stream_index}")
        check(matrix.compare_frames, stored.frames_thwc, reference, case.expect)
        check(matrix.compare_times, stored.timestamps_t, reference)
    else:
        check(case.expect.check, stored)
    check(matrix.check_record, record, case.record)
    assert not problems, "\n".join(problems)
