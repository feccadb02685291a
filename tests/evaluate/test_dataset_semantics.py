"""Each dataset scored by its own protocol: YouTube-VOS objects propagated from their first
appearance (valid videos listed as not evaluable, never scored as DAVIS), DAVIS on its val split
by default (a val sequence listed in trainval too; a tree with no val list scored whole, saying
so), VIP videos whose class ids do not fit listed, and every summary naming the splits it averages. Raw-pixel features on flat-coloured
generated trees (real ingest, real Zarr), so what is measured is the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from cli.commands import cmd_evaluate
from cli.main import build_parser
from tasks.evaluate.report import read_report
from tasks.evaluate.video import _VipScores
from tasks.evaluate.videos import NotEvaluable, find_labelled_videos, selection_notes
from tasks.io.store import read_catalog
from tests.evaluate.conftest import ingest_folder, write_davis, write_davis_trainval, write_vip, write_ytvos
from tests.evaluate.test_evaluate import _config, _run
from tests.stores import put_video

PIXELS = {"random_init": False, "pixels": True, "encoder": None}


def test_youtube_vos_objects_start_where_they_first_appear_and_valid_is_not_scored(tmp_path):
    root = tmp_path / "youtube-vos"
    write_ytvos(root, "train", {"late": {2: 0, 1: 2}, "gapped": {1: 0, 3: 1}})
    write_ytvos(root, "valid", {"val1": {1: 0, 2: 3}})
    store = ingest_folder(root, tmp_path / "y.zarr")
    (path,), markdown = _run(_config(tmp_path, store, **PIXELS))
    report = read_report(path)
    results = {r.sequence: r for r in report.sequences}
    assert set(results) == {"late", "gapped"} and {r.benchmark for r in results.values()} == {"youtube-vos"}
    late = results["late"]
    assert late.first_frames == {"1": 2, "2": 0} and late.objects_scored == [1, 2]
    # Object 1 appears at frame 2: propagated from there it is found; from frame 0 (DAVIS) it would score 0.
    assert late.per_object["1"]["J-Mean"] > 0.7 and late.per_object["2"]["J-Mean"] > 0.7, late.per_object
    assert results["gapped"].objects_scored == [1, 3]
    assert set(report.summary) == {"youtube-vos"}, "nothing scored as DAVIS"
    assert report.summary["youtube-vos"].splits == ["train"]
    (skipped,) = report.data.skipped
    assert "YouTube-VOS valid: its masks hold each object only in the frame where it first appears" in skipped.reason
    assert "youtube-vos over train (2 sequences)" in markdown and "| late | 1 (from frame 2), 2 (from frame 0) |" in markdown
    assert "YouTube-VOS valid" in markdown


def test_davis_trainval_scores_val_unless_told_and_names_the_split(tmp_path):
    write_davis_trainval(tmp_path / "DAVIS", {"bear": "train", "cows": "val", "dog": "val"})
    store = ingest_folder(tmp_path / "DAVIS", tmp_path / "d.zarr")
    (path,), markdown = _run(_config(tmp_path, store, **PIXELS))
    report = read_report(path)
    assert sorted(r.sequence for r in report.sequences) == ["cows", "dog"]
    assert report.summary["davis"].splits == ["val"] and report.summary["davis"].sequences == 2
    (skipped,) = report.data.skipped
    assert skipped.reason.startswith("split train: davis is scored on val unless told otherwise")
    assert "davis over val (2 sequences)" in markdown

    (path,), markdown = _run(_config(tmp_path, store, split="all", out=str(tmp_path / "all"), **PIXELS))
    report = read_report(path)
    assert report.summary["davis"].splits == ["train", "val"] and report.summary["davis"].sequences == 3
    assert "davis over train, val (3 sequences)" in markdown and not report.data.skipped


@pytest.mark.slow
def test_vmac_evaluate_on_youtube_vos_and_davis_trainval_folders_says_what_it_scored(prefect_harness, tmp_path, capsys):
    """The command on a folder holding a YouTube-VOS tree (train and valid) and a DAVIS-2017
    trainval tree: each benchmark averaged alone over the splits it names; what is left out, with why."""
    data = tmp_path / "data"
    write_ytvos(data / "youtube-vos", "train", {"late": {2: 0, 1: 2}})
    write_ytvos(data / "youtube-vos", "valid", {"val1": {1: 0, 2: 3}})
    write_davis_trainval(data / "DAVIS", {"bear": "train", "cows": "val"})
    out = tmp_path / "out"
    args = build_parser().parse_args(["evaluate", "--baseline", "pixels", "--data", str(data), "--out", str(out),
                                      "--threads", "1", "--device", "cpu"])
    assert cmd_evaluate(args) == 0
    printed = capsys.readouterr().out
    assert "davis over val (1 sequence); youtube-vos over train (1 sequence)" in printed
    assert "split train: davis is scored on val unless told otherwise" in printed
    assert "YouTube-VOS valid: its masks hold each object only in the frame where it first appears" in printed
    report = read_report(str(out / "benchmark-pixels.json"))
    assert {(r.benchmark, r.sequence) for r in report.sequences} == {("davis", "cows"), ("youtube-vos", "late")}


def _davis_2016_lists(root, lists: dict[str, list[str]]) -> None:
    """Replace write_davis's 2017 list with DAVIS-2016's ImageSets/480p path-pair lists."""
    (root / "ImageSets" / "2017" / "val.txt").unlink()
    (root / "ImageSets" / "2017").rmdir()
    (root / "ImageSets" / "480p").mkdir(parents=True)
    for split, sequences in lists.items():
        (root / "ImageSets" / "480p" / f"{split}.txt").write_text("".join(
            f"/JPEGImages/480p/{s}/{t:05d}.jpg /Annotations/480p/{s}/{t:05d}.png\n" for s in sequences for t in range(6)))


def test_davis_2016_val_sequences_listed_in_trainval_too_are_scored_by_default(tmp_path):
    """DAVIS-2016's official lists name each val sequence in trainval.txt too: the default scores
    val (the most specific list), and --split trainval scores both."""
    root = tmp_path / "DAVIS2016"
    write_davis(root, {"bear": 1, "bmx": 1, "cows": 1})
    _davis_2016_lists(root, {"train": ["bear", "bmx"], "trainval": ["bear", "bmx", "cows"], "val": ["cows"]})
    store = ingest_folder(root, tmp_path / "d.zarr")
    (path,), markdown = _run(_config(tmp_path, store, **PIXELS))
    report = read_report(path)
    assert [r.sequence for r in report.sequences] == ["cows"] and report.summary["davis"].splits == ["val"]
    assert sorted(s.reason.split(":")[0] for s in report.data.skipped) == ["split train", "split train"]
    assert report.data.notes == [] and "Selection:" not in markdown
    (path,), _ = _run(_config(tmp_path, store, split="trainval", out=str(tmp_path / "tv"), **PIXELS))
    assert sorted(r.sequence for r in read_report(path).sequences) == ["bear", "bmx", "cows"]


@pytest.mark.parametrize("lists, said", [({"dev": ["bear", "bmx", "cows"]}, "its lists: dev"),
                                         (None, "no split lists")])
def test_a_tree_without_a_val_list_is_scored_whole_and_the_report_says_so(tmp_path, lists, said):
    """The shared dev set lists its sequences in ImageSets/480p/dev.txt only; a tree may have no
    ImageSets at all. There is no val to default to: every labelled sequence is scored, and the
    report and comparison.md say so (never an empty selection)."""
    root = tmp_path / "DAVIS"
    write_davis(root, {"bear": 1, "bmx": 1, "cows": 1})
    if lists is None:
        for path in sorted((root / "ImageSets").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (root / "ImageSets").rmdir()
    else:
        _davis_2016_lists(root, lists)
    store = ingest_folder(root, tmp_path / "d.zarr")
    (path,), markdown = _run(_config(tmp_path, store, **PIXELS))
    report = read_report(path)
    assert sorted(r.sequence for r in report.sequences) == ["bear", "bmx", "cows"] and not report.data.skipped
    note = f"davis: no val split in this tree ({said}): all 3 sequences"
    assert report.data.notes == [note] and f"Selection: {note}." in markdown
    assert read_report(path).summary["davis"].sequences == 3


def test_a_vip_video_with_a_class_id_beyond_the_classes_is_listed_and_the_others_are_scored(tmp_path):
    """One VIP mask with class 25 (of 20) used to abort the whole evaluation ('gt holds ids outside
    [0, 20)', naming no video). Ingest notes it; evaluation lists that video with the reason and
    scores the others."""
    root = tmp_path / "VIP"
    write_vip(root, "good")
    write_vip(root, "bad", classes=26)
    store = ingest_folder(root, tmp_path / "v.zarr")
    (path,), markdown = _run(_config(tmp_path, store, **PIXELS))
    report = read_report(path)
    assert [r.sequence for r in report.sequences] == ["good"]
    (skipped,) = report.data.skipped
    assert skipped.video_id.startswith("vip__bad-") and skipped.reason == (
        "VIP masks hold class id(s) 25, outside the 20 classes scored (0-19); fix the masks, or set vip_classes")
    assert skipped.video_id in markdown


def test_vip_ground_truth_beyond_the_classes_is_not_evaluable_where_it_is_read():
    """The same check where the masks are read (a record that does not list its ids)."""
    scores = _VipScores(20, np.zeros((4, 4), np.uint8), [])
    gt = np.zeros((4, 4), np.uint8)
    gt[0, 0], gt[1, 1] = 25, 255
    with pytest.raises(NotEvaluable, match=r"class id\(s\) 25 in frame 3, outside the 20 classes"):
        scores.add(3, np.zeros((4, 4), np.uint8), gt)


@pytest.mark.parametrize("lists, scored", [({"dev": ["bear", "bmx", "cows"]}, ["bear", "bmx", "cows"]),
                                           ({"train": ["bear", "bmx"], "val": ["cows"]}, ["cows"])])
def test_records_written_before_vmac_kept_the_trees_lists_are_judged_by_the_store(tmp_path, lists, scored):
    """A store ingested before records held ``dataset_splits`` (None, one split each): the splits
    its records name stand for the tree's lists. A dev-only store is scored whole, not emptied by
    the val default; a train/val store still scores val."""
    root = tmp_path / "DAVIS"
    write_davis(root, {"bear": 1, "bmx": 1, "cows": 1})
    _davis_2016_lists(root, lists)
    store = ingest_folder(root, tmp_path / "d.zarr")
    for video_id, record in read_catalog(store).items():
        put_video(store, record.model_copy(update={"splits": [], "dataset_splits": None}))
    videos, skipped = find_labelled_videos(store)
    assert sorted(v.sequence for v in videos) == scored
    assert len(skipped) == 3 - len(scored)
    said = ["davis: no val split in this tree (its lists: dev): all 3 sequences"] if "dev" in lists else []
    assert selection_notes(videos, None) == said
