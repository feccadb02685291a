"""Names that come from data, and the paths vmac writes: cleaned, refused or checked in one place.

A store, a frame folder or a benchmark list from elsewhere is not trusted (docs/security.md,
"Paths"): a frame name, a sequence name, a video id or an encoder name read from it becomes a file
or folder name only as ``clean_name`` leaves it (``[A-Za-z0-9._-]``, no leading dot, so never
``..``, ``/`` or an absolute path); and every file written below a folder the user named goes
through ``inside``, which refuses a path that leaves that folder, through ``..`` or through a
symbolic link on the way (a store whose ``validation/`` links to another user's folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutsideError(ValueError):
    """A path vmac was about to write that would leave the folder the user named."""


def clean_name(text: str, fallback: str) -> str:
    """``text`` with every run of other characters than ``[A-Za-z0-9._-]`` replaced by ``_`` and the
    ends trimmed of ``._-``; ``fallback`` when nothing is left. Never ``.``, ``..``, nor a path."""
    return _UNSAFE.sub("_", text).strip("._-") or fallback


def is_clean_name(name: str) -> bool:
    """True when ``name`` can be a file or folder name as it is (``clean_name`` would keep it)."""
    return bool(name) and not _UNSAFE.search(name) and not name.startswith(".")


def inside(root: str | Path, *parts: str) -> Path:
    """``root/parts…``, checked to stay inside ``root``: each part is one name (no separator, not
    ``.`` or ``..``), and no folder or file on the way below ``root`` is a symbolic link. Raises
    OutsideError naming the path and why."""
    root = Path(os.path.abspath(root))
    path = root
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\0" in part or (os.sep != "/" and os.sep in part):
            raise OutsideError(f"refusing to write {os.path.join(root, *parts)}: {part!r} is not a plain file name, "
                               f"and the path would leave {root}")
        path = path / part
        if path.is_symlink():
            raise OutsideError(f"refusing to write through {path}: a symbolic link inside {root} (to "
                               f"{os.readlink(path)}); vmac writes only inside the folder named")
    return path
