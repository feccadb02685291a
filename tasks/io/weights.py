"""Load a checkpoint or encoder file with torch's weights-only unpickler, in vmac's words.

The weights-only unpickler refuses any object other than tensors and plain containers, so a
planted file cannot run code when vmac loads it. torch's own refusal suggests turning that
protection off; vmac never does, and says instead what the file holds and that it will not load it.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

# How torch names what it refused: "GLOBAL posix.system" (versions differ in the words around it).
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


class WeightsFileError(ValueError):
    """A file that is not a checkpoint vmac will load; the message names the file and why."""


def load_weights_only(path: str | Path, allowed: tuple[type, ...] = ()) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; ``allowed``: classes of plain values the
    unpickler may also build (the official checkpoints' ``argparse.Namespace``).

    Raises WeightsFileError for a file that holds objects other than tensors and plain
    containers (refused, never loaded), and for one that is not a readable torch file
    (truncated, damaged, another format); its message never repeats torch's advice to load
    with ``weights_only=False``. A missing or unreadable file raises its OSError.
    """
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # no class refused: bytes that are no pickle torch can read
            raise WeightsFileError(f"{path}: not a readable torch checkpoint (truncated, damaged or another "
                                   "format)") from None
        found = _GLOBAL.search(str(exc))
        what = f" (it references {found[1]})" if found else ""
        raise WeightsFileError(
            f"{path}: holds objects other than tensors{what}; vmac loads only weights and will not load this file"
        ) from None
    except OSError:
        raise
    except Exception:  # noqa: BLE001 - torch reports a damaged or foreign file with several classes
        raise WeightsFileError(f"{path}: not a readable torch checkpoint (truncated, damaged or another format)") from None
