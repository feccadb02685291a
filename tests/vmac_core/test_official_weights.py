"""Official VideoMAC weights onto vmac's encoders (vmac_core.official_weights).

The sources are generated in the official key layout (tests/vmac_core/official_layout.py documents
the naming); the reference features are the official network computed from those tensors.
"""

from __future__ import annotations

import pytest
import torch

from tests.vmac_core.official_layout import convert_pth, official_features, official_shapes, random_official
from vmac_core.encoders import build_encoder
from vmac_core.official_weights import (
    OFFICIAL_MODELS,
    WeightsMappingError,
    map_official_weights,
    official_model_config,
    official_state_dict,
)


def imported(name: str, source: dict) -> torch.nn.Module:
    mapped = map_official_weights(source, build_encoder(name).state_dict())
    encoder = build_encoder(name)
    encoder.load_state_dict(mapped.state_dict, strict=True)
    return encoder.eval()


@pytest.mark.parametrize("name", ["convnextv2_atto", "resnet18", "resnet50"])
def test_imported_encoder_computes_the_official_features(name):
    source = random_official(name, seed=1)
    images = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    expected = official_features(source, name, images)
    for layout, weights in (("minkowski", source), ("dense", convert_pth(source))):
        with torch.no_grad():
            got = imported(name, weights)(images)
        assert set(got) == set(expected) == {4, 8, 16, 32}
        for stride in expected:
            torch.testing.assert_close(got[stride], expected[stride], rtol=1e-4, atol=1e-4,
                                       msg=lambda m: f"{name}, {layout} layout, stride {stride}: {m}")


def test_a_wrong_kernel_order_would_be_seen():
    """The reference is not blind to the one convention the mapping could get wrong: transposing
    every ME kernel's (row, col) offset changes the features."""
    name = "resnet18"
    source = random_official(name, seed=1)
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    expected = official_features(source, name, images)[8]
    swapped = {k: (v.reshape(3, 3, *v.shape[1:]).transpose(0, 1).reshape(v.shape) if k.endswith("kernel") and v.dim() == 3
                   else v) for k, v in source.items()}
    with torch.no_grad():
        got = imported(name, swapped)(images)[8]
    assert not torch.allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("official, name", sorted(OFFICIAL_MODELS.items()))
def test_every_published_model_maps_with_the_decoder_dropped(official, name):
    # Meta tensors: names and shapes only, so the large models cost nothing.
    source = {f"module.{k}": torch.empty(shape, device="meta") for k, shape in official_shapes(name).items()}
    with torch.device("meta"):
        target = build_encoder(name).state_dict()
    mapped = map_official_weights(source, target)
    assert mapped.layout == "minkowski" and mapped.ddp_prefix
    assert {k: v.shape for k, v in mapped.state_dict.items()} == {k: v.shape for k, v in target.items()}
    assert sorted({k.split(".")[1] for k in mapped.dropped}) == ["decoder", "mask_token", "pred", "proj"]


def test_unknown_keys_shape_mismatches_and_missing_weights_are_named():
    name = "convnextv2_atto"
    target = build_encoder(name).state_dict()
    source = random_official(name)
    # ConvNeXt V1's layer scale has no place in a V2 encoder.
    with pytest.raises(WeightsMappingError, match=r"unknown key 'encoder\.stages\.0\.0\.gamma'"):
        map_official_weights(source | {"encoder.stages.0.0.gamma": torch.ones(40)}, target)
    # An atto file is not a femto encoder: the first mismatching key is named with both shapes.
    with pytest.raises(WeightsMappingError, match=r"shape mismatch: encoder\.downsample_layers\.0\.0\.weight is "
                                                  r"\(40, 3, 4, 4\), but downsample_layers\.0\.0\.weight needs \(48, 3, 4, 4\)"):
        map_official_weights(source, build_encoder("convnextv2_femto").state_dict())
    with pytest.raises(WeightsMappingError, match=r"kernel \(48, 40\)"):
        map_official_weights(source | {"encoder.stages.0.0.dwconv.kernel": torch.zeros(48, 40)}, target)
    without = {k: v for k, v in source.items() if k != "encoder.norm2.ln.bias"}
    with pytest.raises(WeightsMappingError, match=r"lacks 1 encoder weights: norm2\.bias"):
        map_official_weights(without, target)


def test_containers_and_the_config_the_file_states():
    source = random_official("resnet18")
    blob = {"model_online": {f"module.{k}": v for k, v in source.items()}, "online_without_ddp": source,
            "optimizer": {}, "epoch": 99}
    state, where = official_state_dict(blob)
    assert where == "online_without_ddp" and state.keys() == source.keys()
    assert official_state_dict(convert_pth(source))[1] is None  # a bare state dict
    with pytest.raises(WeightsMappingError, match="no state dict found"):
        official_state_dict({"epoch": 3})
    config = official_model_config("resnet18", blob["model_online"], {"mask_ratio": 0.6, "input_size": 192})
    assert (config.mask_ratio, config.input_size, config.decoder_dim, config.decoder_depth) == (0.6, 192, 512, 1)
