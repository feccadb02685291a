import dataclasses

import pytest

from vmac_core.model_config import ModelConfig


def test_defaults_are_the_paper_settings():
    cfg = ModelConfig()
    assert (cfg.patch_size, cfg.mask_ratio, cfg.decoder_dim, cfg.decoder_depth) == (32, 0.75, 512, 1)
    assert (cfg.consistency_weight, cfg.norm_pix_loss, cfg.ema_momentum_base) == (1.0, True, 0.996)
    assert cfg.backend == "masked_dense"


def test_frozen_and_roundtrip():
    cfg = ModelConfig(encoder="convnextv2_atto", input_size=64, decoder_dim=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mask_ratio = 0.5
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    assert all(isinstance(v, (str, int, float, bool)) for v in cfg.to_dict().values())


@pytest.mark.parametrize(
    "changes",
    [{"encoder": "vit"}, {"backend": "spconv"}, {"patch_size": 16}, {"input_size": 200}, {"mask_ratio": 1.0}],
)
def test_invalid_configs_are_rejected(changes):
    with pytest.raises(ValueError):
        ModelConfig(**changes)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="mask_ratoi"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "mask_ratoi": 0.5})
