"""Encoder properties: masked inputs never change visible outputs, ratio 0 equals dense, the
rows-form masked_dense backend equals a plain masked-dense reference (dense ops + re-masking after
every op, SparK style), shapes and parameter counts."""

import functools

import pytest
import torch
import torch.nn.functional as F

from tests.vmac_core.conftest import patch_active
from vmac_core.encoders import ENCODERS, build_encoder
from vmac_core.encoders.convnext import CONVNEXTV2_VARIANTS, classification_param_count
from vmac_core.encoders.resnet import RESNET_VARIANTS
from vmac_core.sparse import upsample_active

STRIDES = (4, 8, 16, 32)
ALL = sorted(ENCODERS)
# Big encoders get 64 px inputs (a 2x2 patch grid) to keep the suite fast; the rest 96 px (3x3).
BIG = {"convnextv2_base", "convnextv2_small", "convnextv2_tiny", "convnextv2_nano", "resnet50"}


@functools.cache
def _frozen_encoder(name):
    """One eval-mode encoder per name for read-only tests (building base takes seconds)."""
    torch.manual_seed(0)
    return build_encoder(name).eval().requires_grad_(False)


def _stride_active(active_b1hw, height, width):
    return {s: upsample_active(active_b1hw, height // s, width // s) for s in STRIDES}


@pytest.mark.parametrize("name", ALL)
def test_masked_pixels_never_change_visible_outputs(name):
    encoder = _frozen_encoder(name)
    b, size = 2, (64 if name in BIG else 96)
    active = patch_active(b, size // 32, 0.5, seed=3)
    x1 = torch.randn(b, 3, size, size)
    pixel_active = upsample_active(active, size, size)
    x2 = torch.where(pixel_active, x1, 100.0 * torch.randn_like(x1))  # wild values in masked patches
    with torch.no_grad():
        out1, out2 = encoder(x1, active), encoder(x2, active)
    stride_active = _stride_active(active, size, size)
    for s in STRIDES:
        a = stride_active[s]
        assert out1[s].shape == (b, encoder.out_channels[s], size // s, size // s)
        assert torch.equal(out1[s], out2[s]), f"stride {s}"
        # Masked sites are exactly zero.
        assert not out1[s].masked_select(~a).any()


@pytest.mark.parametrize("name", ["convnextv2_atto", "resnet18"])
def test_masked_pixels_never_change_gradients(name):
    encoder = build_encoder(name)
    active = patch_active(2, 2, 0.5, seed=1)
    x1 = torch.randn(2, 3, 64, 64)
    x2 = torch.where(upsample_active(active, 64, 64), x1, torch.randn_like(x1))
    grads = []
    for x in (x1, x2):
        encoder.zero_grad()
        sum(f.square().sum() for f in encoder(x, active).values()).backward()
        grads.append([p.grad.clone() for p in encoder.parameters()])
    for g1, g2 in zip(*grads):
        assert torch.equal(g1, g2)


@pytest.mark.parametrize("name", ALL)
def test_ratio_zero_equals_dense(name):
    encoder = _frozen_encoder(name)
    x = torch.randn(2, 3, 64, 64)
    all_active = torch.ones(2, 1, 2, 2, dtype=torch.bool)
    with torch.no_grad():
        dense, sparse = encoder(x), encoder(x, all_active)
    for s in STRIDES:
        torch.testing.assert_close(sparse[s], dense[s], rtol=1e-5, atol=1e-5)


def test_ratio_zero_equals_dense_gradients():
    encoder = build_encoder("convnextv2_atto")
    x = torch.randn(2, 3, 64, 64)
    grads = []
    for active in (None, torch.ones(2, 1, 2, 2, dtype=torch.bool)):
        encoder.zero_grad()
        encoder(x, active)[32].square().sum().backward()
        grads.append([p.grad.clone() for p in encoder.parameters()])
    for g_dense, g_sparse in zip(*grads):
        torch.testing.assert_close(g_sparse, g_dense, rtol=1e-4, atol=1e-6)


def test_masked_dense_encoder_loads_the_dense_state_dict():
    for name in ("resnet18", "convnextv2_atto"):
        dense = build_encoder(name)
        sparse = build_encoder(name, backend="masked_dense")
        assert type(sparse) is type(dense)
        sparse.load_state_dict(dense.state_dict(), strict=True)


# --- a plain masked-dense reference, written independently of the rows machinery ---------------


def _ln_channels_first(x_bchw, ln):
    return F.layer_norm(x_bchw.permute(0, 2, 3, 1), ln.normalized_shape, ln.weight, ln.bias, ln.eps).permute(0, 3, 1, 2)


def _reference_convnext(encoder, x_bchw, active_b1hw):
    """Official dense ConvNeXt V2 ops, re-masked after every op; GRN norm per sample over active sites."""
    h, w = x_bchw.shape[-2:]
    a = upsample_active(active_b1hw, h // 4, w // 4).to(x_bchw.dtype)
    stem_conv, stem_norm = encoder.downsample_layers[0]
    y = _ln_channels_first(stem_conv(x_bchw), stem_norm) * a
    outs = {}
    for i, s in enumerate(STRIDES):
        if i > 0:
            norm, conv = encoder.downsample_layers[i]
            a = F.max_pool2d(a, 2)
            y = conv(_ln_channels_first(y, norm)) * a
        a_bhw1 = a.permute(0, 2, 3, 1)
        for blk in encoder.stages[i]:
            z = (blk.dwconv(y) * a).permute(0, 2, 3, 1)
            z = F.gelu(blk.pwconv1(blk.norm(z))) * a_bhw1
            gx = torch.norm(z, p=2, dim=(1, 2), keepdim=True)
            nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
            z = (blk.grn.gamma * (z * nx) + blk.grn.beta + z) * a_bhw1
            y = y + (blk.pwconv2(z) * a_bhw1).permute(0, 3, 1, 2)
        y = _ln_channels_first(y, getattr(encoder, f"norm{i}")) * a
        outs[s] = y
    return outs


def _reference_resnet(encoder, x_bchw, active_b1hw):
    h, w = x_bchw.shape[-2:]
    a = upsample_active(active_b1hw, h // 4, w // 4).to(x_bchw.dtype)
    stem_conv, stem_norm = encoder.stem
    y = _ln_channels_first(stem_conv(x_bchw), stem_norm) * a
    outs = {}
    for i, s in enumerate(STRIDES):
        for blk in getattr(encoder, f"layer{i + 1}"):
            stride = (blk.conv2 if hasattr(blk, "conv3") else blk.conv1).stride[0]
            a_out = F.max_pool2d(a, stride) if stride > 1 else a
            if hasattr(blk, "conv3"):
                z = F.gelu(_ln_channels_first(blk.conv1(y) * a, blk.norm1)) * a
                z = F.gelu(_ln_channels_first(blk.conv2(z) * a_out, blk.norm2)) * a_out
                z = _ln_channels_first(blk.conv3(z) * a_out, blk.norm3) * a_out
            else:
                z = F.gelu(_ln_channels_first(blk.conv1(y) * a_out, blk.norm1)) * a_out
                z = _ln_channels_first(blk.conv2(z) * a_out, blk.norm2) * a_out
            r = y if blk.downsample is None else _ln_channels_first(blk.downsample.conv(y) * a_out, blk.downsample.norm) * a_out
            y, a = F.gelu(z + r) * a_out, a_out
        outs[s] = y
    return outs


def _randomise_norms(encoder):
    # Non-trivial GRN/LayerNorm parameters, so the reference check exercises them.
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if ".grn." in name or "norm" in name:
                p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") else 0.0))


@pytest.mark.parametrize("name", ["convnextv2_atto", "resnet18", "resnet50"])
@pytest.mark.parametrize("ratio", [0.5, 0.0])
def test_masked_dense_equals_plain_masked_reference(name, ratio):
    encoder = build_encoder(name).double().eval()
    _randomise_norms(encoder)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    active = patch_active(2, 2, ratio, seed=5)
    reference = _reference_convnext if name.startswith("convnext") else _reference_resnet
    with torch.no_grad():
        ours, ref = encoder(x, active), reference(encoder, x, active)
    for s in STRIDES:
        torch.testing.assert_close(ours[s], ref[s], rtol=1e-10, atol=1e-10)


def test_ragged_masks_and_per_sample_grn_keep_samples_independent():
    # GRN takes its norm per sample, so a sample's features do not depend on its batch mates,
    # also when samples have different numbers of visible patches (index_add path).
    encoder = build_encoder("convnextv2_atto").double().eval()
    _randomise_norms(encoder)
    x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
    active = patch_active(3, 2, 0.5, seed=2)
    active[1] = True  # sample 1 now has more visible patches than the others
    with torch.no_grad():
        batched = encoder(x, active)
        for i in range(3):
            alone = encoder(x[i : i + 1], active[i : i + 1])
            for s in STRIDES:
                torch.testing.assert_close(batched[s][i : i + 1], alone[s], rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        ref = _reference_convnext(encoder, x, active)
    torch.testing.assert_close(batched[32], ref[32], rtol=1e-10, atol=1e-10)


# --- shapes and parameter counts ---------------------------------------------------------------


def _convnext_encoder_params(depths, dims, in_channels=3):
    c0 = dims[0]
    total = in_channels * 16 * c0 + c0 + 2 * c0  # stem conv + LayerNorm
    for i in range(1, 4):
        total += 2 * dims[i - 1] + 4 * dims[i - 1] * dims[i] + dims[i]  # LN + 2x2 conv
    for depth, c in zip(depths, dims):
        # dwconv 49C+C, LN 2C, pwconv1 4C^2+4C, GRN 8C, pwconv2 4C^2+C
        total += depth * (8 * c * c + 65 * c)
    return total + sum(2 * c for c in dims)  # VideoMAC's stage norms norm0..norm3


def _resnet_encoder_params(block, layers):
    total = 3 * 16 * 64 + 64 + 2 * 64
    expansion = 1 if block == "basic" else 4
    cin = 64
    for i, (width, count) in enumerate(zip((64, 128, 256, 512), layers)):
        for j in range(count):
            stride = 2 if (i > 0 and j == 0) else 1
            cout = width * expansion
            if block == "basic":
                total += 9 * cin * width + 2 * width + 9 * width * width + 2 * width
            else:
                total += cin * width + 2 * width + 9 * width * width + 2 * width + width * cout + 2 * cout
            if stride != 1 or cin != cout:
                total += cin * cout + 2 * cout
            cin = cout
    return total


@pytest.mark.parametrize("name", ALL)
def test_parameter_counts_and_channels(name):
    encoder = _frozen_encoder(name)
    count = sum(p.numel() for p in encoder.parameters())
    if name in CONVNEXTV2_VARIANTS:
        depths, dims = CONVNEXTV2_VARIANTS[name]
        assert count == _convnext_encoder_params(depths, dims)
        assert tuple(encoder.out_channels.values()) == dims
    else:
        block, layers = RESNET_VARIANTS[name]
        assert count == _resnet_encoder_params(block, layers)
        assert encoder.out_channels[32] == (512 if block == "basic" else 2048)


@pytest.mark.parametrize(
    "name, published_millions",
    [
        ("convnextv2_atto", 3.7),
        ("convnextv2_femto", 5.2),
        ("convnextv2_pico", 9.1),
        ("convnextv2_nano", 15.6),
        ("convnextv2_tiny", 28.6),
        ("convnextv2_base", 88.7),  # the paper rounds to 89M
    ],
)
def test_convnextv2_classification_counts_match_the_paper(name, published_millions):
    assert round(classification_param_count(_frozen_encoder(name)) / 1e6, 1) == published_millions


def test_encoder_only_differs_from_classifier_by_head_and_stage_norms():
    encoder = _frozen_encoder("convnextv2_atto")
    encoder_count = sum(p.numel() for p in encoder.parameters())
    # classifier = encoder - stage norms (2 * 600) + final LN (2 * 320) + head (320 * 1000 + 1000)
    assert classification_param_count(encoder) == encoder_count - 1200 + 640 + 321000
    assert encoder_count == 3_387_960


def test_dense_use_returns_all_strides_or_a_subset():
    encoder = _frozen_encoder("resnet18")
    with torch.no_grad():
        out = encoder(torch.randn(1, 3, 64, 96), strides=(8,))
    assert list(out) == [8] and out[8].shape == (1, 128, 8, 12)
    with pytest.raises(ValueError):
        encoder(torch.randn(1, 3, 60, 64))


@pytest.mark.parametrize("shape", [(2, 6, 9, 7), (1, 4, 5, 5)])
def test_depthwise_conv_backward_matches_autograd(shape):
    from vmac_core.sparse.masked_dense import DepthwiseConv2d

    b, c, h, w = shape
    conv = torch.nn.Conv2d(c, c, 7, padding=3, groups=c).double()
    x = torch.randn(b, c, h, w, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, wt, bs: DepthwiseConv2d.apply(x, wt, bs), (x, conv.weight, conv.bias))
    y_ref = F.conv2d(x, conv.weight, conv.bias, padding=3, groups=c)
    torch.testing.assert_close(DepthwiseConv2d.apply(x, conv.weight, conv.bias), y_ref)


@pytest.mark.parametrize("name", ["resnet18", "convnextv2_atto"])
def test_stops_after_the_deepest_requested_stride(name):
    """Asking for stride 8 only returns the same map and never runs the deeper stages."""
    torch.manual_seed(0)
    encoder = build_encoder(name).eval()
    x_bchw = torch.randn(1, 3, 64, 64)
    deep_calls = []
    last_stage = encoder.stages[3] if hasattr(encoder, "stages") else encoder.layer4
    last_stage.register_forward_pre_hook(lambda module, args: deep_calls.append(1))
    for block in last_stage:
        block.register_forward_pre_hook(lambda module, args: deep_calls.append(1))
    with torch.no_grad():
        only8 = encoder(x_bchw, strides=(8,))
        assert not deep_calls
        full = encoder(x_bchw)
    assert set(only8) == {8}
    torch.testing.assert_close(only8[8], full[8])
