"""Findings 2 and 8: names that come from data never make vmac write outside the folder the user
named (a crafted store's frame names, a link planted in a store), ``vmac bench`` runs only a listed
benchmark, and an in-memory store is refused where everything written would vanish."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from cli.examples import BENCHMARKS
from cli.main import main
from storage_schemas.layout import LINEAGE_DIR, VIDEOS_GROUP
from storage_schemas.validation import VALIDATION_DIR
from tasks.io.names import OutsideError, clean_name, inside, is_clean_name
from tests.evaluate.conftest import davis_store  # noqa: F401 - the fixture, for this module's tests
from tests.stores import put_video, writable_group


def _files(root: Path, leave_out: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and leave_out not in p.parents}


GOOD = ["00000", "frame_1.jpg", "a-b.c"]
BAD = ["..", ".", "", "a/b", "/etc", "x\0y", "../up"]


def test_inside_refuses_every_name_that_is_not_one_plain_name_and_every_link(tmp_path):
    for parts in itertools.product(GOOD + BAD, repeat=2):
        if any(part in BAD for part in parts):
            with pytest.raises(OutsideError):
                inside(tmp_path, *parts)
        else:
            assert inside(tmp_path, *parts) == tmp_path.joinpath(*parts)
    for text in GOOD + BAD + ["../../etc/passwd", "/abs/x.png", ".hidden", "ü/ß"]:
        assert is_clean_name(clean_name(text, "x")) and inside(tmp_path, clean_name(text, "x"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "masks").symlink_to(elsewhere)
    with pytest.raises(OutsideError, match="symbolic link"):
        inside(tmp_path / "out", "masks", "seq", "00000.png")


def test_frame_names_of_a_crafted_store_write_nothing_outside_out(tmp_path, davis_store):  # noqa: F811
    from storage_schemas.benchmark import EvaluateConfig
    from tasks.evaluate import tasks as evaluate_tasks
    from tasks.io.store import read_catalog

    store, _ = davis_store
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "kept.png").write_bytes(b"the user's own file")
    # Every frame of every video named to escape: absolute paths, parents, a path into the victim's folder.
    hostile = [str(victim / "kept.png"), "../../../../victim/kept.png", f"{victim}/new.png", "../x.png", "a/../../b",
               "/tmp/vmac-escape.png"]
    for video_id, record in read_catalog(store).items():  # committed as a crafted store would hold them
        put_video(store, record.model_copy(update={"frame_names": [hostile[t % len(hostile)]
                                                                   for t in range(record.frame_count)]}))
    out = tmp_path / "out"
    before = _files(tmp_path, out)
    config = EvaluateConfig.model_validate({"random_init": True, "encoder": "resnet18", "data": store, "out": str(out),
                                            "threads": 1, "pixel_floor": False, "save_masks": True})
    plan = evaluate_tasks.plan_evaluation.fn(config, store)
    for spec in plan.encoders:
        evaluate_tasks.evaluate_encoder.fn(spec, plan, config, "test-run")
    assert _files(tmp_path, out) == before, "a file outside --out was written or changed"
    assert not Path("/tmp/vmac-escape.png").exists()
    masks = sorted(p.relative_to(out).parts[-1] for p in (out / "masks").rglob("*.png"))
    assert masks and set(masks) <= {f"{t:05d}.png" for t in range(6)}, masks  # named by index instead


def test_a_link_planted_in_a_store_keeps_validation_and_lineage_writes_inside(tmp_path, davis_store):  # noqa: F811
    from tasks.io import lineage
    from tasks.validate.record import result_uri

    store, _ = davis_store
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in (VALIDATION_DIR, LINEAGE_DIR):
        target = Path(store) / name
        if target.exists():
            os.rename(target, tmp_path / f"moved-{name}")
        target.symlink_to(victim)
    with pytest.raises(OutsideError, match="symbolic link"):
        result_uri(store, "20260101T000000Z-abc.json")
    record = lineage.make_record("validate", "started", lineage.run_id(), [], [], {"store": store})
    with pytest.raises(OutsideError, match="symbolic link"):
        lineage.write_record(f"{store}/{LINEAGE_DIR}", record)
    assert list(victim.iterdir()) == []


def test_a_link_planted_in_a_store_keeps_commits_and_version_folders_inside(tmp_path, davis_store):  # noqa: F811
    """A store's refs, its snapshots and a video's folder each a link to another user's folder: no
    commit, tag, new version folder or removal goes through it, and nothing lands in the victim's."""
    from storage_schemas.snapshots import REFS_DIR, SNAPSHOTS_DIR
    from tasks.io.snapshots import commit, create_tag
    from tasks.io.store import new_version, open_snapshot, open_store, remove_version

    store, _ = davis_store
    snapshot = open_snapshot(store)
    video_id, entry = next(iter(sorted(snapshot.entries.items())))
    victim = tmp_path / "victim"
    victim.mkdir()
    for name in (REFS_DIR, SNAPSHOTS_DIR, f"{VIDEOS_GROUP}/{video_id}"):
        target = Path(store) / name
        os.rename(target, tmp_path / f"moved-{name.replace('/', '-')}")
        target.symlink_to(victim)
        if name.startswith(VIDEOS_GROUP):
            writes = [lambda: new_version(open_store(store), video_id),
                      lambda: remove_version(store, video_id, entry.version)]
        else:
            writes = [lambda: commit(store, lambda videos, stamp: ({}, stamp), "test")]
            writes += [lambda: create_tag(store, "kept", snapshot.id)] if name == REFS_DIR else []
        for write in writes:
            with pytest.raises(OutsideError, match="symbolic link"):
                write()
        target.unlink()
        os.rename(tmp_path / f"moved-{name.replace('/', '-')}", target)
    assert list(victim.iterdir()) == []
    assert open_snapshot(store).id == snapshot.id  # nothing was committed


def test_a_commit_writes_no_credential_into_the_store(tmp_path):
    """A record and a commit message naming a source URL with a password and a signed query are
    redacted in the snapshot and commit files a commit writes."""
    from storage_schemas.snapshots import CatalogEntry
    from tasks.io.snapshots import commit

    store = str(tmp_path / "s.zarr")
    secret = "https://ann:hunter2@example.org/clip.mp4?X-Amz-Signature=deadbeef"

    def edit(videos, validation):
        videos["clip-00000000"] = CatalogEntry(version=None, record={"source_uri": secret, "aliases": [secret]})
        return videos, validation

    commit(store, edit, "alias", f"{secret} is an alias of clip-00000000")
    written = "".join(p.read_text() for p in Path(store).rglob("*.json"))
    assert "hunter2" not in written and "deadbeef" not in written
    assert "https://ann:***@example.org/clip.mp4?X-Amz-Signature=***" in written


def test_bench_runs_only_a_listed_benchmark(tmp_path, capsys):
    planted = tmp_path / "planted.py"
    planted.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('ran')\n")
    relative = os.path.relpath(planted.with_suffix(""), BENCHMARKS)
    assert main(["bench", relative]) == 2
    assert not (tmp_path / "ran").exists(), "vmac bench ran a script outside benchmarks/"
    assert "no benchmark" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["ingest", "SOURCE", "--store"], ["validate", "--store"]])
def test_an_in_memory_store_is_refused_where_a_command_writes(tmp_path, capsys, command):
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"")
    args = [str(source) if part == "SOURCE" else part for part in command]
    assert main([*args, "memory://results.zarr"]) == 2
    assert "memory://results.zarr: an in-memory filesystem lives only inside this command" in capsys.readouterr().err


@pytest.mark.parametrize("array", ["masks", "frames"])
def test_a_crafted_store_claiming_huge_shapes_is_skipped_in_one_line(tmp_path, davis_store, array):  # noqa: F811
    """W4: a store's array header claiming 65536 × 65536 frames (no data behind it) is not read:
    that video is skipped with the reason, the others are scored; no MemoryError."""
    import json

    import zarr

    from storage_schemas.benchmark import EvaluateConfig
    from tasks.evaluate import tasks as evaluate_tasks
    from tasks.io.store import read_catalog

    store, _ = davis_store
    crafted = sorted(read_catalog(store))[0]
    group = writable_group(store, crafted)  # the version folder the tip names, crafted in place
    old = group[array]
    shape = (old.shape[0], 65536, 65536, *old.shape[3:])
    del group[array]
    group.create_array(array, shape=shape, chunks=(1, 1024, 1024, *old.shape[3:]), dtype=old.dtype)
    config = EvaluateConfig.model_validate({"pixels": True, "data": store, "out": str(tmp_path / "out"),
                                            "threads": 1, "pixel_floor": False})
    plan = evaluate_tasks.plan_evaluation.fn(config, store)
    report = json.loads(Path(evaluate_tasks.evaluate_encoder.fn(plan.encoders[0], plan, config, "t")).read_text())
    skipped = {s["video_id"]: s["reason"] for s in report["data"]["skipped"]}
    assert "larger than vmac reads" in skipped.get(crafted, ""), skipped
    assert len(report["sequences"]) == len(plan.videos) - 1
    assert isinstance(zarr.open_group(store, mode="r"), zarr.Group)
