"""Failures in one line, in the field's words: unusable paths are usage errors (exit 2) before any
work; a failure names its cause in vmac's words (exit 1), a library's internals only as a defect;
a checkpoint the weights-only loader refuses is refused in vmac's words."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from cli.errors import failure_line
from cli.main import main
from tasks.io.weights import WeightsFileError, load_weights_only
from tests import filesystems


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"vmac {command}: "), err
    return err[0]


def test_unusable_paths_are_usage_errors_in_one_line(tmp_path, capsys):
    missing, a_file = tmp_path / "missing.zarr", tmp_path / "file.zarr"
    a_file.write_text("not a store")
    cases = [
        (["validate", "--store", str(missing)], f"--store {missing}: no such file or folder"),
        (["validate", "--store", str(a_file)], f"--store {a_file}: a file, not a vmac store"),
        (["validate", "--store", str(tmp_path)], f"--store {tmp_path}: not a vmac store"),
        (["pretrain", "--store", str(missing), "--out", str(tmp_path / "run")], "no such file or folder"),
        (["ingest", str(tmp_path), "--store", str(a_file)], f"--store {a_file}: a file is there, not a folder"),
        (["ingest", str(tmp_path), "--store", str(a_file / "s.zarr")], f"{a_file} is a file"),
        (["evaluate", "--checkpoint", str(tmp_path / "no.pt"), "--data", str(tmp_path), "--out", str(tmp_path / "e")],
         f"--checkpoint {tmp_path / 'no.pt'}: no such file or folder"),
        (["audit", str(missing)], f"STORE_OR_RUN {missing}: no such file or folder"),
        (["audit", str(tmp_path)], "neither a vmac store nor a run directory"),
    ]
    for argv, fragment in cases:
        assert main(argv) == 2, argv
        assert fragment in _one_line(capsys, argv[0]), argv
    assert not (tmp_path / "run").exists() and not (tmp_path / "e").exists()


def test_an_unwritable_folder_is_a_usage_error(tmp_path, capsys):
    folder = tmp_path / "locked"
    if filesystems.can_mount():
        with filesystems.tmpfs(folder, "1m"):
            filesystems.remount(folder, "ro")
            assert main(["ingest", str(tmp_path), "--store", str(folder / "s.zarr")]) == 2
            assert "cannot write in" in _one_line(capsys, "ingest")
            assert main(["sample", str(folder / "sample")]) == 2
            assert _one_line(capsys, "sample").endswith("(Read-only file system)")
    else:  # an ordinary user: a folder without write permission
        folder.mkdir()
        folder.chmod(0o555)
        try:
            assert main(["sample", str(folder / "sample")]) == 2
            assert _one_line(capsys, "sample").endswith("(Permission denied)")
        finally:
            folder.chmod(0o755)


def test_failure_line_gives_vmacs_words_and_names_library_internals_as_a_defect(tmp_path):
    assert failure_line(FileNotFoundError(2, "No such file or directory", "/data/x.mp4")) == \
        "No such file or directory: /data/x.mp4"
    try:
        np.zeros(4).reshape(3)  # numpy's words, raised in C below this line, which is no raise statement
    except ValueError as exc:
        line = failure_line(exc)
    assert line.startswith("unexpected ValueError in tests.cli.test_errors: a defect")
    assert "--debug" in line and "reshape" not in line
    try:
        np.linalg.inv(np.zeros((2, 3)))  # raised in numpy's Python code
    except np.linalg.LinAlgError as exc:
        assert failure_line(exc).startswith("unexpected LinAlgError in numpy.linalg")
    try:
        load_weights_only(tmp_path)  # a folder
    except (WeightsFileError, OSError) as exc:
        assert str(tmp_path) in failure_line(exc)


class _Planted:
    """Pickles as a call of os.system: what a malicious checkpoint holds."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_holding_code_is_refused_in_vmacs_words(tmp_path):
    from tasks.evaluate.weights import read_weights
    from tasks.pretrain.checkpoints import load_checkpoint

    marker = tmp_path / "ran"
    planted = tmp_path / "ckpt-000100.pt"
    torch.save({"config": {}, "model": {}, "extra": _Planted(str(marker))}, planted)
    for load in (load_checkpoint, read_weights, load_weights_only):
        with pytest.raises(WeightsFileError) as refused:
            load(planted)
        message = str(refused.value)
        assert message.startswith(f"{planted}: holds objects other than tensors (it references ")
        assert "will not load this file" in message and "weights_only" not in message and "\n" not in message
    assert not marker.exists()

    truncated = tmp_path / "truncated.pt"
    torch.save({"w": torch.zeros(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(WeightsFileError, match="not a readable torch checkpoint"):
        load_checkpoint(truncated)


def test_a_frame_codec_other_than_the_stores_is_a_usage_error(tmp_path, capsys):
    from tasks.io.store import open_store

    store = str(tmp_path / "s.zarr")
    open_store(store, frame_codec="qoi")
    for argv in (["ingest", str(tmp_path), "--store", store, "--frame-codec", "lz4"],
                 ["ingest", str(tmp_path), "--store", store, "--frame-codec", "lz4", "--dry-run"],
                 ["run", "--source", str(tmp_path), "--store", store, "--out", str(tmp_path / "out"),
                  "--frame-codec", "jpeg-95"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "keeps its frames as qoi; --frame-codec" in err[0], err
