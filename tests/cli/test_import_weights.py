"""`vmac import-weights`: an official checkpoint file in, a normal encoder.pt and its lineage out."""

from __future__ import annotations

import argparse
import hashlib

import torch

from cli.main import main
from tasks.audit.tree import lineage_tree
from tasks.evaluate.weights import EncoderSpec, load_encoder
from tasks.io.lineage import read_records
from tests.vmac_core.official_layout import official_features, random_official


def official_checkpoint(path, name: str, **extra_online) -> dict:
    """A file shaped as the official save_model_distill writes it (args included: weights-only
    loading must accept that argparse.Namespace)."""
    source = random_official(name, seed=4)
    online = {f"module.{k}": v for k, v in (source | extra_online).items()}
    torch.save({"model_online": online, "model_target": online, "optimizer": {"state": {}, "param_groups": []},
                "epoch": 99, "scaler": {}, "args": argparse.Namespace(model="mac_r18", mask_ratio=0.75, input_size=224,
                                                                       norm_pix_loss=True, output_dir="/ckpt")}, path)
    return source


def test_import_writes_an_encoder_pt_that_evaluation_loads(tmp_path, capsys):
    source = official_checkpoint(tmp_path / "checkpoint-99.pth", "resnet18")
    out = tmp_path / "weights" / "encoder.pt"
    assert main(["import-weights", str(tmp_path / "checkpoint-99.pth"), "--encoder", "resnet18", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "minkowski layout, module. prefix; 15 decoder tensors left out" in printed

    blob = torch.load(out, weights_only=True)
    assert sorted(blob) == ["config", "encoder", "state_dict", "step"]  # what save_encoder writes
    assert blob["encoder"] == "resnet18" and blob["config"]["encoder"] == "resnet18" and blob["step"] is None
    assert (blob["config"]["mask_ratio"], blob["config"]["decoder_dim"]) == (0.75, 512)

    # The evaluation loads it (strict), and its dense features are the official network's.
    encoder, info = load_encoder(EncoderSpec("imported", "resnet18", "encoder", path=str(out)), torch.device("cpu"))
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = encoder(images)
    expected = official_features(source, "resnet18", images)
    for stride in (4, 8, 16, 32):
        torch.testing.assert_close(got[stride], expected[stride], rtol=1e-4, atol=1e-4)

    # The lineage record names the source file's hash; `vmac lineage` walks from the encoder to it.
    source_sha = hashlib.sha256((tmp_path / "checkpoint-99.pth").read_bytes()).hexdigest()
    (record,) = read_records(str(out.parent / "lineage"))
    assert record.kind == "import-weights" and record.status == "completed"
    assert [(d.kind, d.sha256) for d in record.inputs] == [("source", source_sha)]
    assert record.outputs[0].sha256 == info.sha256 and record.parameters["official_args"]["model"] == "mac_r18"
    tree = lineage_tree(str(out))
    assert tree["kind"] == "encoder" and tree["uri"] == str(out) and tree["children"][0]["sha256"] == source_sha


def test_a_file_that_does_not_fit_fails_naming_the_key(tmp_path, capsys):
    path = tmp_path / "v1.pth"
    official_checkpoint(path, "resnet18", **{"encoder.layer1.0.gamma": torch.ones(64)})
    out = tmp_path / "encoder.pt"
    assert main(["import-weights", str(path), "--encoder", "resnet18", "--out", str(out)]) == 2
    assert "unknown key 'module.encoder.layer1.0.gamma'" in capsys.readouterr().err
    official_checkpoint(path, "resnet18")
    assert main(["import-weights", str(path), "--encoder", "resnet50", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "shape mismatch: module.encoder.layer1.0.conv1.kernel" in err and "fits --encoder resnet18" in err
    assert not out.exists() and not (tmp_path / "lineage").exists()
    path.write_bytes(b"not a pickle")
    assert main(["import-weights", str(path), "--encoder", "resnet18", "--out", str(out)]) == 2
    assert "not a readable torch checkpoint" in capsys.readouterr().err
