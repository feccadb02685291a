"""Validation on real stores: each broken store fails with the right rule and names the video."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import fsspec
import numpy as np
import pytest

from storage_schemas.layout import FRAMES as FRAMES_ARRAY
from storage_schemas.layout import MASKS
from storage_schemas.validation import ValidationStamp
from tasks.io.stamp import ValidationRequiredError, require_validated, validation_status
from tasks.io.store import open_snapshot, open_store
from tests.stores import writable_group
from tests.validate.conftest import FRAMES, clip, encode, failed_rules, ingest, validate


def test_good_store_passes_and_is_stamped(store, monkeypatch):
    def offline(self, address, *args):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).startswith("/"):
            raise AssertionError(f"validation tried to reach {address}")
        return real_connect(self, address, *args)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", offline)
    summary = validate(store)
    assert summary.passed, summary.failure_text()
    assert failed_rules(summary) == {}
    assert len(summary.rules) == 17 and summary.stamp.counts.complete == 2

    stamp = validation_status(store)
    assert stamp == summary.stamp
    tip = open_snapshot(store)
    assert tip.data.validation["passed"] is True and stamp.snapshot == tip.data.parent  # committed on top of what it read
    assert [s.name for s in stamp.suites] == ["vmac_catalog", "vmac_frame_stats"]
    assert require_validated(store) == stamp

    document = json.loads(Path(stamp.result_path).read_text())
    assert ValidationStamp.model_validate(document["stamp"]) == stamp
    catalog_result = document["results"]["vmac_catalog"]
    assert catalog_result["success"] is True
    assert {r["expectation_config"]["severity"] for r in catalog_result["results"]} == {"critical", "warning"}
    report = Path(stamp.report_path).read_text()
    assert report.startswith(f"# Validation of `{store}`") and "**PASSED**" in report
    assert stamp.result_path.startswith(store + "/validation/") and stamp.report_path.endswith(".md")


def _quarantined(summary, video: str, rule: str) -> str:
    """The store passed, ``video`` alone is marked, by ``rule`` (among others: a black or flat stretch
    is also one picture held); the rule's detail line."""
    assert summary.passed, summary.failure_text()
    assert summary.stamp.quarantined.keys() == {video} and summary.stamp.counts.quarantined == 1
    [marked] = [r for r in summary.quarantines if r.rule == rule]
    assert marked.videos == [video]
    assert any(line.startswith(f"{rule}: ") for line in summary.stamp.quarantined[video])
    assert "## Quarantined videos" in summary.report_markdown
    return marked.details[0]


def test_mostly_black_video_is_quarantined_and_the_store_passes(store, tmp_path):
    frames = clip(seed=5)
    frames[:15] = 0  # a lens cap for 15 of 24 frames; a fade's few black frames are allowed
    [black] = ingest([encode(tmp_path / "in", "black.mp4", frames)], store)
    detail = _quarantined(validate(store), black, "no_black_frames")
    assert "black_frames=0, 1, 2" in detail
    assert f"no_black_frames: {detail.removeprefix(black).strip(' ()')}" in require_validated(store).quarantined[black]


def test_a_fade_through_black_is_not_marked(store, tmp_path):
    frames = clip(seed=8)
    frames[10:13] = 0
    ingest([encode(tmp_path / "in", "fade.mp4", frames)], store)
    summary = validate(store)
    assert summary.passed and not summary.stamp.quarantined, summary.failure_text()


def test_mostly_flat_video_is_quarantined(store, tmp_path):
    frames = clip(seed=6)
    frames[:14] = 128  # a flat grey card for 14 of 24 frames
    [grey] = ingest([encode(tmp_path / "in", "grey.mp4", frames)], store)
    _quarantined(validate(store), grey, "no_constant_frames")


def test_frozen_run_longer_than_k_is_quarantined(store, tmp_path):
    frames = clip(seed=7)
    frames[4:16] = frames[4]  # 12 identical frames; K defaults to 8
    [frozen] = ingest([encode(tmp_path / "in", "frozen.mp4", frames)], store)
    assert "longest_frozen_run=12" in _quarantined(validate(store), frozen, "no_long_frozen_runs")
    # The same store has nothing marked with a larger K: the threshold comes from the config.
    relaxed = validate(store, thresholds={"max_frozen_run": 12}, sample_frames_per_video=64)
    assert relaxed.passed and not relaxed.stamp.quarantined


def test_a_frame_rate_out_of_range_quarantines_its_video_not_the_store(store, tmp_path):
    """A 300 fps high-speed clip and a 0.5 fps time-lapse are content of one video each: the rate
    rule marks them (it failed the whole store when it was critical) and the good videos train."""
    fast, slow = ingest([encode(tmp_path / "in", "high-speed.mp4", clip(seed=9), fps=300),
                         encode(tmp_path / "in", "time-lapse.mp4", clip(seed=10), fps=0.5)], store)
    summary = validate(store)
    assert summary.passed, summary.failure_text()
    assert summary.stamp.quarantined.keys() == {fast, slow} and summary.stamp.counts.quarantined == 2
    [rule] = [r for r in summary.quarantines if r.rule == "fps_in_range"]
    assert sorted(rule.videos) == sorted([fast, slow])
    assert all(any(line.startswith("fps_in_range: ") for line in summary.stamp.quarantined[v]) for v in (fast, slow))


def test_a_slow_fade_is_not_frozen(store, tmp_path):
    """Consecutive frames of a slow fade differ by a fraction of a level on average (the old rule's
    1.0 called them frozen); each is more than frozen_level_max from the first within a few frames."""
    still = clip(seed=12)[0].astype(np.float64)
    frames = np.stack([still * (0.55 + 0.45 * t / (FRAMES - 1)) for t in range(FRAMES)]).round().astype(np.uint8)
    ingest([encode(tmp_path / "in", "fade-in.mp4", frames)], store)
    summary = validate(store)
    assert summary.passed and not summary.stamp.quarantined, summary.failure_text()


def test_same_video_stored_twice_fails(store, tmp_path, base_store):
    source = tmp_path / "in" / "copy_of_good0.mp4"
    source.parent.mkdir()
    source.write_bytes((base_store.parent / "videos" / "good0.mp4").read_bytes())
    [copy] = ingest([source], store)
    summary = validate(store)
    failed = failed_rules(summary)
    assert list(failed) == ["source_hash_unique"]
    assert copy in failed["source_hash_unique"] and len(failed["source_hash_unique"]) == 2
    assert any(video.startswith("good0-") for video in failed["source_hash_unique"])


def _davis(root, frames=6):
    """A DAVIS-style folder with one sequence whose masks hold objects 1 and 2."""
    from PIL import Image

    seq_frames = clip(seed=9, frames=frames)
    (root / "JPEGImages/480p/bear").mkdir(parents=True)
    (root / "Annotations/480p/bear").mkdir(parents=True)
    masks = np.zeros((frames, 64, 96), np.uint8)
    masks[:, 10:30, 10:40] = 1
    masks[:, 35:60, 50:90] = 2
    for t in range(frames):
        Image.fromarray(seq_frames[t]).save(root / f"JPEGImages/480p/bear/{t:05d}.jpg", quality=95)
        Image.fromarray(masks[t], mode="L").save(root / f"Annotations/480p/bear/{t:05d}.png")
    return root


def test_masks_pass_then_undeclared_ids_fail(store, tmp_path):
    [bear] = ingest([_davis(tmp_path / "DAVIS")], store)
    assert validate(store).passed  # masks and their shape agree with the record
    masks = writable_group(store, bear)[MASKS]  # an edit vmac never makes
    patch = masks[4]
    patch[:4, :4] = 7
    masks[4] = patch
    summary = validate(store, full=True)  # an incremental run reuses the row of the unchanged version folder
    assert failed_rules(summary) == {"mask_ids_declared": [bear]}
    assert "undeclared_mask_ids=7" in summary.critical_failures[0].details[0]


def test_array_length_disagreeing_with_the_catalog_fails(store):
    video = sorted(open_snapshot(store).entries)[1]
    frames = writable_group(store, video)[FRAMES_ARRAY]
    frames.resize((frames.shape[0] - 4, *frames.shape[1:]))
    summary = validate(store)
    # Fewer frames also hash differently from the record.
    assert failed_rules(summary) == {"frames_shape_matches_catalog": [video], "frames_match_record": [video]}
    detail = summary.critical_failures[0].details[0]
    assert "frames_shape=(20, 48, 72, 3)" in detail and "expected_frames_shape=(24, 48, 72, 3)" in detail
    assert "`frames_shape_matches_catalog`" in summary.report_markdown and video in summary.report_markdown


def test_failed_video_is_only_a_warning(store, tmp_path):
    empty = tmp_path / "in" / "empty.mp4"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    [failed] = ingest([empty], store)
    summary = validate(store)
    assert summary.passed
    [warning] = summary.warnings
    assert warning.rule == "videos_not_complete" and warning.videos == [failed]
    assert "reason=empty file (0 bytes)" in warning.details[0]
    assert summary.not_complete[0].reason == "empty file (0 bytes)"
    assert "## Videos that are not complete" in summary.report_markdown
    assert require_validated(store).passed


def test_require_validated_refuses_unvalidated_and_changed_stores(store, tmp_path):
    with pytest.raises(ValidationRequiredError, match="never been validated") as never:
        require_validated(store)
    assert f"vmac validate --store {store}" in str(never.value) and "--skip-validation-check" in str(never.value)
    validate(store)
    require_validated(store)
    ingest([encode(tmp_path / "in", "new.mp4", clip(seed=11))], store)
    with pytest.raises(ValidationRequiredError, match="changed since it was validated"):
        require_validated(store)
    validate(store)
    assert require_validated(store).counts.complete == 3


def _shard(store: str, video: str, shard: int = 0) -> Path:
    """The file of one frames shard (64 frames per shard by default; 8 here)."""
    return Path(store) / open_snapshot(store).path(video) / FRAMES_ARRAY / "c" / str(shard) / "0" / "0" / "0"


def test_changed_or_damaged_frames_fail_validation_and_the_audit(store):
    """vmac never writes a committed version folder; bytes changed on disk behind its back are what
    a full validation (every frame re-hashed) and ``vmac audit`` find."""
    from tasks.audit.rehash import audit

    assert validate(store).passed
    first, second = sorted(open_snapshot(store).entries)
    shard = _shard(store, first, shard=1)
    original = shard.read_bytes()
    data = bytearray(original)
    middle = len(data) // 3
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])  # 16 bytes flipped in a chunk
    shard.write_bytes(bytes(data))
    assert [(d.what, d.video_id) for d in audit(store).drifts] == [("frames", first)]

    # A full validation reads every frame, not only its sample: the damage fails it (an incremental
    # one reuses the clean row of the version folder it read before: tests/validate/test_reuse.py).
    summary = validate(store, full=True)
    assert failed_rules(summary)["frames_match_record"] == [first]
    assert set(failed_rules(summary)) <= {"frames_match_record", "arrays_readable"}

    # A truncated shard does not decode; a frame rewritten through Zarr decodes but changed.
    last = _shard(store, second, shard=2)
    last.write_bytes(last.read_bytes()[:200])
    frames = writable_group(store, first)[FRAMES_ARRAY]
    shard.write_bytes(original)
    frames[3] = frames[3] // 2
    details = {r.rule: r.details for r in validate(store, full=True).critical_failures}
    assert any(f"{second} (frames_check=frames 16-23 do not decode" in d for d in details["frames_match_record"])
    assert any(f"{first} (frames_check=changed" in d for d in details["frames_match_record"])
    with pytest.raises(ValidationRequiredError, match="failed its last validation"):
        require_validated(store)


def test_memory_store_results_are_append_only(tmp_path):
    name = uuid.uuid4().hex
    store = f"memory://{name}/s.zarr"
    ingest([encode(tmp_path / "in", "a.mp4", clip(seed=3))], store)
    first, second = validate(store), validate(store)
    assert first.passed and second.passed
    assert first.stamp.validation_id != second.stamp.validation_id
    assert validation_status(store) == second.stamp
    fs = fsspec.filesystem("memory")
    files = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"/{name}/s.zarr/validation", detail=False))
    ids = sorted([first.stamp.validation_id, second.stamp.validation_id])
    assert files == sorted([f"{i}{suffix}" for i in ids for suffix in (".json", ".md", ".frame-stats.json")])
    assert (first.stamp.counts.videos_read, first.stamp.counts.videos_reused) == (1, 0)
    assert (second.stamp.counts.videos_read, second.stamp.counts.videos_reused) == (0, 1)
    assert json.loads(fs.cat(second.stamp.result_path))["stamp"]["passed"] is True
    assert second.stamp.result_path.startswith(f"memory://{name}/s.zarr/validation/")
    assert require_validated(store) == second.stamp


def test_empty_store_fails_without_crashing():
    store = f"memory://{uuid.uuid4().hex}/empty.zarr"
    open_store(store)
    summary = validate(store)
    assert failed_rules(summary) == {"has_complete_videos": []}
    assert summary.critical_failures[0].details  # the observed value is shown instead of videos
