"""State dicts in the official VideoMAC key layout, and the official network computed from them.

Names and shapes come from the official modules (NUST-Machine-Intelligence-Laboratory/VideoMAC,
commit baf6f67): ``models/video_mac.py`` (``VideoMAC``: ``encoder``, ``proj``, ``mask_token``,
``decoder`` = ``Decoder_Block``s, ``pred``), ``models/convnextv2_sparse.py``
(``SparseConvNeXtV2``), ``models/resnetv2_sparse.py`` (``SparseResNet``), ``models/utils.py``
(``MinkowskiLayerNorm`` wraps ``ln``, ``MinkowskiGRN`` gamma/beta (1, C), ``LayerNorm``), and
MinkowskiEngine 0.5.4's parameter shapes (``MinkowskiConvolution.kernel`` (K*K, C_in, C_out), or
(C_in, C_out) when K*K = 1, ``bias`` (1, C_out); ``MinkowskiDepthwiseConvolution.kernel`` (K*K, C);
``MinkowskiLinear`` wraps ``linear``)::

    encoder.downsample_layers.0.0.{weight (C0, 3, 4, 4), bias}      stem Conv2d (dense)
    encoder.downsample_layers.0.1.{weight, bias} (C0,)              LayerNorm, channels_first
    encoder.downsample_layers.{1,2,3}.0.ln.{weight, bias}           MinkowskiLayerNorm
    encoder.downsample_layers.{1,2,3}.1.kernel (4, C_i-1, C_i), .bias (1, C_i)    2x2/2 MinkowskiConvolution
    encoder.stages.S.B.dwconv.kernel (49, C), .bias (1, C)          MinkowskiDepthwiseConvolution 7x7
    encoder.stages.S.B.norm.ln.{weight, bias}
    encoder.stages.S.B.pwconv1.linear.{weight (4C, C), bias}, .grn.{gamma, beta} (1, 4C),
    encoder.stages.S.B.pwconv2.linear.{weight (C, 4C), bias}
    encoder.norm{0..3}.ln.{weight, bias}

    encoder.stem.{0: Conv2d (64, 3, 4, 4) + bias, 1: LayerNorm (64,)}
    encoder.layerL.B.conv{1,2,3}.kernel  (9, C_in, C_out) for 3x3, (C_in, C_out) for 1x1; no bias
    encoder.layerL.B.norm{1,2,3}.ln.{weight, bias}
    encoder.layerL.B.downsample.0.kernel (C_in, C_out), .downsample.1.ln.{weight, bias}

    proj.{weight (D, C_last, 1, 1), bias}, mask_token (1, D, 1, 1), decoder.0.{dwconv, norm, pwconv1,
    grn (1, 1, 1, 4D), pwconv2}.*, pred.{weight (32*32*3, D, 1, 1), bias}

``official_features`` runs that network on a batch from those tensors, by the definitions: an ME
convolution sums, for each kernel offset k = col * K + row (rows, ME's first axis, fastest; odd
kernels centred, even ones from 0), the input at that offset times ``kernel[k]``; sites outside
the grid are absent (zero). Each sample runs alone, so ``MinkowskiGRN``'s norm over the batch's
active sites is that sample's, as in the official dense GRN the downstream code uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vmac_core.architectures import CONVNEXTV2_VARIANTS, RESNET_VARIANTS

E = "encoder."


def _ln(prefix: str, dim: int, me: bool = True) -> dict[str, tuple]:
    ln = f"{prefix}.ln" if me else prefix
    return {f"{ln}.weight": (dim,), f"{ln}.bias": (dim,)}


def decoder_shapes(last: int, dim: int = 512, patch: int = 32) -> dict[str, tuple]:
    d = "decoder.0."
    return {"proj.weight": (dim, last, 1, 1), "proj.bias": (dim,), "mask_token": (1, dim, 1, 1),
            f"{d}dwconv.weight": (dim, 1, 7, 7), f"{d}dwconv.bias": (dim,), f"{d}norm.weight": (dim,),
            f"{d}norm.bias": (dim,), f"{d}pwconv1.weight": (4 * dim, dim), f"{d}pwconv1.bias": (4 * dim,),
            f"{d}grn.gamma": (1, 1, 1, 4 * dim), f"{d}grn.beta": (1, 1, 1, 4 * dim),
            f"{d}pwconv2.weight": (dim, 4 * dim), f"{d}pwconv2.bias": (dim,),
            "pred.weight": (patch * patch * 3, dim, 1, 1), "pred.bias": (patch * patch * 3,)}


def convnextv2_shapes(name: str) -> dict[str, tuple]:
    depths, dims = CONVNEXTV2_VARIANTS[name]
    s = {f"{E}downsample_layers.0.0.weight": (dims[0], 3, 4, 4), f"{E}downsample_layers.0.0.bias": (dims[0],),
         **_ln(f"{E}downsample_layers.0.1", dims[0], me=False)}
    for i in range(1, 4):
        s |= _ln(f"{E}downsample_layers.{i}.0", dims[i - 1])
        s |= {f"{E}downsample_layers.{i}.1.kernel": (4, dims[i - 1], dims[i]), f"{E}downsample_layers.{i}.1.bias": (1, dims[i])}
    for stage, (depth, d) in enumerate(zip(depths, dims)):
        for b in range(depth):
            p = f"{E}stages.{stage}.{b}."
            s |= {f"{p}dwconv.kernel": (49, d), f"{p}dwconv.bias": (1, d), **_ln(f"{p}norm", d),
                  f"{p}pwconv1.linear.weight": (4 * d, d), f"{p}pwconv1.linear.bias": (4 * d,),
                  f"{p}grn.gamma": (1, 4 * d), f"{p}grn.beta": (1, 4 * d),
                  f"{p}pwconv2.linear.weight": (d, 4 * d), f"{p}pwconv2.linear.bias": (d,)}
    for i, d in enumerate(dims):
        s |= _ln(f"{E}norm{i}", d)
    return s | decoder_shapes(dims[-1])


def resnet_blocks(name: str):
    """(layer, block, kind, C_in, width, stride, has_shortcut) as SparseResNet._make_layer builds them."""
    kind, layers = RESNET_VARIANTS[name]
    expansion = 4 if kind == "bottleneck" else 1
    channels = 64
    for layer, (width, count) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for b in range(count):
            stride = 2 if layer > 1 and b == 0 else 1
            shortcut = b == 0 and (stride != 1 or channels != width * expansion)
            yield layer, b, kind, channels, width, stride, shortcut
            channels = width * expansion


def resnet_shapes(name: str) -> dict[str, tuple]:
    s = {f"{E}stem.0.weight": (64, 3, 4, 4), f"{E}stem.0.bias": (64,), **_ln(f"{E}stem.1", 64, me=False)}
    last = 0
    for layer, b, kind, c_in, width, _, shortcut in resnet_blocks(name):
        p = f"{E}layer{layer}.{b}."
        if kind == "basic":
            s |= {f"{p}conv1.kernel": (9, c_in, width), f"{p}conv2.kernel": (9, width, width)}
            s |= _ln(f"{p}norm1", width) | _ln(f"{p}norm2", width)
            last = width
        else:
            s |= {f"{p}conv1.kernel": (c_in, width), f"{p}conv2.kernel": (9, width, width),
                  f"{p}conv3.kernel": (width, 4 * width)}
            s |= _ln(f"{p}norm1", width) | _ln(f"{p}norm2", width) | _ln(f"{p}norm3", 4 * width)
            last = 4 * width
        if shortcut:
            s |= {f"{p}downsample.0.kernel": (c_in, last)} | _ln(f"{p}downsample.1", last)
    return s | decoder_shapes(last)


def official_shapes(name: str) -> dict[str, tuple]:
    return resnet_shapes(name) if name in RESNET_VARIANTS else convnextv2_shapes(name)


def random_official(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded values in the official layout: weights scaled by fan-in, norms near (1, 0), GRN non-zero,
    so a wrongly mapped tensor of any kind changes the features."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in official_shapes(name).items():
        noise = torch.randn(shape, generator=g)
        if key.endswith("kernel"):
            fan_in = shape[0] * shape[1] if len(shape) == 3 else shape[0]  # (K*K, C_in, C_out); (C_in, C_out), (K*K, C)
            out[key] = noise / fan_in ** 0.5
        elif key.endswith(".weight") and len(shape) > 1:
            out[key] = noise / (shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)) ** 0.5
        elif key.endswith(".weight"):
            out[key] = 1 + 0.2 * noise  # norm scales
        else:
            out[key] = 0.2 * noise  # biases, GRN gamma and beta, the mask token
    return out


# --- the official network, computed from the tensors ---------------------------------------------


def me_conv(x_bchw, kernel, bias, k: int, stride: int, depthwise: bool = False):
    """An ME convolution over a fully active grid, by definition (see the module docstring)."""
    if kernel.dim() == 2 and not depthwise:
        kernel = kernel[None]  # a 1x1 kernel is stored (C_in, C_out)
    pad = k // 2 if k % 2 else 0
    padded = F.pad(x_bchw, (pad, pad, pad, pad))
    rows, cols = x_bchw.shape[2] // stride, x_bchw.shape[3] // stride
    out = 0
    for index in range(k * k):
        col, row = divmod(index, k)
        patch = padded[:, :, row:row + stride * rows:stride, col:col + stride * cols:stride]
        if depthwise:
            out = out + patch * kernel[index].view(1, -1, 1, 1)
        else:
            out = out + torch.einsum("bihw,io->bohw", patch, kernel[index])
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def layer_norm(x_bchw, state, prefix):
    """MinkowskiLayerNorm (``prefix.ln``) or the channels-first LayerNorm (``prefix``), per site."""
    key = f"{prefix}.ln" if f"{prefix}.ln.weight" in state else prefix
    c = x_bchw.shape[1]
    y = F.layer_norm(x_bchw.permute(0, 2, 3, 1), (c,), state[f"{key}.weight"], state[f"{key}.bias"], 1e-6)
    return y.permute(0, 3, 1, 2)


def linear(x_bchw, state, prefix):
    y = F.linear(x_bchw.permute(0, 2, 3, 1), state[f"{prefix}.linear.weight"], state[f"{prefix}.linear.bias"])
    return y.permute(0, 3, 1, 2)


def grn(x_bchw, state, prefix):
    """MinkowskiGRN on one sample's active sites: Gx per channel over every site."""
    gx = x_bchw.flatten(2).norm(dim=2)  # (1, C)
    nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
    gamma, beta = state[f"{prefix}.gamma"].reshape(1, -1, 1, 1), state[f"{prefix}.beta"].reshape(1, -1, 1, 1)
    return gamma * (x_bchw * nx[:, :, None, None]) + beta + x_bchw


def _convnext(img, state, name):
    depths, _ = CONVNEXTV2_VARIANTS[name]
    x = F.conv2d(img, state[f"{E}downsample_layers.0.0.weight"], state[f"{E}downsample_layers.0.0.bias"], stride=4)
    x = layer_norm(x, state, f"{E}downsample_layers.0.1")
    features = {}
    for i, stride in enumerate((4, 8, 16, 32)):
        if i > 0:
            d = f"{E}downsample_layers.{i}"
            x = me_conv(layer_norm(x, state, f"{d}.0"), state[f"{d}.1.kernel"], state[f"{d}.1.bias"], 2, 2)
        for b in range(depths[i]):
            p = f"{E}stages.{i}.{b}"
            y = me_conv(x, state[f"{p}.dwconv.kernel"], state[f"{p}.dwconv.bias"], 7, 1, depthwise=True)
            y = F.gelu(linear(layer_norm(y, state, f"{p}.norm"), state, f"{p}.pwconv1"))
            x = x + linear(grn(y, state, f"{p}.grn"), state, f"{p}.pwconv2")
        x = layer_norm(x, state, f"{E}norm{i}")
        features[stride] = x
    return features


def _resnet(img, state, name):
    x = layer_norm(F.conv2d(img, state[f"{E}stem.0.weight"], state[f"{E}stem.0.bias"], stride=4), state, f"{E}stem.1")
    features = {}
    for layer, b, kind, _, _, stride, shortcut in resnet_blocks(name):
        p = f"{E}layer{layer}.{b}"
        if kind == "basic":
            out = F.gelu(layer_norm(me_conv(x, state[f"{p}.conv1.kernel"], None, 3, stride), state, f"{p}.norm1"))
            out = layer_norm(me_conv(out, state[f"{p}.conv2.kernel"], None, 3, 1), state, f"{p}.norm2")
        else:
            out = F.gelu(layer_norm(me_conv(x, state[f"{p}.conv1.kernel"], None, 1, 1), state, f"{p}.norm1"))
            out = F.gelu(layer_norm(me_conv(out, state[f"{p}.conv2.kernel"], None, 3, stride), state, f"{p}.norm2"))
            out = layer_norm(me_conv(out, state[f"{p}.conv3.kernel"], None, 1, 1), state, f"{p}.norm3")
        if shortcut:
            x = layer_norm(me_conv(x, state[f"{p}.downsample.0.kernel"], None, 1, stride), state, f"{p}.downsample.1")
        x = F.gelu(out + x)
        if b == RESNET_VARIANTS[name][1][layer - 1] - 1:
            features[4 * 2 ** (layer - 1)] = x
    return features


@torch.no_grad()
def official_features(state: dict[str, torch.Tensor], name: str, images_bchw: torch.Tensor) -> dict[int, torch.Tensor]:
    """{stride: (B, C, H/s, W/s)} of the official encoder holding ``state`` (ME layout, no prefix)."""
    run = _resnet if name in RESNET_VARIANTS else _convnext
    per_sample = [run(img[None], state, name) for img in images_bchw]
    return {s: torch.cat([f[s] for f in per_sample]) for s in per_sample[0]}


def convert_pth(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dense layout, as the official ``tools/convert_pth.py`` writes it (``remap_checkpoint_keys``,
    and ``remap_checkpoint_keys_r50``'s handling of 2-D kernels, which in a ResNet are 1x1
    convolutions): decoder dropped, ``encoder.`` dropped, kernels to (C_out, C_in, K, K), ``ln``
    and ``linear`` dropped from names, biases flattened, GRN (1, 1, 1, C)."""
    out = {}
    resnet = any(".layer1." in k for k in state)
    for key, value in state.items():
        if any(part in key for part in ("decoder", "mask_token", "proj", "pred")):
            continue
        key = key.removeprefix(E)
        if key.endswith("kernel"):
            key = key.removesuffix(".kernel") + ".weight"
            if value.dim() == 2 and resnet:
                value = value.unsqueeze(0)
            if value.dim() == 3:
                kv, c_in, c_out = value.shape
                ks = int(kv ** 0.5)
                value = value.permute(2, 1, 0).reshape(c_out, c_in, ks, ks).transpose(3, 2)
            else:
                kv, dim = value.shape
                ks = int(kv ** 0.5)
                value = value.permute(1, 0).reshape(dim, 1, ks, ks).transpose(3, 2)
        elif ".ln." in key or ".linear." in key:
            parts = key.split(".")
            parts.pop(-2)
            key = ".".join(parts)
        out[key] = value
    for key, value in out.items():
        if key.endswith("bias") and value.dim() != 1:
            out[key] = value.reshape(-1)
        elif "grn" in key:
            out[key] = value.unsqueeze(0).unsqueeze(1)
    return out
