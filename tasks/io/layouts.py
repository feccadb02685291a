"""Frame-folder dataset layouts: detection, and reading frames, label masks and keypoints.

Recognised layouts (each sequence becomes one frame-folder video):
- DAVIS-2016/2017: ``JPEGImages/480p/<seq>/*.jpg``, ``Annotations/480p/<seq>/*.png``, split lists in
  ``ImageSets/2017/*.txt`` (one name a line) or ``ImageSets/480p/*.txt`` (DAVIS-2016 path pairs).
- VIP: ``Images/<video>/*.jpg`` with ``Annotations/Category_ids/<video>/*.png``.
- JHMDB: ``Rename_Images/<action>/<video>/*.png`` with ``joint_positions/<action>/<video>/joint_positions.mat``;
  also a plain frame folder holding its own ``joint_positions.mat``.
- A plain folder of two or more image files (``frame_folder``; the source walk decides).

Label masks are uint8 ids: palette PNGs give their indices (DAVIS object ids, VIP classes),
greyscale 0/255 masks become 0/1, greyscale+alpha uses the grey channel. ``NOT_ANNOTATED`` (255)
marks frames that have no annotation file.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from storage_schemas.layout import NOT_ANNOTATED
from storage_schemas.records import SourceKind
from tasks.io.faults import reason_of
from tasks.io.items import SourceItem, is_image, video_id_for
from tasks.io.uris import open_uri

DAVIS_RESOLUTIONS = ("480p", "Full-Resolution", "1080p")
JHMDB_MAT = "joint_positions.mat"


class LayoutError(ValueError):
    """A frame folder whose files cannot make one video (unreadable images, mixed sizes, labels
    that do not fit): the input's own fault; the message is the one-line reason stored in the catalog."""


def detect(fs, root: str, top: str, to_uri: Callable[[str], str]) -> list[SourceItem] | None:
    """Items for ``root`` if it is a dataset layout (DAVIS, VIP, JHMDB), else None (keep walking)."""
    names = {os.path.basename(p.rstrip("/")): p for p in fs.ls(root, detail=False)}
    if "JPEGImages" in names and fs.isdir(names["JPEGImages"]):
        return _davis(fs, root, to_uri)
    if "Images" in names and fs.isdir(names["Images"]):
        return _vip(fs, root, to_uri)
    if "Rename_Images" in names and fs.isdir(names["Rename_Images"]):
        return _jhmdb(fs, root, to_uri)
    return None


def frame_folder(fs, root: str, top: str, to_uri: Callable[[str], str], images: list[str]) -> SourceItem:
    """The frame-folder video of ``root``'s image files (``images``), in natural name order, with
    the JHMDB keypoints file it holds, if any."""
    rel = os.path.relpath(root, os.path.dirname(top.rstrip("/")))
    keypoints = f"{root.rstrip('/')}/{JHMDB_MAT}"
    keypoints = keypoints if fs.exists(keypoints) else None
    return _frames_item(to_uri(root), rel, "jhmdb" if keypoints else "folder",
                        [to_uri(p) for p in sorted(images, key=natural_key)], [],
                        to_uri(keypoints) if keypoints else None, None)


def _frames_item(uri, name, layout, frames, masks, keypoints, split) -> SourceItem:
    return SourceItem(
        uri=uri,
        video_id=video_id_for(f"{layout}/{name}" if layout != "folder" else name, uri),
        kind=SourceKind.frames,
        layout=layout,
        frame_uris=tuple(frames),
        mask_uris=tuple(masks),
        keypoints_uri=keypoints,
        split=split,
    )


def natural_key(path: str) -> tuple:
    """Sort key of a file name in natural order: ``2.png`` before ``10.png`` (numbers compare as
    numbers), so unpadded frame names keep their time order."""
    parts = re.split(r"(\d+)", os.path.basename(path.rstrip("/")))
    return tuple((0, int(part), part) if part.isdigit() else (1, part.lower(), part) for part in parts if part)


def _images_in(fs, folder: str) -> list[str]:
    if not fs.isdir(folder):
        return []
    return sorted((p for p in fs.ls(folder, detail=False) if is_image(p) and not os.path.basename(p).startswith(".")),
                  key=natural_key)


def _match_masks(frames: list[str], mask_files: list[str]) -> list[str | None]:
    """The annotation file for each frame by file stem, or None where a frame has none."""
    by_stem = {os.path.splitext(os.path.basename(m))[0]: m for m in mask_files}
    return [by_stem.get(os.path.splitext(os.path.basename(f))[0]) for f in frames]


def _davis(fs, root: str, to_uri) -> list[SourceItem]:
    res = next((r for r in DAVIS_RESOLUTIONS if fs.isdir(f"{root}/JPEGImages/{r}")), None)
    seq_root = f"{root}/JPEGImages/{res}" if res else f"{root}/JPEGImages"
    splits = _davis_splits(fs, root)
    out = []
    for seq_dir in sorted(p for p in fs.ls(seq_root, detail=False) if fs.isdir(p)):
        seq = os.path.basename(seq_dir.rstrip("/"))
        frames = _images_in(fs, seq_dir)
        if not frames:
            continue
        ann_dir = f"{root}/Annotations/{res}/{seq}" if res else f"{root}/Annotations/{seq}"
        masks = _match_masks(frames, _images_in(fs, ann_dir))
        out.append(
            _frames_item(
                to_uri(seq_dir), seq, "davis",
                [to_uri(f) for f in frames], [to_uri(m) if m else None for m in masks], None, splits.get(seq),
            )
        )
    return out


def _davis_splits(fs, root: str) -> dict[str, str]:
    """Sequence → split name from ImageSets (2017: names; 2016: '/JPEGImages/480p/seq/00000.jpg ...')."""
    splits: dict[str, str] = {}
    for sub in ("2017", "2016", "480p"):
        folder = f"{root}/ImageSets/{sub}"
        if not fs.isdir(folder):
            continue
        for path in sorted(fs.ls(folder, detail=False)):
            if not path.endswith(".txt"):
                continue
            split = os.path.splitext(os.path.basename(path))[0]
            for line in fs.cat_file(path).decode("utf-8", "replace").splitlines():
                line = line.strip()
                if not line:
                    continue
                seq = line.split()[0].strip("/").split("/")[2] if line.startswith("/JPEGImages") else line
                splits.setdefault(seq, split)
    return splits


def _vip(fs, root: str, to_uri) -> list[SourceItem]:
    out = []
    for video_dir in sorted(p for p in fs.ls(f"{root}/Images", detail=False) if fs.isdir(p)):
        video = os.path.basename(video_dir.rstrip("/"))
        frames = _images_in(fs, video_dir)
        if not frames:
            continue
        masks = _match_masks(frames, _images_in(fs, f"{root}/Annotations/Category_ids/{video}"))
        out.append(
            _frames_item(to_uri(video_dir), video, "vip", [to_uri(f) for f in frames],
                         [to_uri(m) if m else None for m in masks], None, None)
        )
    return out


def _jhmdb(fs, root: str, to_uri) -> list[SourceItem]:
    out = []
    for action_dir in sorted(p for p in fs.ls(f"{root}/Rename_Images", detail=False) if fs.isdir(p)):
        action = os.path.basename(action_dir.rstrip("/"))
        for video_dir in sorted(p for p in fs.ls(action_dir, detail=False) if fs.isdir(p)):
            video = os.path.basename(video_dir.rstrip("/"))
            frames = _images_in(fs, video_dir)
            if not frames:
                continue
            mat = f"{root}/joint_positions/{action}/{video}/{JHMDB_MAT}"
            keypoints = to_uri(mat) if fs.exists(mat) else None
            out.append(
                _frames_item(to_uri(video_dir), f"{action}/{video}", "jhmdb",
                             [to_uri(f) for f in frames], [], keypoints, None)
            )
    return out


# --- reading -------------------------------------------------------------------------------


def _open_image(uri: str) -> Image.Image:
    """The decoded image; LayoutError when its bytes are not an image PIL can read.

    An OSError with an errno (permission denied, an I/O error) is the machine's and propagates.
    """
    with open_uri(uri) as handle:
        data = handle.read()
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        raise LayoutError(f"{os.path.basename(uri)} is not an image (no image format recognises its bytes)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports damaged data ("image file is truncated") as OSErrors without an errno;
        # some broken PNGs raise SyntaxError.
        raise LayoutError(f"{os.path.basename(uri)} is not a readable image ({reason_of(exc)})") from None
    return image


def first_frame_size(item: SourceItem) -> tuple[int, int]:
    """(width, height) of the first frame file."""
    return _open_image(item.frame_uris[0]).size


def frame_names(item: SourceItem) -> list[str]:
    """Each frame file's name, in stored order."""
    return [os.path.basename(uri) for uri in item.frame_uris]


def read_frames(item: SourceItem, width: int, height: int, chunk_frames: int) -> Iterator[np.ndarray]:
    """RGB uint8 chunks (t, H, W, 3) of a frame folder, resized bicubically to (width, height).

    Raises LayoutError when a frame's size differs from the first frame's: a sequence has one size,
    and resizing one odd frame silently would store something the folder does not show.
    """
    first = None
    buf: list[np.ndarray] = []
    for uri in item.frame_uris:
        image = _open_image(uri).convert("RGB")
        first = first or (image.size, uri)
        if image.size != first[0]:
            raise LayoutError(f"frame {os.path.basename(uri)} is {_size(image.size)}, the first frame "
                             f"{os.path.basename(first[1])} is {_size(first[0])}")
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        buf.append(np.asarray(image))
        if len(buf) == chunk_frames:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}×{size[1]}"


def label_array(image: Image.Image) -> np.ndarray:
    """Ids (H, W) uint8 from an annotation PNG (palette, greyscale 0/255, grey+alpha or bilevel)."""
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8)
    if image.mode in ("L", "LA", "1", "I", "I;16"):
        grey = np.asarray(image.getchannel(0) if image.mode == "LA" else image).astype(np.int64)
        if image.mode == "1":
            return grey.astype(np.uint8)
        values = np.unique(grey)
        if set(values.tolist()) <= {0, 255}:
            return (grey > 0).astype(np.uint8)
        if values.max() >= NOT_ANNOTATED:
            raise LayoutError(f"label ids must be below {NOT_ANNOTATED}, found {values.max()}")
        return grey.astype(np.uint8)
    raise LayoutError(f"unsupported annotation image mode {image.mode!r}")


def read_masks(item: SourceItem, source_size: tuple[int, int], width: int, height: int,
               chunk_frames: int) -> Iterator[np.ndarray]:
    """Id masks (t, H, W) uint8, nearest-resized as the frames are; frames without an annotation
    file are NOT_ANNOTATED.

    Raises LayoutError when an annotation's size differs from its frame's (``source_size``, width ×
    height): labels that do not cover their frame pixel for pixel are never resampled to fit.
    """
    buf: list[np.ndarray] = []
    for uri in item.mask_uris:
        if uri is None:
            buf.append(np.full((height, width), NOT_ANNOTATED, np.uint8))
        else:
            image = _open_image(uri)
            if image.size != tuple(source_size):
                raise LayoutError(f"annotation {os.path.basename(uri)} is {_size(image.size)}, "
                                 f"its frames are {_size(source_size)}")
            try:
                ids = label_array(image)
            except LayoutError as exc:
                raise LayoutError(f"annotation {os.path.basename(uri)}: {exc}") from None
            if ids.shape != (height, width):
                ids = np.asarray(Image.fromarray(ids).resize((width, height), Image.Resampling.NEAREST))
            buf.append(ids)
        if len(buf) == chunk_frames:
            yield np.stack(buf)
            buf = []
    if buf:
        yield np.stack(buf)


def read_keypoints(item: SourceItem, scale_x: float, scale_y: float, width: int, height: int) -> np.ndarray:
    """Keypoints (T, J, 3) float32 (x, y, visible) from JHMDB's ``pos_img`` (2, J, T), rescaled.

    JHMDB has no visibility flag; a joint outside the frame is marked not visible. Raises
    LayoutError when the file has no ``pos_img`` of that shape, or when its T differs from the
    folder's frame count (keypoints of another clip, or a frame too many or too few).
    """
    from scipy.io import loadmat

    with open_uri(item.keypoints_uri) as handle:
        data = handle.read()
    try:
        mat = loadmat(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - scipy raises several classes for a damaged .mat; all mean the same
        raise LayoutError(f"{JHMDB_MAT} is not a readable MATLAB file ({reason_of(exc)})") from None
    if "pos_img" not in mat:
        raise LayoutError(f"{JHMDB_MAT} has no pos_img")
    pos = np.asarray(mat["pos_img"], dtype=np.float64)
    if pos.ndim != 3 or pos.shape[0] != 2:
        raise LayoutError(f"{JHMDB_MAT}: pos_img must be 2 × joints × frames, not {' × '.join(map(str, pos.shape))}")
    if pos.shape[2] != len(item.frame_uris):
        raise LayoutError(f"{JHMDB_MAT} has keypoints for {pos.shape[2]} frames, the folder has "
                         f"{len(item.frame_uris)} frames")
    xy = pos.transpose(2, 1, 0) * np.array([scale_x, scale_y])  # (T, J, 2)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    return np.concatenate([xy, inside[..., None]], axis=-1).astype(np.float32)
