"""``vmac import-weights``: a published VideoMAC weights file as the ``encoder.pt`` pre-training writes.

Nothing is downloaded: the user brings the file (a training checkpoint or ``tools/convert_pth.py``'s
output). The mapping itself is ``vmac_core.official_weights``; here the file is read, the result
written like ``checkpoints.save_encoder`` writes it (``config``, ``encoder``, ``state_dict``,
``step``), and a lineage record next to it names the source file's sha256.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from storage_schemas.layout import LINEAGE_DIR
from storage_schemas.lineage import Dataset
from tasks.io import lineage
from tasks.io.files import file_sha256, hash_file
from tasks.io.weights import load_weights_only
from tasks.pretrain.checkpoints import save_atomic
from vmac_core.architectures import ENCODER_NAMES
from vmac_core.encoders import build_encoder
from vmac_core.official_weights import (
    MappedWeights,
    WeightsMappingError,
    map_official_weights,
    official_model_config,
    official_state_dict,
)


@dataclass(frozen=True)
class ImportResult:
    out: str
    source_sha256: str
    layout: str
    ddp_prefix: bool
    tensors: int
    dropped: int
    lineage: str


def load_official(path: str) -> dict:
    """The file's top-level dict, unpickled with ``weights_only=True``.

    The official training checkpoints also pickle their ``args`` (an ``argparse.Namespace`` of
    plain values); that one class is allowed by name, nothing else. Raises ValueError with one
    line for a file that is not such a pickle.
    """
    blob = load_weights_only(path, allowed=(argparse.Namespace,))  # WeightsFileError in vmac's words
    if not isinstance(blob, dict):
        raise ValueError(f"{path}: holds a {type(blob).__name__}, not a checkpoint or state dict")
    return blob


def encoder_shapes(encoder: str) -> dict[str, torch.Tensor]:
    """``encoder``'s state dict on the meta device: names and shapes, no memory, no init cost."""
    with torch.device("meta"):
        return build_encoder(encoder).state_dict()


def _fits(state: dict, encoder: str) -> bool:
    try:
        map_official_weights(state, encoder_shapes(encoder))
    except WeightsMappingError:
        return False
    return True


def import_weights(source: str, encoder: str, out: str) -> ImportResult:
    """Map ``source`` onto ``encoder`` and write ``out`` (refusing to replace a file) and its record.

    Raises FileNotFoundError, FileExistsError, or ValueError (``WeightsMappingError`` names the key).
    """
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such file")
    if os.path.exists(out):
        raise FileExistsError(f"{out} exists; choose another --out or remove it")
    sha256, size = hash_file(source)
    blob = load_official(source)
    state, container = official_state_dict(blob)
    try:
        mapped = map_official_weights(state, encoder_shapes(encoder))
    except WeightsMappingError as exc:
        fits = [name for name in ENCODER_NAMES if name != encoder and _fits(state, name)]
        raise WeightsMappingError(f"{exc}" + (f"; the file fits --encoder {' or '.join(fits)}" if fits else "")) from None
    args = vars(blob["args"]) if isinstance(blob.get("args"), argparse.Namespace) else {}
    config = official_model_config(encoder, state, args)
    save_atomic({"config": config.to_dict(), "encoder": encoder, "state_dict": mapped.state_dict, "step": None}, Path(out))
    record = _record(source, sha256, size, out, encoder, mapped, container, blob.get("epoch"), args)
    return ImportResult(os.path.abspath(out), sha256, mapped.layout, mapped.ddp_prefix, len(mapped.state_dict),
                        len(mapped.dropped), record)


def _record(source: str, sha256: str, size: int, out: str, encoder: str, mapped: MappedWeights,
            container: str | None, epoch, args: dict) -> str:
    """Append an ``import-weights`` record to ``<out folder>/lineage``: the source file in, encoder.pt out."""
    facets = {"bytes": size, "layout": mapped.layout, "ddp_prefix": mapped.ddp_prefix, "container": container,
              "epoch": epoch if isinstance(epoch, (int, float, str)) else None}
    inputs = [Dataset(uri=os.path.abspath(source), kind="source", sha256=sha256, facets=facets)]
    outputs = [Dataset(uri=os.path.abspath(out), kind="encoder", sha256=file_sha256(out), facets={"encoder": encoder})]
    official_args = {k: v for k, v in args.items() if isinstance(v, (str, int, float, bool)) or v is None}
    # "out" is the folder written into, as for every job (the lineage tree follows it when it moves).
    parameters = {"source": os.path.abspath(source), "encoder": encoder, "out": str(Path(out).resolve().parent),
                  "file": Path(out).name, "decoder_tensors_left_out": len(mapped.dropped), "official_args": official_args}
    made = lineage.make_record("import-weights", "completed", lineage.run_id(), inputs, outputs, parameters)
    return lineage.write_record(str(Path(out).resolve().parent / LINEAGE_DIR), made)
