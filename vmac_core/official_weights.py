"""The official VideoMAC release's weights mapped onto vmac's encoders: names and layouts, pure.

The official code (NUST-Machine-Intelligence-Laboratory/VideoMAC) saves, per epoch
(``tools/utils.save_model_distill``)::

    {"model_online": VideoMAC.state_dict() under DDP ("module." prefix), "online_without_ddp": the
     same without it, "model_target", "target_without_ddp", "optimizer", "epoch", "scaler", "args"}

and ``tools/convert_pth.py`` turns the online branch into a dense encoder file for downstream use.
Both layouts are read here, with or without the ``module.`` prefix.

**MinkowskiEngine layout** (``models/video_mac.py``, ``convnextv2_sparse.py``,
``resnetv2_sparse.py``, ``utils.py``): encoder keys start with ``encoder.``; sparse convolutions
hold ``kernel`` (K*K, C_in, C_out), or (C_in, C_out) for a 1x1, with ``bias`` (1, C_out); the
depthwise 7x7 holds ``kernel`` (49, C); ``MinkowskiLayerNorm`` nests ``ln.``, ``MinkowskiLinear``
nests ``linear.``; ``MinkowskiGRN`` holds ``gamma``/``beta`` (1, C). The stem (``Conv2d`` 4x4/4 and
a channels-first ``LayerNorm``) is dense in both. ME enumerates kernel offsets with the first
spatial axis (rows) fastest, ``k = col * K + row`` (also ``vmac_core.sparse.minkowski``).

**Dense layout** (``tools/convert_pth.py``): ``encoder.`` dropped, ``kernel`` → ``weight``
(C_out, C_in, K, K), ``ln.``/``linear.`` dropped, biases flat, GRN (1, 1, 1, C): vmac's own names,
except the ResNet shortcut, ``downsample.0``/``downsample.1`` (vmac: ``downsample.conv``/``.norm``).

The decoder (``proj``, ``mask_token``, ``decoder``, ``pred``) is dropped. Any other key that has
no place in the chosen encoder, a shape that does not fit, or an encoder weight the file lacks is
an error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from vmac_core.model_config import ModelConfig

DDP_PREFIX = "module."
ENCODER_PREFIX = "encoder."
DECODER_PARTS = ("proj", "mask_token", "decoder", "pred")  # VideoMAC's top-level decoder modules
# Where a training checkpoint keeps the online branch, preferred first; a bare state dict is used as is.
STATE_DICT_KEYS = ("online_without_ddp", "model_online", "model", "state_dict")
# Official model names (``models/video_mac.py``) → vmac encoder names.
OFFICIAL_MODELS = {"mac_tiny": "convnextv2_tiny", "mac_small": "convnextv2_small", "mac_base": "convnextv2_base",
                   "mac_r18": "resnet18", "mac_r50": "resnet50"}


class WeightsMappingError(ValueError):
    """The source weights do not fit the chosen encoder; the message names the key."""


@dataclass(frozen=True)
class MappedWeights:
    """The encoder's state dict made from the source, and what was found on the way.

    layout: "minkowski" (any ``kernel`` key) or "dense"; ddp_prefix: keys had ``module.``;
    dropped: the decoder keys left out (source names); source_keys: name in vmac → source name.
    """

    state_dict: dict[str, Tensor]
    layout: str
    ddp_prefix: bool
    dropped: list[str] = field(default_factory=list)
    source_keys: dict[str, str] = field(default_factory=dict)


def official_state_dict(blob: Mapping) -> tuple[dict[str, Tensor], str | None]:
    """(state dict, the container key it came from or None) of a loaded official file.

    Raises WeightsMappingError when neither a known container key nor a bare state dict is there.
    """
    for key in STATE_DICT_KEYS:
        if isinstance(blob.get(key), Mapping):
            return dict(blob[key]), key
    if blob and all(isinstance(v, Tensor) for v in blob.values()):
        return dict(blob), None
    raise WeightsMappingError(f"no state dict found: expected one of {list(STATE_DICT_KEYS)} or a bare state dict, "
                              f"found keys {sorted(map(str, blob))[:8]}")


def dense_conv_weight(kernel: Tensor, target_shape: torch.Size, name: str) -> Tensor:
    """An ME ``kernel`` as the Conv2d weight of ``target_shape`` (C_out, C_in/groups, K, K).

    Layouts: (K*K, C_in, C_out) for a convolution, (C_in, C_out) or (1, C_in, C_out) for a 1x1,
    (K*K, C) for a depthwise convolution (``target_shape`` (C, 1, K, K)).
    """
    c_out, c_in, k_rows, k_cols = target_shape
    if k_rows * k_cols == 1:
        flat = kernel[0] if kernel.dim() == 3 and kernel.shape[0] == 1 else kernel
        if flat.shape == (c_in, c_out):
            return flat.t().reshape(c_out, c_in, 1, 1)
    elif kernel.dim() == 3 and kernel.shape == (k_rows * k_cols, c_in, c_out):
        # k = col * K + row: the first axis of the reshape is the column offset.
        return kernel.reshape(k_cols, k_rows, c_in, c_out).permute(3, 2, 1, 0)
    elif kernel.dim() == 2 and c_in == 1 and kernel.shape == (k_rows * k_cols, c_out):
        return kernel.reshape(k_cols, k_rows, c_out, 1).permute(2, 3, 1, 0)
    raise WeightsMappingError(f"shape mismatch: {name} has kernel {tuple(kernel.shape)}, which does not fit "
                              f"a convolution of weight {tuple(target_shape)}")


def vmac_name(source_name: str) -> str:
    """The vmac parameter name of an official encoder parameter (``encoder.`` already removed)."""
    parts = source_name.split(".")
    if parts[-1] == "kernel":
        parts[-1] = "weight"
    parts = [p for p in parts if p not in ("ln", "linear")]
    for i in range(len(parts) - 1):
        if parts[i] == "downsample" and parts[i + 1] in ("0", "1"):
            parts[i + 1] = "conv" if parts[i + 1] == "0" else "norm"
    return ".".join(parts)


def _fit(tensor: Tensor, target: Tensor, source_name: str, name: str) -> Tensor:
    """``tensor`` in ``target``'s shape and dtype: ME kernels reshaped, (1, C) rows flattened."""
    if source_name.endswith(".kernel"):
        tensor = dense_conv_weight(tensor, target.shape, source_name)
    elif tensor.shape != target.shape and tensor.numel() == target.numel() and tensor.dim() <= 4 and (
            tensor.squeeze().shape == target.squeeze().shape):
        tensor = tensor.reshape(target.shape)  # ME biases (1, C) → (C,); GRN (1, C) → (1, 1, 1, C)
    if tensor.shape != target.shape:
        raise WeightsMappingError(f"shape mismatch: {source_name} is {tuple(tensor.shape)}, but {name} needs "
                                  f"{tuple(target.shape)}")
    return tensor.detach().to(dtype=target.dtype).clone()


def map_official_weights(source: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> MappedWeights:
    """Map an official VideoMAC state dict onto an encoder whose ``state_dict()`` is ``target``.

    ``target`` gives names and shapes only (a meta-device encoder's state dict will do).
    Raises WeightsMappingError naming the first unknown key, the first shape mismatch, or the
    encoder weights the source lacks.
    """
    ddp = any(k.startswith(DDP_PREFIX) for k in source)
    mapped: dict[str, Tensor] = {}
    source_keys: dict[str, str] = {}
    dropped: list[str] = []
    for key, tensor in source.items():
        bare = key.removeprefix(DDP_PREFIX)
        if bare.split(".", 1)[0] in DECODER_PARTS:
            dropped.append(key)
            continue
        name = vmac_name(bare.removeprefix(ENCODER_PREFIX))
        if name not in target:
            raise WeightsMappingError(f"unknown key {key!r}: the encoder has no parameter {name!r}")
        if name in source_keys:
            raise WeightsMappingError(f"{key!r} and {source_keys[name]!r} both map to {name!r}")
        mapped[name] = _fit(tensor, target[name], key, name)
        source_keys[name] = key
    missing = [name for name in target if name not in mapped]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise WeightsMappingError(f"the source lacks {len(missing)} encoder weights: {', '.join(missing[:5])}{more}")
    layout = "minkowski" if any(k.endswith(".kernel") for k in source) else "dense"
    return MappedWeights(mapped, layout, ddp, dropped, source_keys)


def official_model_config(encoder: str, source: Mapping[str, Tensor], args: Mapping) -> ModelConfig:
    """The ModelConfig an imported encoder.pt embeds: the paper's defaults, with what the file says.

    From the training run's ``args`` (when the checkpoint kept them): ``input_size``,
    ``mask_ratio``, ``norm_pix_loss``; from the decoder's weights: its width (``proj`` (D, C, 1, 1))
    and depth (``decoder.<i>`` blocks).
    """
    values: dict = {"encoder": encoder}
    for name in ("input_size", "mask_ratio", "norm_pix_loss"):
        if isinstance(args.get(name), (int, float, bool)):
            values[name] = args[name]
    bare = {k.removeprefix(DDP_PREFIX): v for k, v in source.items()}
    if "proj.weight" in bare:
        values["decoder_dim"] = int(bare["proj.weight"].shape[0])
    blocks = {k.split(".")[1] for k in bare if k.startswith("decoder.") and k.split(".")[1].isdigit()}
    if blocks:
        values["decoder_depth"] = len(blocks)
    return ModelConfig(**values)
