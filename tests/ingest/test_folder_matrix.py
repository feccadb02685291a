"""The frame-folder and layout conformance matrix: every generated case against what a viewer shows
(folder_conformance.py).

Each case writes its input (a frame folder or a small dataset tree) into its own folder, ingests
it into its own store, and compares what vmac stored with the case's expectation.
"""

from __future__ import annotations

import pytest

from storage_schemas.records import Status
from tests.ingest import folder_conformance as matrix

CASES = matrix.cases()


def test_matrix_covers_the_issue():
    """At least 60 cases with unique ids; every kind of file and layout of the issue is in it."""
    ids = [case.id for case in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    for needed in ("png-rgb8", "png-grey16", "png-rgb16", "jpeg-cmyk", "png-palette", "png-greyalpha8", "webp-lossy",
                   "tiff-rgb8", "numbering-gap", "zero-byte-frame", "truncated-png", "truncated-jpeg",
                   "decompression-bomb-beyond-vmac", "davis2017-trainval-layout", "ytvos-train-late-object",
                   "ytvos-valid-first-appearance", "vip-layout", "jhmdb-layout"):
        assert needed in ids, needed
    assert {f"jpeg-exif-orientation-{o}" for o in range(1, 9)} <= set(ids)
    assert {type(case.expect) for case in CASES} == {matrix.Viewed, matrix.Fails, matrix.Property}


def check_record(record, expected: dict[str, object]) -> None:
    """Each expected record field (nested models compared as dicts), every mismatch in one message."""
    dumped = record.model_dump()
    wrong = [f"record.{name} is {dumped.get(name)!r}, expected {want!r}" for name, want in expected.items()
             if dumped.get(name) != want]
    assert not wrong, "; ".join(wrong)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_folder_conformance(case: matrix.Case, tmp_path):
    source = case.make(tmp_path / "in")
    stored = matrix.ingest(source, str(tmp_path / "store.zarr"), case.params, case.sequence)
    record = stored.record
    if isinstance(case.expect, matrix.Fails):
        assert record.status is Status.failed and case.expect.fragment in (record.reason or ""), (
            f"expected a failed record whose reason contains {case.expect.fragment!r}, got {record.status.value}"
            + (f": {record.reason}" if record.reason else f" ({record.frame_count} frames)"))
        return
    assert record.status is Status.complete, f"vmac: {record.status.value}: {record.reason}"
    if isinstance(case.expect, matrix.Viewed):
        matrix.check_viewed(stored, case.expect, case.params)
    else:
        case.expect.check(stored)
    check_record(record, case.record)
