"""Incremental validation on real stores: a video validated at its version folder is not read again.

Proof that nothing is read: the bytes of reused videos are damaged on disk behind vmac's back; an
incremental validation still passes (it opened none of them), while ``--full`` and ``vmac audit``,
which read everything, name every damaged video.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from storage_schemas.layout import FRAMES as FRAMES_ARRAY
from storage_schemas.records import DecodeParams
from storage_schemas.validation import ValidateConfig, ValidationThresholds
from tasks.io.store import open_snapshot
from tests.validate.conftest import clip, encode, failed_rules, ingest, validate

# What a frame-statistics row depends on (tasks/validate/reuse.py row_key): changing any of these
# reads every video again; changing any other field only re-judges the reused rows.
ROW_FIELDS = {"sample_frames_per_video", "sample_windows", "black_mean_max", "constant_std_max", "frozen_level_max"}


def _read_reused(summary) -> tuple[int, int]:
    return summary.stamp.counts.videos_read, summary.stamp.counts.videos_reused


def _frames_dir(store: str, video: str) -> Path:
    return Path(store) / open_snapshot(store).path(video) / FRAMES_ARRAY / "c"


def _damage(store: str, video: str, truncate: bool) -> None:
    """Truncate every frames shard of ``video`` (nothing decodes) or flip 16 bytes of each (decodes
    changed, or not at all)."""
    for shard in (p for p in _frames_dir(store, video).rglob("*") if p.is_file()):
        data = bytearray(shard.read_bytes())
        if truncate:
            data = data[:100]
        else:
            middle = len(data) // 3
            data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
        shard.write_bytes(bytes(data))


def test_unchanged_store_reads_no_frame_while_full_and_audit_read_all(store):
    from cli.main import build_parser
    from tasks.audit.rehash import audit
    from tasks.validate.tables import build_tables

    first = validate(store)
    assert first.passed and _read_reused(first) == (2, 0)
    reused = build_tables(ValidateConfig(store=store))
    full = build_tables(ValidateConfig(store=store, full=True))
    assert (reused.videos_read, reused.videos_reused, full.videos_read) == (0, 2, 2)
    pd.testing.assert_frame_equal(reused.frame_stats, full.frame_stats)  # the same table, exactly

    a, b = sorted(open_snapshot(store).entries)
    _damage(store, a, truncate=True)
    _damage(store, b, truncate=False)
    unchanged = validate(store)
    assert unchanged.passed and _read_reused(unchanged) == (0, 2)

    rereads = validate(store, full=True)
    assert not rereads.passed and failed_rules(rereads)["frames_match_record"] == [a, b]
    assert sorted({d.video_id for d in audit(store).drifts}) == [a, b]
    # The failed rows were not handed on: the next incremental run reads both again.
    again = validate(store)
    assert not again.passed and _read_reused(again) == (2, 0)

    parser = build_parser()
    from cli.args import validate_config_from_args

    for argv in (["--full"], ["--set", "full=true"]):
        assert validate_config_from_args(parser.parse_args(["validate", "--store", store, *argv])).full is True
    assert validate_config_from_args(parser.parse_args(["validate", "--store", store])).full is False


def test_new_and_reingested_videos_are_read_the_others_reused(store, tmp_path):
    from tasks.ingest.video import ingest_video
    from tasks.io.sources import expand_sources

    assert _read_reused(validate(store)) == (2, 0)
    a, b = sorted(open_snapshot(store).entries)
    old_version = open_snapshot(store).entries[a].version
    source = open_snapshot(store).records()[a].source_uri
    [item] = expand_sources([source])
    ingest_video(item, store, DecodeParams(short_side=40, shard_frames=8))  # a new decode: a new version folder
    assert open_snapshot(store).entries[a].version != old_version
    [c] = ingest([encode(tmp_path / "in", "new.mp4", clip(seed=7))], store)
    _damage(store, b, truncate=True)  # b is reused, so its damage goes unseen

    summary = validate(store)
    assert summary.passed and _read_reused(summary) == (2, 1)
    assert set(open_snapshot(store).entries) == {a, b, c}


def test_a_changed_sampling_reads_again_a_changed_judgement_does_not(store):
    assert _read_reused(validate(store)) == (2, 0)
    assert _read_reused(validate(store, sample_frames_per_video=32, sample_windows=2)) == (2, 0)
    assert _read_reused(validate(store, sample_frames_per_video=32, sample_windows=2)) == (0, 2)
    judged = ValidationThresholds(max_black_frame_fraction=0.9, fps_max=100.0)
    assert _read_reused(validate(store, sample_frames_per_video=32, sample_windows=2, thresholds=judged)) == (0, 2)
    black = ValidationThresholds(black_mean_max=6.0)
    assert _read_reused(validate(store, sample_frames_per_video=32, sample_windows=2, thresholds=black)) == (2, 0)


def test_a_frame_stats_file_changed_after_it_was_written_is_not_trusted(store):
    from tasks.validate.reuse import FRAME_STATS_SUFFIX, result_uri

    first = validate(store)
    path = Path(result_uri(store, first.stamp.validation_id + FRAME_STATS_SUFFIX))
    document = json.loads(path.read_text())
    for item in document["rows"]:
        item["row"]["black_frame_fraction"] = 0.0  # what a forged row would claim
    path.write_text(json.dumps(document))
    assert _read_reused(validate(store)) == (2, 0)


def _changed(name: str, value):
    """Another valid value of a config or thresholds field."""
    if name == "dask_address":
        return "tls://127.0.0.1:8786"
    if name == "dask_workers":
        return 2
    if isinstance(value, bool):
        return not value
    if name == "sample_frames_per_video":
        return 128
    if name == "sample_windows":
        return 2
    if name.endswith("_min"):
        return value / 2 if isinstance(value, float) else value - 1
    return value / 2 if isinstance(value, float) else value + 1


@pytest.mark.parametrize("name", sorted({*ValidationThresholds.model_fields, *ValidateConfig.model_fields} - {
    "store", "thresholds", "full"}))
def test_the_row_key_changes_exactly_with_what_the_row_depends_on(name):
    from storage_schemas.validation import load_suites
    from tasks.validate.reuse import row_key

    base = ValidateConfig(store="s.zarr")
    if name in ValidationThresholds.model_fields:
        limits = base.thresholds
        other = base.model_copy(update={"thresholds": limits.model_copy(
            update={name: _changed(name, getattr(limits, name))})})
    else:
        other = base.model_copy(update={name: _changed(name, getattr(base, name))})
    suites = load_suites()
    record = {"frames_sha256": "ab" * 32, "decode_key": "k"}
    key = row_key("v", "20260101T000000Z-0000abcd", record, base, suites)
    assert (row_key("v", "20260101T000000Z-0000abcd", record, other, suites) != key) == (name in ROW_FIELDS)
    for changed in (("w", "20260101T000000Z-0000abcd", record), ("v", "20260101T000001Z-0000abcd", record),
                    ("v", "20260101T000000Z-0000abcd", {**record, "frames_sha256": "cd" * 32})):
        assert row_key(*changed, base, suites) != key


def _frame_stats(store: str, **config) -> pd.DataFrame:
    from tasks.validate.tables import build_tables

    tables = build_tables(ValidateConfig(store=store, full=True, **config))
    assert tables.videos_read == len(tables.frame_stats)
    return tables.frame_stats


def test_rows_read_as_dask_tasks_equal_rows_read_here(tmp_path):
    """A memory:// store: the LocalCluster's workers are threads of this process (tasks.io.cluster)."""
    import uuid

    store = f"memory://{uuid.uuid4().hex}/s.zarr"
    ingest([encode(tmp_path / "in", f"c{i}.mp4", clip(seed=10 + i)) for i in range(3)], store)
    pd.testing.assert_frame_equal(_frame_stats(store, dask_workers=2), _frame_stats(store))


def test_nothing_to_read_starts_no_cluster(store):
    assert _read_reused(validate(store)) == (2, 0)
    # Nothing listens there: an unchanged store validates without reaching for a scheduler.
    unchanged = validate(store, dask_address="tls://127.0.0.1:9")
    assert unchanged.passed and _read_reused(unchanged) == (0, 2)


@pytest.mark.slow
def test_a_process_cluster_reads_and_finds_damage(store):
    """Worker processes over TLS on loopback, as `vmac validate --workers 2` starts them."""
    pd.testing.assert_frame_equal(_frame_stats(store, dask_workers=2), _frame_stats(store))
    a, _ = sorted(open_snapshot(store).entries)
    _damage(store, a, truncate=True)
    summary = validate(store, full=True, dask_workers=2)
    assert failed_rules(summary)["frames_match_record"] == [a] and _read_reused(summary) == (2, 0)
