"""masked_dense and minkowski agree: same weights, same outputs and gradients (float64).

Skipped unless MinkowskiEngine 0.5.4 is importable (build it with `make minkowski`).
"""

import collections
import collections.abc

import pytest
import torch

from tests.vmac_core.conftest import patch_active

# ME 0.5.4 imports collections.Sequence (gone since Python 3.10); vmac_core patches it the same way.
collections.Sequence = collections.abc.Sequence
ME = pytest.importorskip("MinkowskiEngine")

from vmac_core.encoders import build_encoder  # noqa: E402
from vmac_core.masking import random_patch_mask  # noqa: E402
from vmac_core.model_config import ModelConfig  # noqa: E402
from vmac_core.sparse.minkowski import MinkowskiGrid, _me_kernel  # noqa: E402
from vmac_core.videomac import VideoMAC  # noqa: E402

pytestmark = pytest.mark.minkowski


def _pair(name):
    dense = build_encoder(name).double()
    with torch.no_grad():  # non-trivial norm/GRN/bias parameters
        for n, p in dense.named_parameters():
            if p.ndim == 1 or ".grn." in n:
                p.add_(0.3 * torch.randn_like(p))
    sparse = build_encoder(name, backend="minkowski").double()
    sparse.load_state_dict(dense.state_dict())
    return dense, sparse


@pytest.mark.parametrize("name", ["convnextv2_atto", "resnet18", "resnet50"])
def test_backends_agree_on_outputs_and_gradients(name):
    masked_dense, minkowski = _pair(name)
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    active = patch_active(2, 3, 0.5, seed=4)[:, :, :2, :]  # 2x3 patch grid
    active[1] = ~active[0]  # ragged and different per sample
    outs = []
    for model in (masked_dense, minkowski):
        out = model(x, active)
        sum((f * torch.linspace(0, 1, f.numel(), dtype=f.dtype).view_as(f)).sum() for f in out.values()).backward()
        outs.append(out)
    for s in (4, 8, 16, 32):
        torch.testing.assert_close(outs[1][s], outs[0][s], rtol=1e-10, atol=1e-12)
    for (n, p), q in zip(masked_dense.named_parameters(), minkowski.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-9, atol=1e-10, msg=n)


def test_kernel_layout_matches_minkowski_modules():
    # Our functional use of ME (kernel reshaped from Conv2d) equals ME's own convolution module.
    active = patch_active(2, 2, 0.5, seed=0)
    grid = MinkowskiGrid.build(active, 2, 8, 8)
    feat = torch.randn(grid.num_rows, 5, dtype=torch.float64)
    for k, stride in ((3, 1), (3, 2), (2, 2), (1, 2)):
        conv = torch.nn.Conv2d(5, 6, k, stride, padding=k // 2 if k % 2 else 0, bias=False).double()
        ours, _ = grid.conv(feat, conv)
        module = ME.MinkowskiConvolution(5, 6, kernel_size=k, stride=stride, dimension=2).double()
        with torch.no_grad():
            module.kernel.copy_(_me_kernel(conv).reshape(module.kernel.shape))
        st = ME.SparseTensor(feat, coordinate_map_key=grid.key, coordinate_manager=grid.manager)
        torch.testing.assert_close(ours, module(st).F, rtol=1e-12, atol=1e-12)
    dw = torch.nn.Conv2d(5, 5, 7, padding=3, groups=5, bias=False).double()
    ours, _ = grid.conv(feat, dw)
    module = ME.MinkowskiChannelwiseConvolution(5, kernel_size=7, dimension=2).double()
    with torch.no_grad():
        module.kernel.copy_(_me_kernel(dw))
    st = ME.SparseTensor(feat, coordinate_map_key=grid.key, coordinate_manager=grid.manager)
    torch.testing.assert_close(ours, module(st).F, rtol=1e-12, atol=1e-12)


def test_border_row_masked_in_every_sample_keeps_the_dense_shape():
    _, minkowski = _pair("convnextv2_atto")
    active = torch.ones(2, 1, 2, 2, dtype=torch.bool)
    active[:, :, 1, :] = False  # bottom patch row masked everywhere
    out = minkowski(torch.randn(2, 3, 64, 64, dtype=torch.float64), active)
    assert out[4].shape == (2, 40, 16, 16) and not out[4][:, :, 8:].any()


def test_videomac_losses_agree_across_backends():
    torch.manual_seed(0)
    cfg = ModelConfig(encoder="convnextv2_atto", input_size=64, decoder_dim=32)
    a = VideoMAC(cfg).double()
    b = VideoMAC(ModelConfig.from_dict({**cfg.to_dict(), "backend": "minkowski"})).double()
    b.load_state_dict(a.state_dict())
    g = torch.Generator().manual_seed(1)
    f1, f2 = torch.randn(2, 3, 64, 64, generator=g, dtype=torch.float64), torch.randn(2, 3, 64, 64, generator=g, dtype=torch.float64)
    mask_bl = random_patch_mask(2, 2, 2, 0.5, g)
    oa, ob = a(f1, f2, mask_bl), b(f1, f2, mask_bl)
    for field in ("loss", "loss_online", "loss_target", "loss_consistency"):
        torch.testing.assert_close(getattr(ob, field), getattr(oa, field), rtol=1e-10, atol=1e-12)
