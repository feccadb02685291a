import dataclasses
import io
import random

import pytest
import torch

from vmac_core.checkpoint import (
    ConfigMismatchError,
    check_config,
    config_of,
    export_dense_encoder,
    make_checkpoint,
)
from vmac_core.encoders import build_encoder
from vmac_core.masking import random_patch_mask
from vmac_core.model_config import ModelConfig
from vmac_core.videomac import VideoMAC

CFG = ModelConfig(encoder="resnet18", input_size=64, decoder_dim=32)


def _trained_model_and_optimizer():
    model = VideoMAC(CFG)
    opt = torch.optim.AdamW(model.param_groups(0.05), lr=1e-3, betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(0)
    f1, f2 = torch.randn(2, 3, 64, 64, generator=g), torch.randn(2, 3, 64, 64, generator=g)
    model(f1, f2, random_patch_mask(2, 2, 2, 0.5, g)).loss.backward()
    opt.step()
    model.update_target(0.9)
    return model, opt


def test_checkpoint_roundtrips_through_weights_only_load():
    model, opt = _trained_model_and_optimizer()
    ckpt = make_checkpoint(
        CFG,
        model.state_dict(),
        step=7,
        optimizer_state=opt.state_dict(),
        sampler_state={"epoch": 1, "position": 42},
        rng_state={"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
    )
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    check_config(loaded, CFG)
    assert config_of(loaded) == CFG and loaded["step"] == 7 and loaded["sampler"]["position"] == 42
    restored = VideoMAC(config_of(loaded))
    restored.load_state_dict(loaded["model"])
    for (n, a), (_, b) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert torch.equal(a, b), n
    opt2 = torch.optim.AdamW(restored.param_groups(0.05), lr=1e-3, betas=(0.9, 0.95))
    opt2.load_state_dict(loaded["optimizer"])
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    assert torch.equal(loaded["rng"]["torch"], ckpt["rng"]["torch"])


def test_check_config_names_every_mismatch():
    ckpt = make_checkpoint(CFG, {}, step=0)
    other = dataclasses.replace(CFG, mask_ratio=0.6, decoder_dim=64)
    with pytest.raises(ConfigMismatchError, match="mask_ratio.*decoder_dim|decoder_dim.*mask_ratio"):
        check_config(ckpt, other)
    with pytest.raises(ConfigMismatchError, match="format"):
        check_config({**ckpt, "format": "something/0"}, CFG)


def test_unsafe_values_are_refused_up_front():
    import numpy as np

    with pytest.raises(TypeError, match="ndarray"):
        make_checkpoint(CFG, {}, step=0, rng_state={"numpy": np.zeros(3)})
    with pytest.raises(TypeError):
        make_checkpoint(CFG, {}, step=0, extra={"fn": print})


def test_exported_encoder_loads_into_the_dense_encoder_and_matches():
    model, _ = _trained_model_and_optimizer()
    state = export_dense_encoder(model)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    dense = build_encoder(CFG.encoder)
    dense.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(dense(x)[8], model.online.encoder(x)[8])
