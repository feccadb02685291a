"""Each dataset scored by its own protocol: YouTube-VOS objects propagated from their first
appearance (valid videos listed as not evaluable, never scored as DAVIS), DAVIS on its val split
by default, and every summary naming the splits it averages. Raw-pixel features on flat-coloured
generated trees (real ingest, real Zarr), so what is measured is the protocol."""

from __future__ import annotations

import pytest

from cli.commands import cmd_evaluate
from cli.main import build_parser
from tasks.evaluate.report import read_report
from tests.evaluate.conftest import ingest_folder, write_davis_trainval, write_ytvos
from tests.evaluate.test_evaluate import _config, _run

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
