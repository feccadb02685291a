"""Finding 8, the rest: a full disk while a checkpoint is saved says "No space left on device"
(and keeps the previous checkpoint), and ``vmac import-weights`` refuses a file that would run code
without repeating torch's advice to load it with ``weights_only=False``."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from cli.errors import failure_line
from cli.main import main
from tasks.pretrain.checkpoints import save_atomic
from tests.filesystems import tmpfs


def test_a_full_disk_while_saving_a_checkpoint_says_so_and_keeps_the_last_one(tmp_path):
    try:
        with tmpfs(tmp_path / "disk", "1m") as disk:
            previous = os.path.join(disk, "ckpt-000001.pt")
            save_atomic({"w": torch.zeros(1000)}, previous)
            kept = open(previous, "rb").read()
            with pytest.raises(OSError) as raised:
                save_atomic({"w": torch.zeros(1_000_000)}, previous)  # 4 MB on a 1 MB disk
            assert raised.value.errno == errno.ENOSPC
            assert failure_line(raised.value).startswith("No space left on device")
            assert open(previous, "rb").read() == kept and os.listdir(disk) == ["ckpt-000001.pt"]
    except OSError as exc:
        if "cannot mount" in str(exc):
            pytest.skip(f"no tmpfs to fill here: {exc}")
        raise


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def test_import_weights_refuses_code_without_torchs_advice(tmp_path, capsys):
    planted = tmp_path / "official.pth"
    with open(planted, "wb") as handle:
        torch.save({"model": {"w": torch.zeros(2)}, "args": _RunsCode()}, handle)
    assert main(["import-weights", str(planted), "--encoder", "resnet18", "--out", str(tmp_path / "e.pt")]) == 2
    err = capsys.readouterr().err
    assert "holds objects other than tensors" in err and "will not load" in err
    assert "weights_only" not in err and not (tmp_path / "e.pt").exists()
